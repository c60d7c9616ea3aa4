package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.jkrun.devices.block.DirectIoUnsupportedException;
import dev.jkrun.devices.block.ImageFormat;
import dev.jkrun.devices.block.RawImage;
import dev.jkrun.devices.block.SyncMode;
import dev.jkrun.guests.TestGuests;
import dev.jkrun.kvm.testing.KvmAvailable;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * virtio-blk through real KVM: the blk test guest negotiates over virtio-mmio and drives the device with descriptor
 * chains, taking each completion through its IDT (irqfd → IOAPIC → LAPIC). Modes: rw (GET_ID, OUT/IN at the first,
 * last and middle sectors, data split over several descriptors, data and status in one descriptor, four requests in
 * flight, FLUSH, WRITE_ZEROES, DISCARD, an indirect table), ro (reads work, writes/zeroes/discards are refused with
 * IOERR, FLUSH is fine) and bad (malformed requests and chains get the right status or come back with length 0,
 * and a good IN completes after each). The host then checks the image: the rw guest's writes replayed onto zeros
 * must equal the image read back (raw: the file; qcow2: qemu-img convert, and qemu-img check must be clean), and
 * ro and bad runs must leave the image byte-for-byte unchanged. A small bench-mode run checks the mode
 * benchmarks/run blk relies on (16 chains in flight through indirect tables).
 */
class VirtioBlockGuestTest {
    @BeforeAll
    static void kvm() { KvmAvailable.assumeKvm(); }

    private static final String SERIAL = "jkrun-blk-serial-01";
    /** 8195 whole sectors; a raw image also gets 100 trailing bytes the guest must not see. */
    private static final long SECTORS = 8195;
    private static final int TAIL = 100;

    private static final List<String> RW_CHECKS = List.of("features", "config", "get_id", "write_first", "write_last",
            "write_mid", "read_first", "read_last", "read_mid", "read_unwritten", "multi_segment_out", "multi_segment_in",
            "any_layout", "batch", "flush", "write_zeroes", "write_zeroes_unmap", "discard", "indirect", "flush_end",
            "interrupts");
    private static final List<String> RO_CHECKS = List.of("features", "config", "features_ro", "get_id", "read_first",
            "read_last", "read_mid", "out_refused", "write_zeroes_refused", "discard_refused", "flush", "interrupts");
    private static final List<String> BAD_CHECKS = List.of("features", "config", "beyond_capacity", "sector_huge",
            "sector_overflows_bytes", "straddle_end_in", "straddle_end_out", "out_beyond_capacity", "unaligned_out",
            "unaligned_in", "no_status", "in_with_readable_data", "out_with_writable_data", "unknown_type", "get_id_short",
            "get_id_short_then_in", "short_header", "discard_two_segments", "discard_unmap_flag",
            "write_zeroes_reserved_flag", "write_zeroes_beyond", "discard_beyond", "readable_after_writable",
            "buffer_outside_ram", "chain_loop", "next_out_of_range", "indirect_loop", "interrupts");

    @TempDir
    Path dir;

    // ---- rw ------------------------------------------------------------------------------------------------------

    @Test
    void readWriteOnRawImage() throws Exception {
        Path img = dir.resolve("disk.raw");
        Files.write(img, new byte[(int) (SECTORS * 512 + TAIL)]);
        GuestRun r = boot(List.of(), DiskConfig.of(SERIAL, img, false, ImageFormat.RAW), "rw", 0x5A);
        assertPassed(r, RW_CHECKS, "BLK ok");
        assertTrue(r.lines().contains("VIRTIO 0xd0000000 irq 5"), r.output());
        assertConfig(r);
        byte[] expected = replay(r, 0x5A);
        byte[] file = Files.readAllBytes(img);
        assertEquals(SECTORS * 512 + TAIL, file.length, "the image keeps its size");
        assertSame(expected, Arrays.copyOf(file, expected.length), r);
        assertArrayEquals(new byte[TAIL], Arrays.copyOfRange(file, expected.length, file.length), "the hidden tail");
    }

    @Test
    void readWriteOnRawImageFromADescriptor() throws Exception {
        // AVF's addDisk(fd): the image behind a descriptor the caller holds, opened again read-write
        Path img = dir.resolve("fd.raw");
        Files.write(img, new byte[(int) (SECTORS * 512 + TAIL)]);
        try (dev.jkrun.libc.FileDescriptor fd = dev.jkrun.libc.FileDescriptor.open(img.toString(),
                dev.jkrun.libc.FileDescriptor.O_RDWR | dev.jkrun.libc.FileDescriptor.O_CLOEXEC)) {
            DiskConfig disk = VmBuilder.create().disk(d -> d.id(SERIAL).fd(fd.raw())).build().disks().get(0);
            GuestRun r = boot(List.of(), disk, "rw", 0x5B);
            assertPassed(r, RW_CHECKS, "BLK ok");
            byte[] expected = replay(r, 0x5B);
            assertSame(expected, Arrays.copyOf(Files.readAllBytes(img), expected.length), r);
        }
    }

