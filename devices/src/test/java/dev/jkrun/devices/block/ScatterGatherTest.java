package dev.jkrun.devices.block;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static dev.jkrun.devices.block.DiskImagesTest.assertClean;
import static dev.jkrun.devices.block.DiskImagesTest.assertSameBytes;
import static dev.jkrun.devices.block.DiskImagesTest.readAll;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Requests spread over many buffers, as virtio-blk hands them over (a guest's 4 KiB pages, and odd sizes a hostile
 * driver may choose): raw and qcow2 images read and write them as the same request in one buffer would, whether the
 * buffers go to the file in one preadv/pwritev (all direct) or one by one (a heap buffer among them).
 */
class ScatterGatherTest {
    @TempDir
    Path dir;

    @Test
    void segmentsHandOutTheNextBytesAcrossAndWithinBuffers() {
        ByteBuffer[] bufs = {ByteBuffer.allocate(3), ByteBuffer.allocate(0), ByteBuffer.allocate(5), ByteBuffer.allocate(2)};
        assertEquals(10, Segments.remaining(bufs));
        Segments s = new Segments(bufs);
        assertEquals(0, s.take(0).length);
        ByteBuffer[] a = s.take(4); // all of the first, the empty one, 1 of the third
        assertArrayEquals(new int[] {3, 0, 1}, remainings(a));
        ByteBuffer[] b = s.take(2); // within the third
        assertArrayEquals(new int[] {2}, remainings(b));
        assertEquals(1, b[0].position(), "a view starts where the last one ended");
        ByteBuffer[] c = s.take(4); // the rest of the third, all of the fourth
        assertArrayEquals(new int[] {2, 2}, remainings(c));
        assertEquals(0, Segments.remaining(bufs), "every buffer consumed");
    }

    private static int[] remainings(ByteBuffer[] views) {
        int[] r = new int[views.length];
        for (int i = 0; i < views.length; i++) {
            r[i] = views[i].remaining();
        }
        return r;
    }

    @Test
    void rawReadsAndWritesScatteredRequests() throws Exception {
        Path f = dir.resolve("sg.raw");
        int size = 4 << 20;
        byte[] expected = new byte[size];
        Random r = new Random(5);
        r.nextBytes(expected);
        Files.write(f, expected);
        try (DiskImage img = DiskImages.open(f, ImageFormat.RAW, false, false)) {
            exercise(img, expected, r, 200);
            assertSameBytes(expected, readAll(img));
        }
        assertSameBytes(expected, Files.readAllBytes(f));
        try (DiskImage img = DiskImages.open(f, ImageFormat.RAW, true, false)) { // read-only: preadv too
            for (int i = 0; i < 50; i++) {
                readAndCompare(img, expected, r);
            }
        }
    }

