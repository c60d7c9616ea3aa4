package dev.jkrun.devices.block;

import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.PosixFs;
import dev.jkrun.libc.Stat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

class DiskImagesTest {
    @TempDir
    Path dir;

    static byte[] readAll(DiskImage img) throws IOException {
        byte[] b = new byte[(int) img.capacityBytes()];
        ByteBuffer bb = ByteBuffer.wrap(b);
        // in uneven chunks that cross cluster boundaries
        long off = 0;
        int step = 300_001;
        while (bb.hasRemaining()) {
            int n = Math.min(step, bb.remaining());
            ByteBuffer part = bb.slice().limit(n);
            assertEquals(n, img.read(off, part));
            bb.position(bb.position() + n);
            off += n;
        }
        return b;
    }

    static void assertSameBytes(byte[] expected, byte[] actual) {
        assertEquals(expected.length, actual.length, "length");
        int i = Arrays.mismatch(expected, actual);
        assertEquals(-1, i, () -> "first difference at byte " + i + ": expected " + expected[i] + " got " + actual[i]);
    }

    // ---- raw ---------------------------------------------------------------------------------------------------

    @Test
    void rawPositionalIo() throws IOException {
        Path f = dir.resolve("disk.raw");
        Files.write(f, new byte[1 << 20]);
        byte[] expected = new byte[1 << 20];
        Random r = new Random(1);
        try (DiskImage img = DiskImages.open(f, ImageFormat.RAW, false, false)) {
            assertEquals(1 << 20, img.capacityBytes());
            assertFalse(img.readOnly());
            for (int i = 0; i < 50; i++) {
                int off = r.nextInt(1 << 20);
                byte[] d = new byte[r.nextInt(Math.min(70_000, (1 << 20) - off)) + 1];
                r.nextBytes(d);
                assertEquals(d.length, img.write(off, ByteBuffer.wrap(d)));
                System.arraycopy(d, 0, expected, off, d.length);
            }
            img.writeZeroes(4096, 10_000);
            Arrays.fill(expected, 4096, 14_096, (byte) 0);
            img.flush(SyncMode.FULL);
            img.flush(SyncMode.RELAXED);
            img.flush(SyncMode.NONE);
            assertSameBytes(expected, readAll(img));
            assertThrows(DiskImageException.class, () -> img.write((1 << 20) - 10, ByteBuffer.allocate(11)));
            assertThrows(DiskImageException.class, () -> img.read(-1, ByteBuffer.allocate(1)));
        }
        assertSameBytes(expected, Files.readAllBytes(f));
        try (DiskImage ro = DiskImages.open(f, ImageFormat.RAW, true, false)) {
            assertTrue(ro.readOnly());
            DiskImageException e = assertThrows(DiskImageException.class, () -> ro.write(0, ByteBuffer.allocate(512)));
            assertTrue(e.getMessage().contains("read-only"), e.getMessage());
            assertThrows(DiskImageException.class, () -> ro.writeZeroes(0, 512));
            assertSameBytes(expected, readAll(ro));
        }
        assertSameBytes(expected, Files.readAllBytes(f));
    }

    // ---- qcow2 reader vs qemu ----------------------------------------------------------------------------------

    @Test
    void qcow2ReadsWhatQemuWrote() throws Exception {
        Qemu.require();
        for (String opts : List.of("compat=1.1", "compat=0.10", "compat=1.1,cluster_size=4096", "cluster_size=2M,compat=1.1")) {
            Path img = dir.resolve("q-" + opts.replace(',', '_').replace('=', '_') + ".qcow2");
            Qemu.ok("qemu-img", "create", "-f", "qcow2", "-o", opts, img.toString(), "24M");
            Random r = new Random(opts.hashCode());
            List<String> cmds = new ArrayList<>(List.of("write -P 0xab 0 1M"));
            for (int i = 0; i < 25; i++) {
                long off = r.nextInt(24 << 20);
                long len = Math.min(r.nextInt(200_000) + 1, (24 << 20) - off);
                off &= ~511L;
                len = Math.max(512, len & ~511L);
                cmds.add("write -P 0x" + Integer.toHexString(r.nextInt(255) + 1) + " " + off + " " + len);
            }
            cmds.add("write -z 512k 64k");
            Qemu.io(img, "qcow2", cmds);
            byte[] expected = Qemu.toRaw(img, "qcow2", dir);
            try (DiskImage q = DiskImages.open(img, ImageFormat.QCOW2, true, false)) {
                assertEquals(24 << 20, q.capacityBytes());
                assertSameBytes(expected, readAll(q));
                // one read from an odd offset to the end: runs of contiguous clusters read at once, cut at every
                // cluster stored elsewhere, unallocated or zero
                byte[] tail = new byte[expected.length - 777];
                assertEquals(tail.length, q.read(777, ByteBuffer.wrap(tail)));
                assertSameBytes(java.util.Arrays.copyOfRange(expected, 777, expected.length), tail);
            }
        }
    }

