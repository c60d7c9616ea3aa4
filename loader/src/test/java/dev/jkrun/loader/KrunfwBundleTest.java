package dev.jkrun.loader;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jkrun.loader.krunfw.Krunfw;
import dev.jkrun.loader.krunfw.KrunfwLocator;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.HeapGuestMemory;
import dev.jkrun.memory.MemoryRegion;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KrunfwBundleTest {
    /** A stand-in libkrunfw with the real ABI and a 12 KiB "kernel". */
    private static final String FAKE = """
            #include <stddef.h>
            __attribute__((aligned(65536))) static const unsigned char KERNEL[0x3000] = {
                [0] = 0x11, [0x123] = 0xf4, [0x2fff] = 0x77 };
            int krunfw_get_version(void) { return VERSION; }
            const char *krunfw_get_kernel(size_t *load, size_t *entry, size_t *size) {
                *load = 0x1000000; *entry = 0x1000123; *size = sizeof(KERNEL);
                return (const char *) KERNEL;
            }
            """;

    @TempDir
    Path dir;

    private Path fake(String name, int version) throws Exception {
        return Tools.gcc(dir, name, FAKE, "-shared", "-fPIC", "-DVERSION=" + version);
    }

    @Test
    void loadsAFakeLibraryThroughDlopen() throws Exception {
        KrunfwBundle b = KrunfwBundle.load(fake("libkrunfw.so.5", 5));
        assertEquals(5, b.version());
        assertEquals(0x1000000, b.loadAddress());
        assertEquals(0x1000123, b.entry());
        assertEquals(0x3000, b.size());
        assertEquals(0x1010000, b.end(), "rounded to 64 KiB");
        assertEquals("libkrunfw 5 (Linux kernel bundle, 0.0 MiB at 0x1000000)", b.description());
        assertEquals(java.util.OptionalInt.of(2047), b.commandLineLimit(), "x86's COMMAND_LINE_SIZE - 1: no header says");
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x2000000);
        mem.fill(GuestAddress.of(0x1000000), 0x20000, (byte) 0xaa);
        b.writeInto(mem);
        assertEquals(0x11, mem.readByte(GuestAddress.of(0x1000000)));
        assertEquals((byte) 0xf4, mem.readByte(GuestAddress.of(b.entry())));
        assertEquals(0x77, mem.readByte(GuestAddress.of(0x1002fff)));
        assertArrayEquals(new byte[0xd000], mem.readBytes(GuestAddress.of(0x1003000), 0xd000), "padding zeroed");
        assertEquals((byte) 0xaa, mem.readByte(GuestAddress.of(b.end())));
    }

    @Test
    void acceptsAbi4() throws Exception {
        assertEquals(4, KrunfwBundle.load(fake("libkrunfw.so.4", 4)).version());
    }

    @Test
    void rejectsOtherAbiVersions() throws Exception {
        Path lib = fake("libkrunfw.so.3", 3);
        KernelFormatException e = assertThrows(KernelFormatException.class, () -> KrunfwBundle.load(lib));
        assertEquals(KernelFormatException.Reason.UNSUPPORTED_VERSION, e.reason());
        assertEquals("libkrunfw ABI version 3 is not supported (need 5)", e.getMessage());
    }

    @Test
    void rejectsLibrariesWithoutTheSymbols() throws Exception {
        Path lib = Tools.gcc(dir, "libother.so", "int something(void) { return 1; }", "-shared", "-fPIC");
        KernelFormatException e = assertThrows(KernelFormatException.class, () -> KrunfwBundle.load(lib));
        assertEquals(KernelFormatException.Reason.BAD_LIBRARY, e.reason());
        assertTrue(e.getMessage().contains("krunfw_get_version"), e.getMessage());
    }

    @Test
    void rejectsFilesThatAreNotLibraries() throws Exception {
        Path junk = dir.resolve("junk.so");
        java.nio.file.Files.writeString(junk, "not a library");
        KernelFormatException e = assertThrows(KernelFormatException.class, () -> KrunfwBundle.load(junk));
        assertEquals(KernelFormatException.Reason.BAD_LIBRARY, e.reason());
        assertEquals(junk + " is not a libkrunfw shared library (not ELF)", e.getMessage());
        assertEquals(KernelFormatException.Reason.IO,
                assertThrows(KernelFormatException.class, () -> KrunfwBundle.load(dir.resolve("absent.so"))).reason());
    }

    /**
     * The real libkrunfw: found where {@link KrunfwLocator} looks (normally the user cache, filled by
     * {@code KrunfwSetup}). Under CI=true it must be there or fetchable.
     */
    @Test
    void loadsTheRealLibkrunfw() {
        Map<String, String> env = System.getenv();
        Path lib;
        if ("true".equals(env.get("CI"))) {
            lib = Krunfw.locateOrFetch(null, env, System.err);
        } else {
            Optional<KrunfwLocator.Found> found = KrunfwLocator.find(null, env);
            assumeTrue(found.isPresent(), "libkrunfw is not installed (looked in JKRUN_KRUNFW, the system library "
                    + "path and " + KrunfwLocator.cacheDir(env) + "): run dev.jkrun.loader.krunfw.KrunfwSetup to "
                    + "fetch it, or set CI=true to fetch it in this test");
            lib = found.get().path();
        }
        KrunfwBundle b = KrunfwBundle.load(lib);
        assertEquals(5, b.version());
        assertEquals(0x1000000, b.loadAddress());
        assertEquals(0x1000123, b.entry());
        assertTrue(b.size() > 1 << 20, "size " + b.size());
        assertEquals(0, (b.end() - b.loadAddress()) % KrunfwBundle.ALIGNMENT);
        assertTrue(b.description().startsWith("libkrunfw 5 (Linux kernel bundle, "), b.description());

        // The kernel slot and the RAM after it, as libkrun lays them out (two adjacent regions).
        long slot = b.end() - b.loadAddress();
        HeapGuestMemory mem = HeapGuestMemory.of(new MemoryRegion(GuestAddress.ZERO, b.loadAddress()),
                new MemoryRegion(GuestAddress.of(b.loadAddress()), slot),
                new MemoryRegion(GuestAddress.of(b.end()), 1 << 20));
        b.writeInto(mem);
        byte[] image = b.image();
        assertArrayEquals(Arrays.copyOf(image, 4096), mem.readBytes(GuestAddress.of(b.loadAddress()), 4096));
        assertArrayEquals(image, mem.readBytes(GuestAddress.of(b.loadAddress()), image.length));
    }
}