    /**
     * The rw run on a raw image with direct I/O: the guest's 512-byte requests inside 4 KiB host blocks go through
     * the read-modify-write path, the last sectors (past the last whole block) through the page cache.
     */
    @Test
    void readWriteOnDirectIoRawImage() throws Exception {
        Path img = dir.resolve("direct.raw");
        Files.write(img, new byte[(int) (SECTORS * 512 + TAIL)]);
        try {
            RawImage.open(img, true, true).close();
        } catch (DirectIoUnsupportedException e) {
            Assumptions.abort(e.getMessage());
        }
        GuestRun r = boot(List.of(), new DiskConfig(SERIAL, img, false, ImageFormat.RAW, SyncMode.FULL, false, true), "rw", 0x6B);
        assertPassed(r, RW_CHECKS, "BLK ok");
        assertConfig(r);
        byte[] expected = replay(r, 0x6B);
        byte[] file = Files.readAllBytes(img);
        assertEquals(SECTORS * 512 + TAIL, file.length, "the image keeps its size");
        assertSame(expected, Arrays.copyOf(file, expected.length), r);
        assertArrayEquals(new byte[TAIL], Arrays.copyOfRange(file, expected.length, file.length), "the hidden tail");
    }

    @Test
    void readWriteOnQcow2Image() throws Exception {
        requireQemuImg();
        Path img = dir.resolve("disk.qcow2");
        qemuImg("create", "-f", "qcow2", img.toString(), String.valueOf(SECTORS * 512));
        GuestRun r = boot(List.of(), DiskConfig.of(SERIAL, img, false, ImageFormat.QCOW2), "rw", 0x3C);
        assertPassed(r, RW_CHECKS, "BLK ok");
        assertConfig(r);
        assertSame(replay(r, 0x3C), toRaw(img), r);
        assertQcow2Clean(img);
    }

    // ---- ro ------------------------------------------------------------------------------------------------------

    @Test
    void readOnlyRawImageIsUnchanged() throws Exception {
        Path img = dir.resolve("ro.raw");
        Files.write(img, patternImage(0x33, SECTORS * 512 + TAIL));
        String before = sha256(img);
        // a virtio-fs share first: the disk lands in the second slot, and the guest finds it by its device id
        Path share = Files.createDirectory(dir.resolve("share"));
        GuestRun r = boot(List.of(new FsShare("other", share, true)), DiskConfig.of(SERIAL, img, true, ImageFormat.RAW), "ro", 0x33);
        assertPassed(r, RO_CHECKS, "BLK ok");
        assertTrue(r.lines().contains("VIRTIO 0xd0001000 irq 6"), r.output());
        assertConfig(r);
        assertEquals(before, sha256(img), "a read-only image must not change");
    }

    @Test
    void readOnlyQcow2ImageIsUnchanged() throws Exception {
        Path img = qcow2Pattern("ro.qcow2", 0x44);
        String before = sha256(img);
        GuestRun r = boot(List.of(), DiskConfig.of(SERIAL, img, true, ImageFormat.QCOW2), "ro", 0x44);
        assertPassed(r, RO_CHECKS, "BLK ok");
        assertEquals(before, sha256(img), "a read-only image must not change");
        assertQcow2Clean(img);
    }

    /** A qcow2 image made by qemu-img from a raw image holding the guest's pattern {@code fill}. */
    private Path qcow2Pattern(String name, int fill) throws Exception {
        requireQemuImg();
        Path raw = dir.resolve("pattern.raw");
        Files.write(raw, patternImage(fill, SECTORS * 512));
        Path img = dir.resolve(name);
        qemuImg("convert", "-f", "raw", "-O", "qcow2", raw.toString(), img.toString());
        return img;
    }

    // ---- bad -----------------------------------------------------------------------------------------------------

    @Test
    void malformedRequestsOnRawImage() throws Exception {
        Path img = dir.resolve("bad.raw");
        Files.write(img, patternImage(0x21, SECTORS * 512 + TAIL));
        String before = sha256(img);
        GuestRun r = boot(List.of(), DiskConfig.of(SERIAL, img, false, ImageFormat.RAW), "bad", 0x21);
        assertPassed(r, BAD_CHECKS, "BLK ok");
        assertEquals(before, sha256(img), "every bad request was refused: the image must not change");
    }