    @Test
    void qcow2ReadsCompressedImage() throws Exception {
        Qemu.require();
        Path raw = dir.resolve("src.raw");
        byte[] data = new byte[8 << 20];
        Random r = new Random(7);
        for (int i = 0; i < data.length; i += 4096) {
            int kind = r.nextInt(3);
            if (kind == 0) {
                Arrays.fill(data, i, i + 4096, (byte) r.nextInt(256)); // compressible
            } else if (kind == 1) {
                byte[] b = new byte[4096];
                r.nextBytes(b); // incompressible
                System.arraycopy(b, 0, data, i, 4096);
            } // else zeros
        }
        Files.write(raw, data);
        Path c = dir.resolve("c.qcow2");
        Qemu.ok("qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", raw.toString(), c.toString());
        try (DiskImage q = DiskImages.open(c, ImageFormat.QCOW2, true, false)) {
            assertSameBytes(data, readAll(q));
        }
        // Partial writes into compressed clusters copy them first; metadata stays clean.
        try (DiskImage q = DiskImages.open(c, ImageFormat.QCOW2, false, false)) {
            for (int i = 0; i < 30; i++) {
                int off = r.nextInt(data.length - 5000);
                byte[] d = new byte[r.nextInt(5000) + 1];
                r.nextBytes(d);
                q.write(off, ByteBuffer.wrap(d));
                System.arraycopy(d, 0, data, off, d.length);
            }
            assertSameBytes(data, readAll(q));
        }
        assertClean(c);
        assertSameBytes(data, Qemu.toRaw(c, "qcow2", dir));
    }

    static void assertClean(Path img) throws Exception {
        Qemu.Result check = Qemu.run("qemu-img", "check", "-f", "qcow2", img.toString());
        assertEquals(0, check.exit(), check.output());
        assertTrue(check.output().contains("No errors were found"), check.output());
        assertFalse(check.output().contains("leaked"), check.output());
    }

    // ---- qcow2 writer ------------------------------------------------------------------------------------------

    @Test
    void qcow2WriterKeepsImageConsistent() throws Exception {
        Qemu.require();
        for (String opts : List.of("compat=1.1", "compat=0.10", "compat=1.1,cluster_size=4096")) {
            Path img = dir.resolve("w-" + opts.replace(',', '_').replace('=', '_') + ".qcow2");
            Qemu.ok("qemu-img", "create", "-f", "qcow2", "-o", opts, img.toString(), "64M");
            int size = 64 << 20;
            byte[] expected = new byte[size];
            Random r = new Random(42 + opts.hashCode());
            try (DiskImage q = DiskImages.open(img, ImageFormat.QCOW2, false, false)) {
                for (int i = 0; i < 200; i++) {
                    int off = r.nextInt(size);
                    byte[] d = new byte[Math.min(r.nextInt(150_000) + 1, size - off)];
                    r.nextBytes(d);
                    q.write(off, ByteBuffer.wrap(d));
                    System.arraycopy(d, 0, expected, off, d.length);
                }
                // zeroes: whole clusters and partial ones
                for (int i = 0; i < 10; i++) {
                    int off = r.nextInt(size - 300_000);
                    int len = r.nextInt(300_000);
                    q.writeZeroes(off, len);
                    Arrays.fill(expected, off, off + len, (byte) 0);
                }
                q.discard(0, 1 << 20);
                Arrays.fill(expected, 0, 1 << 20, (byte) 0);
                q.write(size - 7, ByteBuffer.wrap(new byte[] {1, 2, 3, 4, 5, 6, 7}));
                System.arraycopy(new byte[] {1, 2, 3, 4, 5, 6, 7}, 0, expected, size - 7, 7);
                q.flush(SyncMode.FULL);
                assertSameBytes(expected, readAll(q));
            }
            assertClean(img);
            assertSameBytes(expected, Qemu.toRaw(img, "qcow2", dir));
            try (DiskImage q = DiskImages.open(img, ImageFormat.QCOW2, true, false)) {
                assertSameBytes(expected, readAll(q));
                assertThrows(DiskImageException.class, () -> q.write(0, ByteBuffer.allocate(1)));
            }
        }
    }

