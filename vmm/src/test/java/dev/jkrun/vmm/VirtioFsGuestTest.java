package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.guests.TestGuests;
import dev.jkrun.kvm.testing.KvmAvailable;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * virtio-fs through real KVM: the virtiofs test guest negotiates over virtio-mmio and drives the FUSE server with
 * descriptor chains on the request queue, each completion taken through its IDT (irqfd → IOAPIC → LAPIC): INIT,
 * LOOKUP/OPEN/READ of a host file, CREATE/WRITE/FSYNC/RELEASE of a new one, OPENDIR/READDIR, and the error paths.
 */
class VirtioFsGuestTest {
    @BeforeAll
    static void kvm() { KvmAvailable.assumeKvm(); }

    private static final String IN_CONTENT = "hello from the host\n";
    private static final String OUT_CONTENT = "written by the guest\n";
    private static final List<String> CHECKS = List.of("config", "init", "lookup", "open", "read", "create", "write",
            "fsync", "release", "opendir", "readdir", "lookup_missing", "lookup_dotdot", "ext_unagreed", "ext_past_body",
            "ext_after");

    @Test
    void fuseRequestsFromTheGuest(@TempDir Path tmp) throws Exception {
        Path share = Files.createDirectory(tmp.resolve("share"));
        Files.writeString(tmp.resolve("outside.txt"), "outside the share\n");
        Files.writeString(share.resolve("in.txt"), IN_CONTENT);
        Map<Path, String> before = snapshot(tmp);

        VmConfig config = new VmConfig(MachineConfig.of(1, 64),
                KernelConfig.elf(TestGuests.path("virtiofs"), "jkrun.test.timeout_ms=20000"), new ConsoleConfig.None(),
                List.of(new FsShare("testfs", share, false)), List.of(), Optional.empty(), true);
        GuestRun r = GuestRun.run(config, Duration.ofSeconds(60));

        String out = r.output();
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), out + r.reason());
        assertTrue(out.contains("VIRTIO 0xd0000000 irq 5"), out);
        assertTrue(out.contains("TAG testfs queues 1"), out);
        for (String c : CHECKS) {
            assertTrue(r.lines().contains("CHECK " + c + " ok"), "CHECK " + c + ": " + out);
        }
        assertTrue(r.lines().stream().noneMatch(l -> l.contains("FAIL")), out);
        assertTrue(r.lines().contains("VIRTIOFS ok"), out);
        assertTrue(r.lines().stream().anyMatch(l -> l.startsWith("IRQS ") && !l.equals("IRQS 0")), "interrupts taken: " + out);

        assertEquals(OUT_CONTENT, Files.readString(share.resolve("out.txt"), StandardCharsets.UTF_8));
        Map<Path, String> after = snapshot(tmp);
        Map<Path, String> expected = new TreeMap<>(before);
        expected.put(tmp.relativize(share.resolve("out.txt")), OUT_CONTENT);
        assertEquals(expected, after, "only share/out.txt may appear under " + tmp);
    }

    /**
     * The same requests against an overlay share: in.txt comes from the lower layer (beside a file the upper layer
     * whites out), out.txt lands in the upper one, and the lower layer does not change.
     */
    @Test
    void fuseRequestsFromTheGuestOnAnOverlay(@TempDir Path tmp) throws Exception {
        Path lower = Files.createDirectory(tmp.resolve("lower"));
        Path upper = Files.createDirectory(tmp.resolve("upper"));
        Files.writeString(lower.resolve("in.txt"), IN_CONTENT);
        Files.writeString(lower.resolve("gone.txt"), "whited out\n");
        Files.writeString(upper.resolve(".wh.gone.txt"), "");
        Map<Path, String> lowerBefore = snapshot(lower);

        VmConfig config = new VmConfig(MachineConfig.of(1, 64),
                KernelConfig.elf(TestGuests.path("virtiofs"), "jkrun.test.timeout_ms=20000"), new ConsoleConfig.None(),
                List.of(FsShare.overlay("testfs", List.of(lower, upper), false)), List.of(), Optional.empty(), true);
        GuestRun r = GuestRun.run(config, Duration.ofSeconds(60));

        String out = r.output();
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), out + r.reason());
        for (String c : CHECKS) {
            assertTrue(r.lines().contains("CHECK " + c + " ok"), "CHECK " + c + ": " + out);
        }
        assertTrue(r.lines().contains("VIRTIOFS ok"), out);
        assertEquals(OUT_CONTENT, Files.readString(upper.resolve("out.txt"), StandardCharsets.UTF_8));
        assertEquals(lowerBefore, snapshot(lower), "the lower layer is unchanged");
    }

    /** Every file and directory under {@code root} (relative path → content, or "<dir>"). */
    private static Map<Path, String> snapshot(Path root) throws IOException {
        Map<Path, String> m = new TreeMap<>();
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.toList()) {
                m.put(root.relativize(p), Files.isDirectory(p) ? "<dir>" : Files.readString(p, StandardCharsets.UTF_8));
            }
        }
        return m;
    }
}