    @Test
    void malformedRequestsOnQcow2Image() throws Exception {
        Path img = qcow2Pattern("bad.qcow2", 0x65);
        String before = sha256(img);
        GuestRun r = boot(List.of(), DiskConfig.of(SERIAL, img, false, ImageFormat.QCOW2), "bad", 0x65);
        assertPassed(r, BAD_CHECKS, "BLK ok");
        assertEquals(before, sha256(img), "every bad request was refused: the image must not change");
        assertQcow2Clean(img);
    }

    // ---- bench (what benchmarks/run blk drives), small ---------------------------------------------------------

    @Test
    void benchModeRunsEveryPhase() throws Exception {
        Path img = dir.resolve("bench.raw");
        Files.write(img, new byte[8 << 20]);
        bench(img, ImageFormat.RAW, 0);
        assertEquals(8 << 20, Files.size(img));
    }

    /** The bench with each 1 MiB request's data in 128 descriptors of 8 KiB, out of order in memory, on qcow2. */
    @Test
    void benchModeInSegmentsOnQcow2() throws Exception {
        requireQemuImg();
        Path img = dir.resolve("bench.qcow2");
        qemuImg("create", "-f", "qcow2", img.toString(), String.valueOf(8 << 20));
        GuestRun r = bench(img, ImageFormat.QCOW2, 8192);
        assertTrue(r.lines().contains("BENCH qd 16 seq_mib 8 rand_ops 500 seed 3 seg 8192"), r.output());
        assertQcow2Clean(img);
    }