    /**
     * Whole clusters that land one after another in the file are one write: sequential writes of a fresh image,
     * rewrites in place, and runs that a preallocated zero cluster, compressed clusters or a backing file's data
     * break or feed; every image stays clean and reads back what was written.
     */
    @Test
    void qcow2WholeClusterRunsKeepTheImageRight() throws Exception {
        Qemu.require();
        int mib = 1 << 20;
        Random r = new Random(17);

        // Fresh image: 4 MiB in 1 MiB requests, then 3 MiB over the last 2 MiB of it and 1 MiB past it.
        Path img = dir.resolve("runs.qcow2");
        Qemu.ok("qemu-img", "create", "-f", "qcow2", "-o", "compat=1.1", img.toString(), "16M");
        byte[] expected = new byte[16 * mib];
        try (DiskImage q = DiskImages.open(img, ImageFormat.QCOW2, false, false)) {
            for (int off = 0; off < 4 * mib; off += mib) {
                writeRandom(q, off, mib, expected, r);
            }
            q.flush(SyncMode.FULL);
            long before = Files.size(img);
            writeRandom(q, 2 * mib, 3 * mib, expected, r);
            assertEquals(before + mib, Files.size(img), "the 2 MiB already there were rewritten in place");
            assertSameBytes(expected, readAll(q));
        }
        assertClean(img);
        assertSameBytes(expected, Qemu.toRaw(img, "qcow2", dir));

        // A preallocated zero cluster (qemu-io write -z keeps the cluster, sets the zero flag) inside a run in place.
        Path z = dir.resolve("zero.qcow2");
        Qemu.ok("qemu-img", "create", "-f", "qcow2", "-o", "compat=1.1", z.toString(), "4M");
        Qemu.io(z, "qcow2", List.of("write -P 0x11 0 1M", "write -z 128k 64k"));
        long zSize = Files.size(z);
        expected = Qemu.toRaw(z, "qcow2", dir);
        try (DiskImage q = DiskImages.open(z, ImageFormat.QCOW2, false, false)) {
            writeRandom(q, 0, mib, expected, r);
            assertSameBytes(expected, readAll(q));
        }
        assertEquals(zSize, Files.size(z), "every cluster, the zero one too, written where it was");
        assertClean(z);
        assertSameBytes(expected, Qemu.toRaw(z, "qcow2", dir));

        // Compressed clusters (several sharing host clusters) overwritten whole: new clusters, sectors released.
        Path raw = dir.resolve("runs-src.raw");
        byte[] data = new byte[4 * mib];
        for (int i = 0; i < data.length; i += 4096) {
            Arrays.fill(data, i, i + 4096, (byte) r.nextInt(256));
        }
        Files.write(raw, data);
        Path c = dir.resolve("runs-c.qcow2");
        Qemu.ok("qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", raw.toString(), c.toString());
        try (DiskImage q = DiskImages.open(c, ImageFormat.QCOW2, false, false)) {
            writeRandom(q, mib - 65536, 2 * mib + 65536, data, r);
            assertSameBytes(data, readAll(q));
        }
        assertClean(c);
        assertSameBytes(data, Qemu.toRaw(c, "qcow2", dir));

        // Over a backing file: whole clusters never read it, the rest of the overlay still does.
        Path base = dir.resolve("runs-base.raw");
        byte[] baseData = new byte[4 * mib];
        r.nextBytes(baseData);
        Files.write(base, baseData);
        Path ov = dir.resolve("runs-ov.qcow2");
        Qemu.ok("qemu-img", "create", "-f", "qcow2", "-b", "runs-base.raw", "-F", "raw", ov.toString(), "4M");
        expected = baseData.clone();
        try (DiskImage q = DiskImages.open(ov, ImageFormat.QCOW2, false, true)) {
            writeRandom(q, mib + 4096, 2 * mib, expected, r); // partial, whole clusters, partial
            assertSameBytes(expected, readAll(q));
        }
        assertSameBytes(baseData, Files.readAllBytes(base));
        assertClean(ov);
        assertSameBytes(expected, Qemu.toRaw(ov, "qcow2", dir));
    }

    /**
     * A write of a MiB or more from a MiB-aligned guest offset puts its data at a host offset with the same
     * alignment (the page cache's large folios then hold it, as a raw file's), and the clusters skipped for that
     * are used by what is allocated one cluster at a time (here a 64 KiB write), so the file does not grow for it.
     */
    @Test
    void qcow2AlignsLargeWritesWithTheGuestOffset() throws Exception {
        Qemu.require();
        int mib = 1 << 20;
        for (String opts : List.of("compat=1.1", "compat=1.1,cluster_size=4096", "compat=0.10,cluster_size=2M")) {
            Path img = dir.resolve("align-" + opts.replace(',', '_').replace('=', '_') + ".qcow2");
            Qemu.ok("qemu-img", "create", "-f", "qcow2", "-o", opts, img.toString(), "64M");
            byte[] expected = new byte[64 * mib];
            Random r = new Random(23);
            try (DiskImage q = DiskImages.open(img, ImageFormat.QCOW2, false, false)) {
                for (int off = 0; off < 8 * mib; off += mib) {
                    writeRandom(q, off, mib, expected, r);
                }
                writeRandom(q, 16 * mib, 3 * mib, expected, r);
                long size = Files.size(img);
                writeRandom(q, 40 * mib, 4096, expected, r); // one small cluster: in a skipped one, if any
                if (!opts.contains("2M")) {
                    assertEquals(size, Files.size(img), opts + ": the small write went into the skipped clusters");
                }
                assertSameBytes(expected, readAll(q));
            }
            assertClean(img);
            assertSameBytes(expected, Qemu.toRaw(img, "qcow2", dir));
            List<long[]> map = dataMap(img);
            int large = 0;
            for (long[] x : map) {
                if (x[0] < 20L * mib) {
                    assertEquals(x[0] % mib, x[2] % mib, opts + ": guest 0x" + Long.toHexString(x[0]) + " (+" + x[1]
                            + ") is at host 0x" + Long.toHexString(x[2]));
                    large++;
                }
            }
            assertTrue(large > 0, opts + ": no data in the map");
        }
    }

