package dev.jkrun.guests;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Locates the test-guest ELFs built by {@code guests/Makefile} and packaged as classpath
 * resources under {@code /guests/}.
 *
 * <p>Report protocol of every guest: text bytes are written with {@code outb} to port
 * {@value #REPORT_PORT}; the exit status with {@code outl} to port {@value #EXIT_PORT}. See
 * {@code guests/README.md} for the cmdline parameters each guest reads.
 */
public final class TestGuests {
    /** Port the guests write their text output to, one byte per OUT. */
    public static final int REPORT_PORT = 0x3F8;
    /** Port the guests write their 32-bit exit status to (isa-debug-exit style). */
    public static final int EXIT_PORT = 0xF4;

    private static final List<String> NAMES = List.of(
            "boot_check", "smp", "memtop", "console", "spin", "halt", "triple_fault",
            "bad_insn", "pio_loop", "exit_status", "irq", "virtiofs", "power_button", "smbios", "fsbench", "blk", "hostile", "vsock", "tsi", "rng", "irqshare", "balloon", "topology", "serial", "initrd", "net", "ioapic");
    /** The aarch64 guests (guests/aarch64: arm64 Images), under {@code /guests-aarch64/}. */
    private static final List<String> AARCH64_NAMES = List.of("exit_status", "boot_check", "smp", "data_abort", "psci_off", "hostile", "blk", "console");
    /** Whether this JVM runs on aarch64: then {@link #path} gives the aarch64 build of a guest. */
    public static final boolean AARCH64 = "aarch64".equals(System.getProperty("os.arch"));
    private static final Map<String, Path> EXTRACTED = new ConcurrentHashMap<>();

    private TestGuests() {}

    /** The names of all guests for this host's architecture, in a stable order. */
    public static List<String> names() {
        return AARCH64 ? AARCH64_NAMES : NAMES;
    }

    /**
     * A real file path for the guest ELF {@code name}: the resource itself when it lives in a
     * directory on the classpath, otherwise a temporary copy made once per JVM (deleted on exit).
     *
     * @throws IllegalArgumentException if there is no such guest
     * @throws UncheckedIOException if the resource cannot be copied
     */
    public static Path path(String name) {
        if (!names().contains(name)) {
            throw new IllegalArgumentException("unknown test guest '" + name + "' on " + System.getProperty("os.arch")
                    + ", known: " + names());
        }
        return EXTRACTED.computeIfAbsent(name, TestGuests::locate);
    }

    private static Path locate(String name) {
        String resource = (AARCH64 ? "/guests-aarch64/" : "/guests/") + name;
        URL url = TestGuests.class.getResource(resource);
        if (url == null) {
            throw new IllegalArgumentException("test guest resource " + resource
                    + " is missing (was guests/ built with make?)");
        }
        if ("file".equals(url.getProtocol())) {
            try {
                return Path.of(url.toURI());
            } catch (URISyntaxException e) {
                // fall through to copying
            }
        }
        try (InputStream in = url.openStream()) {
            Path tmp = Files.createTempFile("jkrun-guest-" + name + "-", ".elf");
            tmp.toFile().deleteOnExit();
            Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
            return tmp;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot extract test guest " + resource, e);
        }
    }
}