    private static GuestRun bench(Path img, ImageFormat format, int seg) throws Exception {
        String cmdline = "jkrun.test.timeout_ms=20000 jkrun.blk.mode=bench jkrun.blk.bench=seq-write,seq-read,rand-write,"
                + "rand-read jkrun.blk.seq_mib=8 jkrun.blk.rand_ops=500 jkrun.blk.qd=16 jkrun.blk.seed=3 jkrun.blk.seg=" + seg;
        VmConfig config = new VmConfig(MachineConfig.of(1, 64), KernelConfig.elf(TestGuests.path("blk"), cmdline),
                new ConsoleConfig.None(), List.of(), List.of(DiskConfig.of("bench", img, false, format)),
                Optional.empty(), true);
        GuestRun r = GuestRun.run(config, Duration.ofSeconds(120));
        String out = r.output();
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), out + r.reason());
        for (String[] p : new String[][] {{"seq-write", "8"}, {"seq-read", "8"}, {"rand-write", "500"}, {"rand-read", "500"}}) {
            assertTrue(r.lines().contains("PHASE " + p[0] + " start"), out);
            assertTrue(r.lines().contains("PHASE " + p[0] + " done " + p[1]), out);
            assertTrue(r.lines().stream().anyMatch(l -> l.startsWith("STATS " + p[0] + " kicks ")), out);
        }
        assertTrue(r.lines().contains("BENCH ok"), out);
        assertTrue(r.lines().stream().noneMatch(l -> l.contains("FAIL")), out);
        return r;
    }

    // ---- helpers -------------------------------------------------------------------------------------------------

    private static GuestRun boot(List<FsShare> shares, DiskConfig disk, String mode, int seed) throws InterruptedException {
        String cmdline = "jkrun.test.timeout_ms=20000 jkrun.blk.mode=" + mode + " jkrun.blk.serial=" + SERIAL
                + " jkrun.blk.capacity=" + SECTORS + " jkrun.blk.seed=" + seed;
        VmConfig config = new VmConfig(MachineConfig.of(1, 64), KernelConfig.elf(TestGuests.path("blk"), cmdline),
                new ConsoleConfig.None(), shares, List.of(disk), Optional.empty(), true);
        return GuestRun.run(config, Duration.ofSeconds(120));
    }

    private static void assertPassed(GuestRun r, List<String> checks, String summary) {
        String out = r.output();
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), out + r.reason());
        for (String c : checks) {
            assertTrue(r.lines().contains("CHECK " + c + " ok"), "CHECK " + c + ": " + out);
        }
        assertTrue(r.lines().stream().noneMatch(l -> l.contains("FAIL")), out);
        assertTrue(r.lines().stream().anyMatch(l -> l.startsWith(summary)), out);
        assertTrue(r.lines().stream().anyMatch(l -> l.startsWith("IRQS ") && !l.equals("IRQS 0")), "interrupts taken: " + out);
    }

    /** The config space as the guest read it: what VirtioBlock puts there for this disk. */
    private static void assertConfig(GuestRun r) {
        assertTrue(r.lines().contains("CONFIG capacity " + SECTORS + " seg_max 254 blk_size 512 max_discard_sectors "
                + 0x3fff_ffff + " max_discard_seg 1 discard_alignment 1 max_write_zeroes_sectors " + 0x3fff_ffff
                + " max_write_zeroes_seg 1 write_zeroes_may_unmap 1"), r.output());
    }

    /** Byte i of sector s of the test pattern (as blk.c's pat()). */
    static byte pat(int seed, long sector, int i) { return (byte) (seed + sector * 7 + i + (i >> 8) * 0x80); }

    static byte[] patternImage(int seed, long bytes) {
        byte[] b = new byte[(int) bytes];
        for (int o = 0; o + 512 <= b.length; o += 512) {
            for (int i = 0; i < 512; i++) {
                b[o + i] = pat(seed, o / 512, i);
            }
        }
        return b;
    }

    /**
     * The disk as the rw guest left it: zeros, then each "WROTE sector n" (pattern) and "ZEROED sector n" it
     * reported, in order. Also checks that the ranges that matter were reported at all.
     */
    private static byte[] replay(GuestRun r, int seed) {
        byte[] d = new byte[(int) (SECTORS * 512)];
        int writes = 0;
        for (String l : r.lines()) {
            String[] w = l.split(" ");
            if (w.length == 3 && (w[0].equals("WROTE") || w[0].equals("ZEROED"))) {
                long s = Long.parseLong(w[1]);
                int n = Integer.parseInt(w[2]);
                assertTrue(s >= 0 && s + n <= SECTORS, l);
                for (long q = s; q < s + n; q++) {
                    for (int i = 0; i < 512; i++) {
                        d[(int) (q * 512 + i)] = w[0].equals("WROTE") ? pat(seed, q, i) : 0;
                    }
                }
                writes++;
            }
        }
        List<String> lines = r.lines();
        for (String must : List.of("WROTE 0 1", "WROTE " + (SECTORS - 1) + " 1", "WROTE 16 8", "ZEROED 33 6",
                "ZEROED 2048 2048")) {
            assertTrue(lines.contains(must), must + ": " + r.output());
        }
        assertTrue(writes >= 10, r.output());
        return d;
    }

    private static void assertSame(byte[] expected, byte[] actual, GuestRun r) {
        assertEquals(expected.length, actual.length, "guest-visible length");
        int i = Arrays.mismatch(expected, actual);
        if (i >= 0) {
            fail("image differs from the guest's writes at byte " + i + " (sector " + i / 512 + "): expected "
                    + expected[i] + " got " + actual[i] + "\n" + r.output());
        }
    }

    private static String sha256(Path p) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p)));
    }

    // ---- qemu-img ------------------------------------------------------------------------------------------------

    private static boolean qemuImgAvailable() {
        for (String d : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":")) {
            if (!d.isEmpty() && Files.isExecutable(Path.of(d, "qemu-img"))) {
                return true;
            }
        }
        return false;
    }

    /** qcow2 tests need qemu-img: a failure under CI=true, else the test is skipped. */
    private static void requireQemuImg() {
        if (qemuImgAvailable()) {
            return;
        }
        String msg = "qemu-img not found on PATH (apt-get install qemu-utils): it creates and checks the qcow2 images";
        if ("true".equalsIgnoreCase(System.getenv("CI"))) {
            fail(msg);
        }
        Assumptions.abort(msg);
    }

    private static String qemuImg(String... args) throws IOException, InterruptedException {
        String[] cmd = new String[args.length + 1];
        cmd[0] = "qemu-img";
        System.arraycopy(args, 0, cmd, 1, args.length);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("timed out: " + String.join(" ", cmd));
        }
        if (p.exitValue() != 0) {
            fail(String.join(" ", cmd) + " exited " + p.exitValue() + ": " + out);
        }
        return out;
    }

    private byte[] toRaw(Path qcow2) throws Exception {
        Path raw = Files.createTempFile(dir, "conv", ".raw");
        qemuImg("convert", "-f", "qcow2", "-O", "raw", qcow2.toString(), raw.toString());
        return Files.readAllBytes(raw);
    }

    private static void assertQcow2Clean(Path img) throws Exception {
        String out = qemuImg("check", "-f", "qcow2", img.toString());
        assertTrue(out.contains("No errors were found"), "qemu-img check: " + out);
    }
}