    /** An aligned MiB freed in the middle of the file is where the next aligned MiB goes: the file keeps its size. */
    @Test
    void qcow2AlignedRunReusesAFreedAlignedBlock() throws Exception {
        Qemu.require();
        int mib = 1 << 20;
        Path img = dir.resolve("reuse-aligned.qcow2");
        Qemu.ok("qemu-img", "create", "-f", "qcow2", "-o", "compat=1.1", img.toString(), "64M");
        byte[] expected = new byte[64 * mib];
        Random r = new Random(41);
        try (DiskImage q = DiskImages.open(img, ImageFormat.QCOW2, false, false)) {
            for (int off = 0; off < 8 * mib; off += mib) {
                writeRandom(q, off, mib, expected, r);
            }
            q.flush(SyncMode.FULL);
        }
        long freedHost = hostOffsetOf(img, 3L * mib);
        long size = Files.size(img);
        try (DiskImage q = DiskImages.open(img, ImageFormat.QCOW2, false, false)) {
            q.discard(3L * mib, mib);
            Arrays.fill(expected, 3 * mib, 4 * mib, (byte) 0);
            writeRandom(q, 20 * mib, mib, expected, r);
            assertSameBytes(expected, readAll(q));
        }
        assertEquals(freedHost, hostOffsetOf(img, 20L * mib), "the new MiB went to the freed one");
        assertEquals(size, Files.size(img));
        assertClean(img);
    }

    /** qemu-img map's data extents of a qcow2 image: {guest offset, length, host offset}. */
    private static List<long[]> dataMap(Path img) throws Exception {
        String map = Qemu.ok("qemu-img", "map", "--output=json", "-f", "qcow2", img.toString());
        Matcher m = Pattern.compile("\\{ *\"start\": *(\\d+), *\"length\": *(\\d+),"
                + "[^}]*\"data\": *true[^}]*\"offset\": *(\\d+)").matcher(map);
        List<long[]> out = new ArrayList<>();
        while (m.find()) {
            out.add(new long[] {Long.parseLong(m.group(1)), Long.parseLong(m.group(2)), Long.parseLong(m.group(3))});
        }
        return out;
    }

    /** The host offset of guest offset {@code v} of a qcow2 image, which must hold data. */
    private static long hostOffsetOf(Path img, long v) throws Exception {
        for (long[] x : dataMap(img)) {
            if (v >= x[0] && v < x[0] + x[1]) {
                return x[2] + (v - x[0]);
            }
        }
        throw new AssertionError("guest 0x" + Long.toHexString(v) + " holds no data in " + img);
    }

    /**
     * Aligning runs never makes the file grow past what its data needs by more than a few MiB: a guest that frees
     * clusters here and there (fstrim of scattered blocks), pins each aligned block with one cluster and writes MiB
     * after MiB at aligned offsets finds no free aligned block in the file; runs then go to the lowest free clusters.
     */
    @Test
    void qcow2AlignedRunsDoNotGrowTheFileOnFragmentedFreeSpace() throws Exception {
        Qemu.require();
        int mib = 1 << 20, cluster = 65536;
        Path img = dir.resolve("frag.qcow2");
        Qemu.ok("qemu-img", "create", "-f", "qcow2", "-o", "compat=1.1", img.toString(), "64M");
        byte[] expected = new byte[64 * mib];
        Random r = new Random(31);
        try (DiskImage q = DiskImages.open(img, ImageFormat.QCOW2, false, false)) {
            for (int round = 0; round < 16; round++) {
                for (int x = 0; x < 16 * mib; x += mib) {
                    // free every cluster of this guest MiB but one, then write the whole MiB again
                    int pin = x + ((round + x / mib) % 16) * cluster;
                    q.discard(x, pin - x);
                    q.discard(pin + cluster, x + mib - pin - cluster);
                    Arrays.fill(expected, x, pin, (byte) 0);
                    Arrays.fill(expected, pin + cluster, x + mib, (byte) 0);
                    writeRandom(q, x, mib, expected, r);
                }
                q.flush(SyncMode.FULL);
            }
            assertSameBytes(expected, readAll(q));
        }
        long size = Files.size(img);
        assertTrue(size <= 16L * mib + 6L * mib, "16 MiB of data in a " + size + "-byte file");
        assertClean(img);
        assertSameBytes(expected, Qemu.toRaw(img, "qcow2", dir));
    }

    /** Writes {@code len} random bytes at {@code off} through {@code q} and into {@code expected}. */
    private static void writeRandom(DiskImage q, int off, int len, byte[] expected, Random r) throws IOException {
        byte[] d = new byte[len];
        r.nextBytes(d);
        q.write(off, ByteBuffer.wrap(d));
        System.arraycopy(d, 0, expected, off, len);
    }