    /** A raw file cut short under the image (another process truncated it) reads as zeros past its new end. */
    @Test
    void rawScatteredReadPastAShrunkFileIsZeros() throws Exception {
        Path f = dir.resolve("shrunk.raw");
        byte[] data = new byte[1 << 20];
        new Random(9).nextBytes(data);
        Files.write(f, data);
        try (DiskImage img = DiskImages.open(f, ImageFormat.RAW, false, false)) {
            try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
                raf.setLength(300_000);
            }
            byte[] want = new byte[data.length];
            System.arraycopy(data, 0, want, 0, 300_000);
            ByteBuffer[] bufs = pages(data.length, true);
            assertEquals(data.length, img.read(0, bufs));
            assertSameBytes(want, contents(bufs));
        }
    }

    /**
     * A qcow2 overlay whose clusters are of every kind: plain data in runs, a zero cluster, a compressed cluster, and
     * unallocated clusters read from the backing file. Scattered reads match qemu's view of it; scattered writes
     * (whole-cluster runs, pieces of a cluster spread over buffers, copies of compressed and backing clusters) leave
     * it clean and reading back what was written.
     */
    @Test
    void qcow2ReadsAndWritesScatteredRequests() throws Exception {
        Qemu.require();
        int size = 4 << 20;
        Random r = new Random(7);
        byte[] baseData = new byte[size];
        r.nextBytes(baseData);
        Files.write(dir.resolve("sg-base.raw"), baseData);
        Path ov = dir.resolve("sg.qcow2");
        Qemu.ok("qemu-img", "create", "-f", "qcow2", "-o", "compat=1.1", "-b", "sg-base.raw", "-F", "raw", ov.toString(),
                String.valueOf(size));
        Qemu.io(ov, "qcow2", List.of("write -P 0x22 64k 512k", "write -z 192k 64k", "write -c -P 0x33 1M 64k",
                "write -P 0x44 2M 1M"));
        byte[] expected = Qemu.toRaw(ov, "qcow2", dir);
        try (DiskImage img = DiskImages.open(ov, ImageFormat.QCOW2, false, true)) {
            for (int i = 0; i < 100; i++) {
                readAndCompare(img, expected, r);
            }
            exercise(img, expected, r, 150);
            assertSameBytes(expected, readAll(img));
        }
        assertClean(ov);
        assertSameBytes(expected, Qemu.toRaw(ov, "qcow2", dir));
        assertSameBytes(baseData, Files.readAllBytes(dir.resolve("sg-base.raw")));
    }

    /** {@code rounds} random requests, half writes, each spread over random buffers, checked against {@code expected}. */
    private static void exercise(DiskImage img, byte[] expected, Random r, int rounds) throws IOException {
        for (int i = 0; i < rounds; i++) {
            if (r.nextBoolean()) {
                readAndCompare(img, expected, r);
            } else {
                int len = length(r, expected.length);
                int off = r.nextInt(expected.length - len + 1) & (r.nextBoolean() ? -65536 : -512);
                ByteBuffer[] bufs = split(len, r);
                byte[] data = new byte[len];
                r.nextBytes(data);
                fill(bufs, data);
                assertEquals(len, img.write(off, bufs));
                for (ByteBuffer b : bufs) {
                    assertFalse(b.hasRemaining(), "a write consumes every buffer");
                }
                System.arraycopy(data, 0, expected, off, len);
            }
        }
    }

    private static void readAndCompare(DiskImage img, byte[] expected, Random r) throws IOException {
        int len = length(r, expected.length);
        int off = r.nextInt(expected.length - len + 1) & (r.nextBoolean() ? -4096 : -1);
        ByteBuffer[] bufs = split(len, r);
        assertEquals(len, img.read(off, bufs));
        byte[] want = new byte[len];
        System.arraycopy(expected, off, want, 0, len);
        assertSameBytes(want, contents(bufs));
    }

    /** Mostly requests of up to 1 MiB+, now and then one of a few bytes. */
    private static int length(Random r, int size) {
        return r.nextInt(8) == 0 ? 1 + r.nextInt(700) : 1 + r.nextInt(Math.min(size, (1 << 20) + 70_000));
    }

    /**
     * {@code len} bytes over buffers: guest pages (4 KiB), odd and empty buffers now and then, and in one request of
     * four a heap buffer among direct ones (the one-by-one path).
     */
    private static ByteBuffer[] split(int len, Random r) {
        boolean heapToo = r.nextInt(4) == 0;
        List<ByteBuffer> out = new ArrayList<>();
        int left = len;
        while (left > 0) {
            int k = switch (r.nextInt(6)) {
                case 0 -> 1 + r.nextInt(5000);
                case 1 -> 0;
                default -> 4096;
            };
            k = Math.min(k, left);
            boolean heap = heapToo && r.nextInt(8) == 0;
            // a slice off a larger buffer: positions other than 0 in the buffer underneath
            ByteBuffer b = (heap ? ByteBuffer.allocate(k + 16) : ByteBuffer.allocateDirect(k + 16)).position(8).limit(8 + k).slice();
            out.add(b);
            left -= k;
        }
        return out.toArray(ByteBuffer[]::new);
    }

    /** {@code len} bytes in 4 KiB direct buffers. */
    private static ByteBuffer[] pages(int len, boolean direct) {
        List<ByteBuffer> out = new ArrayList<>();
        for (int at = 0; at < len; at += 4096) {
            int k = Math.min(4096, len - at);
            out.add(direct ? ByteBuffer.allocateDirect(k) : ByteBuffer.allocate(k));
        }
        return out.toArray(ByteBuffer[]::new);
    }

    private static void fill(ByteBuffer[] bufs, byte[] data) {
        int at = 0;
        for (ByteBuffer b : bufs) {
            ByteBuffer d = b.duplicate();
            int k = d.remaining();
            d.put(data, at, k);
            at += k;
        }
    }

    /** What a read left in {@code bufs} (each read from 0 to its position). */
    private static byte[] contents(ByteBuffer[] bufs) {
        int n = 0;
        for (ByteBuffer b : bufs) {
            assertFalse(b.hasRemaining(), "a read fills every buffer");
            n += b.position();
        }
        byte[] all = new byte[n];
        int at = 0;
        for (ByteBuffer b : bufs) {
            ByteBuffer d = b.duplicate().flip();
            int k = d.remaining();
            d.get(all, at, k);
            at += k;
        }
        return all;
    }
}
