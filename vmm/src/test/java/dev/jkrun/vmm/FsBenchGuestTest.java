package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.guests.TestGuests;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The fsbench guest (the FsThroughput benchmark's driver) with tiny sizes through real KVM, so that it cannot rot:
 * every phase reported with the expected counts, exit 0, and afterwards the share holds only fsbench.dat (the guest
 * leaves the big file; every per-file test file and their directory are gone), whose content is what the guest
 * wrote: each chunk starts with its stamp, every other 4 KiB page with its page pattern.
 */
class FsBenchGuestTest {
    @BeforeAll
    static void kvm() { dev.jkrun.kvm.testing.KvmAvailable.assumeKvm(); }

    private static final int MIB = 4, FILES = 50;
    private static final List<String> PHASES = List.of("init", "seq-write", "seq-read", "create", "stat", "unlink", "cleanup");

    @Test
    void everyPhaseRunsAndTheShareIsLeftWithTheDataFileOnly(@TempDir Path tmp) throws Exception {
        Path share = Files.createDirectory(tmp.resolve("share"));
        // 256 KiB chunks: several requests per MiB, so the in-flight pipeline (depth 4) really overlaps.
        VmConfig config = new VmConfig(MachineConfig.of(1, 64),
                KernelConfig.elf(TestGuests.path("fsbench"), "jkrun.test.timeout_ms=20000 jkrun.fsbench.mib=" + MIB
                        + " jkrun.fsbench.files=" + FILES + " jkrun.fsbench.depth=4 jkrun.fsbench.chunk_kib=256"),
                new ConsoleConfig.None(), List.of(new FsShare("fsbench", share, false)), List.of(), Optional.empty(), true);
        GuestRun r = GuestRun.run(config, Duration.ofSeconds(120));

        String out = r.output();
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), out + r.reason());
        assertTrue(r.lines().stream().noneMatch(l -> l.contains("FAIL")), out);
        assertTrue(r.lines().contains("FUSE 7.31 max_write 1048576 max_pages 256 chunk 262144 depth 4"), out);
        long bytes = (long) MIB << 20, chunks = bytes / (256 << 10);
        for (String p : PHASES) {
            assertTrue(r.lines().contains("PHASE " + p + " start"), p + ": " + out);
        }
        assertTrue(r.lines().contains("PHASE init done 1 0"), out);
        assertTrue(r.lines().contains("PHASE seq-write fsync"), out);
        assertTrue(r.lines().contains("PHASE seq-write done " + chunks + " " + bytes), out);
        assertTrue(r.lines().contains("PHASE seq-read done " + chunks + " " + bytes), out);
        assertTrue(r.lines().contains("PHASE create done " + FILES + " 0"), out);
        assertTrue(r.lines().contains("PHASE stat done " + FILES + " 0"), out);
        assertTrue(r.lines().contains("PHASE unlink done " + FILES + " 0"), out);
        assertTrue(r.lines().contains("PHASE cleanup done " + (FILES + 2) + " 0"), out);
        assertTrue(r.lines().stream().anyMatch(l -> l.startsWith("IRQS ") && !l.equals("IRQS 0")), out);
        assertTrue(r.lines().contains("FSBENCH ok"), out);

        try (Stream<Path> s = Files.list(share)) {
            assertEquals(List.of(share.resolve("fsbench.dat")), s.toList(), "only the data file is left");
        }
        ByteBuffer data = ByteBuffer.wrap(Files.readAllBytes(share.resolve("fsbench.dat"))).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(bytes, data.capacity());
        for (int off = 0; off < data.capacity(); off += 4096) {
            int chunk = off / (256 << 10), page = (off % (256 << 10)) / 4096;
            long want = page == 0 ? 0x4653424E00000000L | chunk : 0x5041474500000000L | page;
            assertEquals(want, data.getLong(off), "word at " + off);
        }
    }
}