    @Test
    void qcow2WriterGrowsRefcountTable() throws Exception {
        Qemu.require();
        // 512-byte clusters: one refcount block covers 128 KiB, the initial one-cluster table only 8 MiB.
        Path img = dir.resolve("small.qcow2");
        Qemu.ok("qemu-img", "create", "-f", "qcow2", "-o", "cluster_size=512", img.toString(), "32M");
        int size = 32 << 20;
        byte[] expected = new byte[size];
        Random r = new Random(11);
        try (DiskImage q = DiskImages.open(img, ImageFormat.QCOW2, false, false)) {
            for (int i = 0; i < 80; i++) {
                int off = r.nextInt(size);
                byte[] d = new byte[Math.min(r.nextInt(600_000) + 1, size - off)];
                r.nextBytes(d);
                q.write(off, ByteBuffer.wrap(d));
                System.arraycopy(d, 0, expected, off, d.length);
            }
            assertSameBytes(expected, readAll(q));
        }
        long tableOffset = ByteBuffer.wrap(Files.readAllBytes(img), 48, 8).getLong();
        assertNotEquals(0x200, tableOffset, "test did not pass the initial refcount table's reach");
        assertClean(img);
        assertSameBytes(expected, Qemu.toRaw(img, "qcow2", dir));
    }

    /**
     * Discarded and copied-over clusters are allocated again: cycles of writing 8 MiB and discarding it (fstrim)
     * keep the file within twice one cycle's footprint, the data stays right and qemu-img check stays clean.
     */
    @Test
    void qcow2ReusesFreedClusters() throws Exception {
        Qemu.require();
        for (String opts : List.of("compat=1.1", "compat=0.10", "compat=1.1,cluster_size=4096")) {
            Path img = dir.resolve("reuse-" + opts.replace(',', '_').replace('=', '_') + ".qcow2");
            Qemu.ok("qemu-img", "create", "-f", "qcow2", "-o", opts, img.toString(), "64M");
            int size = 64 << 20, chunk = 8 << 20;
            byte[] expected = new byte[size];
            Random r = new Random(5 + opts.hashCode());
            // Data that stays: 1 MiB at the end, written before the cycles and read back after them.
            byte[] keep = new byte[1 << 20];
            r.nextBytes(keep);
            long footprint = 0;
            try (DiskImage q = DiskImages.open(img, ImageFormat.QCOW2, false, false)) {
                q.write(size - keep.length, ByteBuffer.wrap(keep));
                System.arraycopy(keep, 0, expected, size - keep.length, keep.length);
                for (int cycle = 0; cycle < 10; cycle++) {
                    int off = (cycle % 6) * chunk; // the guest's file system puts the data elsewhere each time
                    byte[] d = new byte[chunk];
                    r.nextBytes(d);
                    q.write(off, ByteBuffer.wrap(d));
                    ByteBuffer back = ByteBuffer.allocate(chunk);
                    q.read(off, back);
                    assertSameBytes(d, back.array());
                    if (cycle == 0) {
                        footprint = Files.size(img);
                    }
                    q.discard(off, chunk);
                    if (cycle % 2 == 0) {
                        q.flush(SyncMode.FULL); // else the next allocation syncs before it reuses a cluster
                    }
                    assertTrue(Files.size(img) <= 2 * footprint, opts + ": after cycle " + cycle + " the file is "
                            + Files.size(img) + " bytes, one cycle's footprint " + footprint);
                }
                q.write(size - keep.length, ByteBuffer.wrap(keep)); // in place
                assertSameBytes(expected, readAll(q));
            }
            assertTrue(Files.size(img) <= 2 * footprint, opts + ": " + Files.size(img) + " > 2 * " + footprint);
            assertClean(img);
            assertSameBytes(expected, Qemu.toRaw(img, "qcow2", dir));
        }
    }

    // ---- backing files -----------------------------------------------------------------------------------------

    @Test
    void backingFileRefusedUnlessAllowed() throws Exception {
        Qemu.require();
        Path base = dir.resolve("base.raw");
        byte[] data = randomFile(base, 4 << 20, 3);
        Path ov = dir.resolve("overlay.qcow2");
        Qemu.ok("qemu-img", "create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", ov.toString(), "6M");
        DiskImageException e = assertThrows(DiskImageException.class, () -> DiskImages.open(ov, ImageFormat.QCOW2, true, false));
        assertTrue(e.getMessage().contains("backing file not allowed"), e.getMessage());
        assertTrue(e.getMessage().contains(ov.toString()), e.getMessage());

        byte[] expected = new byte[6 << 20];
        System.arraycopy(data, 0, expected, 0, data.length);
        try (DiskImage q = DiskImages.open(ov, ImageFormat.QCOW2, true, true)) {
            assertSameBytes(expected, readAll(q));
        }
        // Partial writes copy the rest of the cluster from the backing file; the base is untouched.
        try (DiskImage q = DiskImages.open(ov, ImageFormat.QCOW2, false, true)) {
            byte[] d = new byte[1000];
            Arrays.fill(d, (byte) 0x77);
            q.write(70_000, ByteBuffer.wrap(d));
            System.arraycopy(d, 0, expected, 70_000, d.length);
            q.writeZeroes(1 << 20, 65536); // a whole cluster over backing data: zero flag
            Arrays.fill(expected, 1 << 20, (1 << 20) + 65536, (byte) 0);
            assertSameBytes(expected, readAll(q));
        }
        assertSameBytes(data, Files.readAllBytes(base));
        assertClean(ov);
        assertSameBytes(expected, Qemu.toRaw(ov, "qcow2", dir));

        // A qcow2 base in a chain.
        Path qbase = dir.resolve("qbase.qcow2");
        Qemu.ok("qemu-img", "convert", "-f", "raw", "-O", "qcow2", base.toString(), qbase.toString());
        Path ov2 = dir.resolve("ov2.qcow2");
        Qemu.ok("qemu-img", "create", "-f", "qcow2", "-b", "qbase.qcow2", "-F", "qcow2", ov2.toString(), "4M");
        Qemu.io(ov2, "qcow2", List.of("write -P 0x11 1M 4k"));
        try (DiskImage q = DiskImages.open(ov2, ImageFormat.QCOW2, true, true)) {
            assertSameBytes(Qemu.toRaw(ov2, "qcow2", dir), readAll(q));
        }
    }

    /** Even allowed, a backing file is opened only when it is a regular file: a FIFO would block open(2) for ever. */
    @Test
    void backingFileMustBeARegularFile() throws Exception {
        Qemu.require();
        Path fifo = dir.resolve("base.fifo");
        PosixFs.mknodat(null, PosixFs.bytes(fifo.toString()), Stat.S_IFIFO | 0600, 0);
        Path ov = dir.resolve("fifo-overlay.qcow2");
        Qemu.ok("qemu-img", "create", "-f", "qcow2", "-u", "-b", "base.fifo", "-F", "raw", ov.toString(), "1M");
        Path devNull = dir.resolve("null-overlay.qcow2");
        Qemu.ok("qemu-img", "create", "-f", "qcow2", "-u", "-b", "/dev/null", "-F", "raw", devNull.toString(), "1M");
        ExecutorService ex = opener();
        try {
            for (Path img : List.of(ov, devNull)) {
                Future<?> f = ex.submit(() -> {
                    DiskImageException e = assertThrows(DiskImageException.class, () -> DiskImages.open(img, ImageFormat.QCOW2, true, true));
                    assertTrue(e.getMessage().contains("not a regular file"), e.getMessage());
                    return null;
                });
                finishWithin(f, 5, () -> "opening " + img + " still blocked after 5 s");
            }
        } finally {
            ex.shutdownNow();
            releaseReader(fifo);
        }
    }

    /**
     * The file checked is the file opened: a thread swaps the backing file's name between a regular file and a FIFO
     * while the overlay is opened again and again. Each open must either use the regular file or refuse the FIFO;
     * none may block in open(2) (a check of the path, then a second open of it, would meet the FIFO in between).
     */
    @Test
    void backingFileSwappedForAFifoIsNeverOpened() throws Exception {
        Qemu.require();
        Path base = dir.resolve("base.raw");
        byte[] data = randomFile(base, 1 << 20, 5);
        Path regular = dir.resolve("regular.raw");
        Files.copy(base, regular);
        Path fifo = dir.resolve("swap.fifo");
        Path ov = dir.resolve("swap-overlay.qcow2");
        Qemu.ok("qemu-img", "create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", ov.toString(), "1M");
        AtomicBoolean stop = new AtomicBoolean();
        Thread swapper = new Thread(() -> {
            try {
                while (!stop.get()) {
                    PosixFs.mknodat(null, PosixFs.bytes(fifo.toString()), Stat.S_IFIFO | 0600, 0);
                    Files.move(fifo, base, StandardCopyOption.REPLACE_EXISTING,
                            StandardCopyOption.ATOMIC_MOVE);
                    Files.copy(regular, dir.resolve("next.raw"), StandardCopyOption.REPLACE_EXISTING);
                    Files.move(dir.resolve("next.raw"), base, StandardCopyOption.REPLACE_EXISTING,
                            StandardCopyOption.ATOMIC_MOVE);
                }
            } catch (IOException | RuntimeException e) {
                throw new AssertionError(e);
            }
        }, "backing-swapper");
        ExecutorService ex = opener();
        int[] used = new int[2];
        swapper.setDaemon(true);
        swapper.start();
        try {
            Future<?> f = ex.submit(() -> {
                for (int i = 0; i < 2000; i++) {
                    try (DiskImage q = DiskImages.open(ov, ImageFormat.QCOW2, true, true)) {
                        byte[] got = new byte[4096];
                        assertEquals(4096, q.read(12_288, ByteBuffer.wrap(got)));
                        assertSameBytes(Arrays.copyOfRange(data, 12_288, 12_288 + 4096), got);
                        used[0]++;
                    } catch (DiskImageException e) {
                        // the FIFO, or no file at all between a rename and the next
                        assertTrue(e.getMessage().contains("not a regular file")
                                || e.getMessage().contains("cannot be opened"), e.getMessage());
                        used[1]++;
                    }
                }
                return null;
            });
            finishWithin(f, 60, () -> "an open blocked (" + used[0] + " opened, " + used[1] + " refused before it)");
        } finally {
            stop.set(true);
            ex.shutdownNow();
            swapper.join(10_000);
            releaseReader(base);
        }
        assertTrue(used[0] > 0 && used[1] > 0, "both kinds of file met: " + used[0] + " opened, " + used[1] + " refused");
    }

    /** A backing file of each format, opened on the descriptor that was checked, each reading as qemu reads it. */
    @Test
    void backingFilesOfEachFormat() throws Exception {
        Qemu.require();
        Path raw = dir.resolve("b.raw");
        randomFile(raw, 2 << 20, 9);
        Path vmdk = dir.resolve("b.vmdk");
        Qemu.ok("qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=monolithicFlat", raw.toString(),
                vmdk.toString());
        Path sub = Files.createDirectory(dir.resolve("sub"));
        Path qcow = sub.resolve("b.qcow2");
        Qemu.ok("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw.toString(), qcow.toString());
        Files.createSymbolicLink(dir.resolve("link.qcow2"), qcow);
        for (String[] b : List.of(new String[] {"b.raw", "raw"}, new String[] {"b.vmdk", "vmdk"},
                new String[] {"link.qcow2", "qcow2"})) {
            Path ov = dir.resolve("over-" + b[1] + ".qcow2");
            Qemu.ok("qemu-img", "create", "-f", "qcow2", "-b", b[0], "-F", b[1], ov.toString(), "2M");
            Qemu.io(ov, "qcow2", List.of("write -P 0x3c 64k 4k"));
            try (DiskImage q = DiskImages.open(ov, ImageFormat.QCOW2, true, true)) {
                assertSameBytes(Qemu.toRaw(ov, "qcow2", dir), readAll(q));
            }
        }
    }

    /** Writes {@code size} random bytes (from {@code seed}) to {@code file} and returns them. */
    private static byte[] randomFile(Path file, int size, long seed) throws IOException {
        byte[] data = new byte[size];
        new Random(seed).nextBytes(data);
        Files.write(file, data);
        return data;
    }

    /** The thread that opens images which might block in open(2) (a daemon, so a blocked one ends with the JVM). */
    private static ExecutorService opener() {
        return Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "backing-open");
            t.setDaemon(true);
            return t;
        });
    }

    /** Waits for {@code f}; fails with {@code blocked}'s message after {@code seconds}, rethrows what it threw. */
    private static void finishWithin(Future<?> f, int seconds, Supplier<String> blocked) throws InterruptedException {
        try {
            f.get(seconds, TimeUnit.SECONDS);
        } catch (TimeoutException t) {
            fail(blocked.get());
        } catch (ExecutionException x) {
            throw new AssertionError(x.getCause());
        }
    }

    /** Opens {@code fifo} for writing without blocking, which releases a thread stuck opening it to read. */
    private static void releaseReader(Path fifo) {
        try (var w = PosixFs.openat(null, PosixFs.bytes(fifo.toString()), PosixFs.O_WRONLY | PosixFs.O_NONBLOCK, 0)) {
            // a reader was waiting
        } catch (NativeCallException none) {
            // none was (or it is no FIFO now)
        }
    }

    // ---- vmdk --------------------------------------------------------------------------------------------------

    @Test
    void vmdkMonolithicFlatReads() throws Exception {
        Qemu.require();
        Path v = dir.resolve("disk.vmdk");
        Qemu.ok("qemu-img", "create", "-f", "vmdk", "-o", "subformat=monolithicFlat", v.toString(), "8M");
        Qemu.io(v, "vmdk", List.of("write -P 0x5a 1M 64k", "write -P 0xc3 7M 4k"));
        byte[] expected = Qemu.toRaw(v, "vmdk", dir);
        try (DiskImage img = DiskImages.open(v, ImageFormat.VMDK, true, false)) {
            assertEquals(8 << 20, img.capacityBytes());
            assertSameBytes(expected, readAll(img));
            assertThrows(DiskImageException.class, () -> img.write(0, ByteBuffer.allocate(512)));
        }
    }

    @Test
    void vmdkFlatAndZeroExtents() throws IOException {
        Path flat = dir.resolve("f.bin");
        byte[] f = new byte[4096];
        Arrays.fill(f, (byte) 9);
        Files.write(flat, f);
        Path v = dir.resolve("d.vmdk");
        Files.writeString(v, "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\n\n"
                + "RW 4 FLAT \"f.bin\" 2\nRW 8 ZERO\nRDONLY 2 FLAT \"f.bin\"\n");
        byte[] expected = new byte[14 * 512];
        Arrays.fill(expected, 0, 4 * 512, (byte) 9);
        Arrays.fill(expected, 12 * 512, 14 * 512, (byte) 9);
        try (DiskImage img = DiskImages.open(v, ImageFormat.VMDK, false, false)) {
            assertEquals(14 * 512, img.capacityBytes());
            assertSameBytes(expected, readAll(img));
            byte[] d = new byte[100];
            Arrays.fill(d, (byte) 4);
            img.write(10, ByteBuffer.wrap(d));
            System.arraycopy(d, 0, expected, 10, 100);
            assertThrows(DiskImageException.class, () -> img.write(4 * 512, ByteBuffer.allocate(1)));
            assertThrows(DiskImageException.class, () -> img.write(12 * 512, ByteBuffer.allocate(1)));
            assertSameBytes(expected, readAll(img));
        }
        assertEquals(4, Files.readAllBytes(flat)[1024 + 10]);
    }

    /** Corrupt metadata is an IOException (DiskImageException), never an unchecked exception or a hang. */
    @Test
    void qcow2CorruptMetadataFailsCleanly() throws Exception {
        Qemu.require();
        Path img = dir.resolve("fz.qcow2");
        Qemu.ok("qemu-img", "create", "-f", "qcow2", "-o", "cluster_size=4096", img.toString(), "2M");
        Qemu.io(img, "qcow2", List.of("write -P 0x1 0 64k", "write -P 0x2 1M 8k"));
        byte[] good = Files.readAllBytes(img);
        Random r = new Random(99);
        int meta = Math.min(good.length, 6 * 4096);
        for (int round = 0; round < 300; round++) {
            byte[] bad = good.clone();
            for (int k = 0; k < 1 + r.nextInt(4); k++) {
                bad[r.nextInt(meta)] = (byte) r.nextInt(256);
            }
            Path f = dir.resolve("fz-" + round + ".qcow2");
            Files.write(f, bad);
            for (boolean ro : new boolean[] {true, false}) {
                try (DiskImage q = DiskImages.open(f, ImageFormat.QCOW2, ro, false)) {
                    readAll(q);
                    if (!ro) {
                        q.write(r.nextInt(1 << 20), ByteBuffer.allocate(5000));
                        q.writeZeroes(0, 8192);
                    }
                } catch (IOException expected) {
                    // fine: reported as an image error
                }
            }
            Files.delete(f);
        }
    }

    /** Tables that run past the end of the file are corrupt: a 200 KiB file must not make us read 32 MiB of L1. */
    @Test
    void qcow2TablesPastTheEndOfTheFileAreRefused() throws Exception {
        Qemu.require();
        Path img = dir.resolve("t.qcow2");
        Qemu.ok("qemu-img", "create", "-f", "qcow2", img.toString(), "1M");
        byte[] good = Files.readAllBytes(img);
        byte[] bigL1 = good.clone();
        ByteBuffer.wrap(bigL1).putInt(36, 4 << 20); // l1_size: 4M entries, 32 MiB
        Files.write(img, bigL1);
        DiskImageException e = assertThrows(DiskImageException.class, () -> DiskImages.open(img, ImageFormat.QCOW2, true, false));
        assertTrue(e.getMessage().contains("L1 table") && e.getMessage().contains("past the end"), e.getMessage());
        byte[] bigRefcounts = good.clone();
        ByteBuffer.wrap(bigRefcounts).putInt(56, 128); // refcount_table_clusters: 8 MiB
        Files.write(img, bigRefcounts);
        e = assertThrows(DiskImageException.class, () -> DiskImages.open(img, ImageFormat.QCOW2, true, false));
        assertTrue(e.getMessage().contains("refcount table") && e.getMessage().contains("past the end"), e.getMessage());
    }

    /** The fuzz targets' qcow2 image, written without qemu-img, is one qemu-img accepts and we write cleanly. */
    @Test
    void tinyQcow2IsValid() throws Exception {
        Qemu.require();
        Path img = TinyImages.qcow2(dir.resolve("tiny.qcow2"), 5 << 20);
        assertClean(img);
        byte[] d = new byte[70_000];
        new Random(2).nextBytes(d);
        try (DiskImage q = DiskImages.open(img, ImageFormat.QCOW2, false, false)) {
            assertEquals(5 << 20, q.capacityBytes());
            q.write(3 << 20, ByteBuffer.wrap(d));
        }
        assertClean(img);
        byte[] raw = Qemu.toRaw(img, "qcow2", dir);
        assertSameBytes(d, Arrays.copyOfRange(raw, 3 << 20, (3 << 20) + d.length));
    }

    // ---- format given, never probed ----------------------------------------------------------------------------

    @Test
    void formatMismatchNamesFileAndFormat() throws Exception {
        Path raw = dir.resolve("plain.img");
        Files.write(raw, new byte[1 << 16]);
        DiskImageException e = assertThrows(DiskImageException.class, () -> DiskImages.open(raw, ImageFormat.QCOW2, true, false));
        assertTrue(e.getMessage().contains(raw.toString()) && e.getMessage().contains("QCOW2"), e.getMessage());
        e = assertThrows(DiskImageException.class, () -> DiskImages.open(raw, ImageFormat.VMDK, true, false));
        assertTrue(e.getMessage().contains(raw.toString()) && e.getMessage().contains("VMDK"), e.getMessage());
        e = assertThrows(DiskImageException.class, () -> DiskImages.open(dir.resolve("missing"), ImageFormat.RAW, true, false));
        assertTrue(e.getMessage().contains("missing"), e.getMessage());
        if (Qemu.available()) {
            Path q = dir.resolve("x.qcow2");
            Qemu.ok("qemu-img", "create", "-f", "qcow2", q.toString(), "1M");
            e = assertThrows(DiskImageException.class, () -> DiskImages.open(q, ImageFormat.VMDK, true, false));
            assertTrue(e.getMessage().contains(q.toString()) && e.getMessage().contains("VMDK"), e.getMessage());
            // Raw has no header: a qcow2 file opened as raw is its own bytes, as the user asked.
            try (DiskImage asRaw = DiskImages.open(q, ImageFormat.RAW, true, false)) {
                assertEquals(Files.size(q), asRaw.capacityBytes());
            }
        }
    }
}
