package dev.jkrun.devices.virtio.block;

import dev.jkrun.devices.block.DirectIoDirs;
import dev.jkrun.devices.block.DiskImage;
import dev.jkrun.devices.block.DiskImages;
import dev.jkrun.devices.block.ImageFormat;
import dev.jkrun.devices.block.Qemu;
import dev.jkrun.devices.block.SyncMode;
import dev.jkrun.devices.testing.CountingTrigger;
import dev.jkrun.devices.testing.DriverQueue;
import dev.jkrun.devices.testing.MockDriver;
import dev.jkrun.devices.virtio.MmioTransport;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.memory.HeapGuestMemory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static dev.jkrun.devices.virtio.block.VirtioBlock.*;
import static org.junit.jupiter.api.Assertions.*;

class VirtioBlockTest {
    static final long TIMEOUT = 5000;
    static final int DISK_BYTES = 1 << 20;
    static final long ALL_FEATURES = 1L << F_SEG_MAX | 1L << F_RO | 1L << F_BLK_SIZE | 1L << F_FLUSH | 1L << F_DISCARD
            | 1L << F_WRITE_ZEROES | 1L << Queue.VIRTIO_RING_F_EVENT_IDX | 1L << Queue.VIRTIO_RING_F_INDIRECT_DESC;

    @TempDir
    Path dir;
    final HeapGuestMemory mem = HeapGuestMemory.of(0, 8 << 20);
    final CountingTrigger irq = new CountingTrigger();
    final List<AutoCloseable> toClose = new ArrayList<>();
    Path file;
    byte[] contents;

    @AfterEach
    void tearDown() throws Exception {
        for (AutoCloseable c : toClose) {
            c.close();
        }
        assertTrue(CountingTrigger.await(() -> Thread.getAllStackTraces().keySet().stream()
                .noneMatch(t -> t.getName().startsWith("virtio-blk[")), TIMEOUT), "virtio-blk threads left running");
    }

    private VirtioBlock device(boolean readOnly, SyncMode sync) throws Exception {
        file = dir.resolve("disk.raw");
        contents = new byte[DISK_BYTES + 100]; // a trailing partial sector, hidden from the guest
        new Random(5).nextBytes(contents);
        Files.write(file, contents);
        DiskImage img = DiskImages.open(file, ImageFormat.RAW, readOnly, false);
        VirtioBlock blk = new VirtioBlock(img, "jkrun-disk-0", sync);
        toClose.add(blk);
        return blk;
    }

    private MockDriver driver(VirtioBlock blk) {
        MmioTransport t = new MmioTransport(blk, mem, irq);
        toClose.add(t);
        MockDriver d = new MockDriver(t, mem, 0x10000, 0x200000, 0x400000);
        d.init(ALL_FEATURES);
        return d;
    }

    static byte[] header(int type, long sector) {
        return ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN).putInt(type).putInt(0).putLong(sector).array();
    }

    static byte[] segment(long sector, int sectors, int flags) {
        return ByteBuffer.allocate(SEGMENT_BYTES).order(ByteOrder.LITTLE_ENDIAN).putLong(sector).putInt(sectors).putInt(flags).array();
    }

    /** The status byte: the last byte of chain {@code head}'s writable buffers. */
    static byte status(DriverQueue q, int head) {
        int total = q.buffers(head).stream().filter(DriverQueue.Buffer::writable).mapToInt(DriverQueue.Buffer::len).sum();
        return q.written(head, total)[total - 1];
    }

    /** Submits a chain, waits for it, checks its used length, returns the status. */
    static byte submit(DriverQueue q, int expectedLen, List<byte[]> readable, int... writable) {
        int h = q.add(readable, writable);
        q.kick();
        DriverQueue.Used u = q.awaitUsed(TIMEOUT);
        assertEquals(h, u.id());
        assertEquals(expectedLen, u.len(), "used length");
        return status(q, h);
    }

    @Test
    void configSpaceAndFeatures() throws Exception {
        VirtioBlock blk = device(false, SyncMode.FULL);
        MockDriver d = driver(blk);
        assertEquals(2, d.read(MmioTransport.DEVICE_ID));
        assertEquals(256, d.read(MmioTransport.QUEUE_NUM_MAX));
        ByteBuffer cfg = ByteBuffer.wrap(d.readConfig(0, CONFIG_BYTES)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(DISK_BYTES / 512, cfg.getLong(0));
        assertEquals(254, cfg.getInt(12));
        assertEquals(512, cfg.getInt(20));
        assertEquals(MAX_DISCARD_SECTORS, cfg.getInt(36));
        assertEquals(1, cfg.getInt(40));
        assertEquals(MAX_DISCARD_SECTORS, cfg.getInt(48));
        assertEquals(1, cfg.getInt(52));
        assertEquals(1, cfg.get(56));
        long f = d.deviceFeatures();
        for (int bit : new int[] {F_SEG_MAX, F_FLUSH, F_DISCARD, F_WRITE_ZEROES, Queue.VIRTIO_RING_F_EVENT_IDX, 32}) {
            assertTrue((f & 1L << bit) != 0, "feature " + bit);
        }
        assertEquals(0, f & 1L << F_RO);
        // no topology for a disk that has no preference beyond 512 bytes
        assertEquals(0, f & 1L << F_TOPOLOGY);
        assertEquals(0, cfg.getLong(24));
    }

    @Test
    void physicalBlockExponent() {
        assertEquals(0, physicalBlockExp(512));
        assertEquals(0, physicalBlockExp(256));
        assertEquals(0, physicalBlockExp(3000), "not a power of two");
        assertEquals(3, physicalBlockExp(4096));
        assertEquals(7, physicalBlockExp(64 << 10));
        assertEquals(15, physicalBlockExp(1 << 30), "min_io_size is a le16 count of sectors");
    }

    /** A 512-byte-sector disk whose host prefers {@code bytes}-aligned requests. */
    private static DiskImage preferring(DiskImage img, int bytes) {
        return new DiskImage() {
            public long capacityBytes() { return img.capacityBytes(); }
            public int read(long offset, ByteBuffer dst) throws IOException { return img.read(offset, dst); }
            public int write(long offset, ByteBuffer src) throws IOException { return img.write(offset, src); }
            public void flush(SyncMode mode) throws IOException { img.flush(mode); }
            public void discard(long offset, long length) throws IOException { img.discard(offset, length); }
            public void writeZeroes(long offset, long length) throws IOException { img.writeZeroes(offset, length); }
            public boolean readOnly() { return img.readOnly(); }
            public int physicalBlockSize() { return bytes; }
            public void close() throws IOException { img.close(); }
        };
    }

    @Test
    void theImagesBlockSizeIsThePhysicalBlockSize() throws Exception {
        VirtioBlock plain = device(false, SyncMode.FULL);
        VirtioBlock blk = new VirtioBlock(preferring(plain.disk(), 4096), "big-blocks", SyncMode.FULL);
        toClose.add(blk);
        ByteBuffer cfg = ByteBuffer.wrap(driver(blk).readConfig(0, CONFIG_BYTES)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(DISK_BYTES / 512, cfg.getLong(0), "capacity stays in 512-byte sectors");
        assertEquals(512, cfg.getInt(20), "blk_size, the guest's logical block, stays 512");
        assertEquals(3, cfg.get(24), "physical_block_exp: 4096 = 512 << 3");
        assertEquals(0, cfg.get(25), "alignment_offset");
        assertEquals(8, cfg.getShort(26), "min_io_size in logical blocks");
        assertEquals(0, cfg.getInt(28), "opt_io_size");
        assertTrue((blk.availableFeatures() & 1L << F_TOPOLOGY) != 0);
    }

    @Test
    void directIoImageBehindTheDevice() throws Exception {
        Path d = DirectIoDirs.supporting(dir);
        file = d.resolve("direct.raw");
        contents = new byte[DISK_BYTES + 1536]; // three sectors past the last 4 KiB block: the page-cache tail
        new Random(7).nextBytes(contents);
        Files.write(file, contents);
        DiskImage img = DiskImages.open(file, ImageFormat.RAW, false, false, true);
        VirtioBlock blk = new VirtioBlock(img, "direct", SyncMode.FULL);
        toClose.add(blk);
        int align = img.physicalBlockSize();
        assertTrue(align >= 512 && Integer.bitCount(align) == 1, "alignment " + align);
        MockDriver drv = driver(blk);
        ByteBuffer cfg = ByteBuffer.wrap(drv.readConfig(0, CONFIG_BYTES)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(512, cfg.getInt(20));
        assertEquals(Integer.numberOfTrailingZeros(align) - 9, cfg.get(24));
        DriverQueue q = drv.queue(0);
        byte[] expected = contents.clone();

        // OUT of one sector inside a block (read-modify-write), data over two buffers of 100 and 412 bytes
        byte[] a = new byte[512];
        Arrays.fill(a, (byte) 0xa1);
        assertEquals(S_OK, submit(q, 1, List.of(header(T_OUT, 9), Arrays.copyOf(a, 100), Arrays.copyOfRange(a, 100, 512)), 1));
        System.arraycopy(a, 0, expected, 9 * 512, 512);
        // OUT across the last whole block into the tail
        byte[] b = new byte[2048];
        Arrays.fill(b, (byte) 0xb2);
        long sector = DISK_BYTES / 512 - 2;
        assertEquals(S_OK, submit(q, 1, List.of(header(T_OUT, sector), b), 1));
        System.arraycopy(b, 0, expected, (int) sector * 512, 2048);
        // WRITE_ZEROES of 3 sectors, FLUSH
        assertEquals(S_OK, submit(q, 1, List.of(header(T_WRITE_ZEROES, 0), segment(20, 3, 0)), 1));
        Arrays.fill(expected, 20 * 512, 23 * 512, (byte) 0);
        assertEquals(S_OK, submit(q, 1, List.of(header(T_FLUSH, 0)), 1));
        // IN of 9 sectors from sector 7 into buffers of 1000, 3000 and 608 bytes
        int h = q.add(List.of(header(T_IN, 7)), 1000, 3000, 608, 1);
        q.kick();
        assertEquals(new DriverQueue.Used(h, 4609), q.awaitUsed(TIMEOUT));
        assertArrayEquals(Arrays.copyOfRange(expected, 7 * 512, 16 * 512), Arrays.copyOf(q.written(h, 4609), 4608));
        assertArrayEquals(expected, Files.readAllBytes(file));
    }

    @Test
    void readOnlyAndSyncNoneFeatures() throws Exception {
        VirtioBlock blk = device(true, SyncMode.NONE);
        long f = blk.availableFeatures();
        assertTrue((f & 1L << F_RO) != 0);
        assertEquals(0, f & 1L << F_FLUSH);
        assertTrue((f & 1L << F_DISCARD) != 0 && (f & 1L << F_WRITE_ZEROES) != 0);
    }

    @Test
    void inOutFlushGetId() throws Exception {
        VirtioBlock blk = device(false, SyncMode.FULL);
        MockDriver d = driver(blk);
        DriverQueue q = d.queue(0);

        // IN: 3 sectors from sector 5, split over two data buffers, status in its own.
        int h = q.add(List.of(header(T_IN, 5)), 1024, 512, 1);
        q.kick();
        assertEquals(new DriverQueue.Used(h, 1537), q.awaitUsed(TIMEOUT));
        byte[] got = q.written(h, 1537);
        assertArrayEquals(Arrays.copyOfRange(contents, 5 * 512, 8 * 512), Arrays.copyOf(got, 1536));
        assertEquals(S_OK, got[1536]);

        // OUT: 2 sectors at sector 10, data in two readable buffers.
        byte[] a = new byte[512], b = new byte[512];
        Arrays.fill(a, (byte) 0xaa);
        Arrays.fill(b, (byte) 0xbb);
        assertEquals(S_OK, submit(q, 1, List.of(header(T_OUT, 10), a, b), 1));
        byte[] onDisk = Files.readAllBytes(file);
        assertArrayEquals(a, Arrays.copyOfRange(onDisk, 5120, 5632));
        assertArrayEquals(b, Arrays.copyOfRange(onDisk, 5632, 6144));

        // OUT of the last sector, header and data in one buffer.
        byte[] one = new byte[HEADER_BYTES + 512];
        System.arraycopy(header(T_OUT, DISK_BYTES / 512 - 1), 0, one, 0, HEADER_BYTES);
        Arrays.fill(one, HEADER_BYTES, one.length, (byte) 0x3c);
        assertEquals(S_OK, submit(q, 1, List.of(one), 1));
        assertEquals(0x3c, Files.readAllBytes(file)[DISK_BYTES - 1]);

        assertEquals(S_OK, submit(q, 1, List.of(header(T_FLUSH, 0)), 1));

        h = q.add(List.of(header(T_GET_ID, 0)), 20, 1);
        q.kick();
        assertEquals(new DriverQueue.Used(h, 21), q.awaitUsed(TIMEOUT));
        byte[] id = q.written(h, 21);
        byte[] want = Arrays.copyOf("jkrun-disk-0".getBytes(StandardCharsets.US_ASCII), 20);
        assertArrayEquals(want, Arrays.copyOf(id, 20));
        assertEquals(S_OK, id[20]);
        assertTrue(irq.count() >= 1);
    }

    @Test
    void discardAndWriteZeroes() throws Exception {
        VirtioBlock blk = device(false, SyncMode.RELAXED);
        DriverQueue q = driver(blk).queue(0);
        assertEquals(S_OK, submit(q, 1, List.of(header(T_WRITE_ZEROES, 0), segment(100, 8, 0)), 1));
        assertEquals(S_OK, submit(q, 1, List.of(header(T_WRITE_ZEROES, 0), segment(200, 1, WRITE_ZEROES_FLAG_UNMAP)), 1));
        byte[] onDisk = Files.readAllBytes(file);
        assertArrayEquals(new byte[8 * 512], Arrays.copyOfRange(onDisk, 100 * 512, 108 * 512));
        assertArrayEquals(new byte[512], Arrays.copyOfRange(onDisk, 200 * 512, 201 * 512));
        assertArrayEquals(Arrays.copyOfRange(contents, 108 * 512, 200 * 512), Arrays.copyOfRange(onDisk, 108 * 512, 200 * 512));
        assertEquals(S_OK, submit(q, 1, List.of(header(T_DISCARD, 0), segment(300, 16, 0)), 1));
        // discard with the unmap flag, or reserved flags: UNSUPP
        assertEquals(S_UNSUPP, submit(q, 1, List.of(header(T_DISCARD, 0), segment(300, 16, 1)), 1));
        assertEquals(S_UNSUPP, submit(q, 1, List.of(header(T_WRITE_ZEROES, 0), segment(300, 16, 4)), 1));
        // out of range, two segments, no segment
        assertEquals(S_IOERR, submit(q, 1, List.of(header(T_WRITE_ZEROES, 0), segment(DISK_BYTES / 512 - 1, 2, 0)), 1));
        assertEquals(S_IOERR, submit(q, 1, List.of(header(T_DISCARD, 0), segment(0, 1, 0), segment(2, 1, 0)), 1));
        assertEquals(S_IOERR, submit(q, 1, List.of(header(T_DISCARD, 0)), 1));
    }

    @Test
    void readOnlyDiskRefusesWrites() throws Exception {
        VirtioBlock blk = device(true, SyncMode.FULL);
        DriverQueue q = driver(blk).queue(0);
        byte[] data = new byte[1024];
        Arrays.fill(data, (byte) 0x55);
        assertEquals(S_IOERR, submit(q, 1, List.of(header(T_OUT, 0), data), 1));
        assertEquals(S_IOERR, submit(q, 1, List.of(header(T_WRITE_ZEROES, 0), segment(0, 8, 0)), 1));
        assertEquals(S_IOERR, submit(q, 1, List.of(header(T_DISCARD, 0), segment(0, 8, 0)), 1));
        assertEquals(S_OK, submit(q, 1, List.of(header(T_FLUSH, 0)), 1));
        int h = q.add(List.of(header(T_IN, 0)), 512, 1);
        q.kick();
        assertEquals(new DriverQueue.Used(h, 513), q.awaitUsed(TIMEOUT));
        assertArrayEquals(Arrays.copyOf(contents, 512), q.written(h, 512));
        assertArrayEquals(contents, Files.readAllBytes(file), "read-only file changed");
    }

    @Test
    void malformedRequestsGetStatusAndQueueKeepsWorking() throws Exception {
        VirtioBlock blk = device(false, SyncMode.FULL);
        DriverQueue q = driver(blk).queue(0);
        long cap = DISK_BYTES / 512;
        // out of range: one past the end, straddling the end, and a sector number that overflows when scaled
        assertEquals(S_IOERR, submit(q, 1, List.of(header(T_IN, cap)), 512, 1));
        assertEquals(S_IOERR, submit(q, 1, List.of(header(T_OUT, cap - 1), new byte[1024]), 1));
        assertEquals(S_IOERR, submit(q, 1, List.of(header(T_IN, -1L)), 512, 1));
        assertEquals(S_IOERR, submit(q, 1, List.of(header(T_IN, Long.MAX_VALUE / 256)), 512, 1));
        // length not a multiple of 512
        assertEquals(S_IOERR, submit(q, 1, List.of(header(T_OUT, 0), new byte[100]), 1));
        assertEquals(S_IOERR, submit(q, 1, List.of(header(T_IN, 0)), 700, 1));
        // wrong directions: IN with readable data, OUT with writable data
        assertEquals(S_IOERR, submit(q, 1, List.of(header(T_IN, 0), new byte[512]), 512, 1));
        assertEquals(S_IOERR, submit(q, 1, List.of(header(T_OUT, 0)), 512, 1));
        // short header
        assertEquals(S_IOERR, submit(q, 1, List.of(new byte[8]), 1));
        // unknown type
        assertEquals(S_UNSUPP, submit(q, 1, List.of(header(99, 0)), 1));
        // missing status descriptor: nothing writable, nothing done, used length 0
        int h = q.add(List.of(header(T_OUT, 0), new byte[512]));
        q.kick();
        assertEquals(new DriverQueue.Used(h, 0), q.awaitUsed(TIMEOUT));
        assertArrayEquals(contents, Files.readAllBytes(file), "malformed requests changed the disk");
        // the queue still works
        h = q.add(List.of(header(T_IN, 1)), 512, 1);
        q.kick();
        assertEquals(new DriverQueue.Used(h, 513), q.awaitUsed(TIMEOUT));
        assertArrayEquals(Arrays.copyOfRange(contents, 512, 1024), q.written(h, 512));
        assertEquals(S_OK, status(q, h));
    }

    @Test
    void manyRequestsInOneKick() throws Exception {
        VirtioBlock blk = device(false, SyncMode.FULL);
        DriverQueue q = driver(blk).queue(0);
        Random r = new Random(3);
        byte[] expected = Arrays.copyOf(contents, DISK_BYTES);
        for (int round = 0; round < 3; round++) {
            q.resetBuffers();
            List<Integer> heads = new ArrayList<>();
            for (int i = 0; i < 80; i++) { // 3 descriptors each: 240 in flight of the ring's 256
                int sector = r.nextInt(DISK_BYTES / 512 - 8);
                byte[] d = new byte[512 * (1 + r.nextInt(8))];
                r.nextBytes(d);
                heads.add(q.add(List.of(header(T_OUT, sector), d), 1));
                System.arraycopy(d, 0, expected, sector * 512, d.length);
            }
            q.kick();
            for (int h : heads) {
                assertEquals(new DriverQueue.Used(h, 1), q.awaitUsed(TIMEOUT));
                assertEquals(S_OK, status(q, h));
            }
        }
        q.resetBuffers();
        int h = q.add(List.of(header(T_IN, 0)), 256 * 1024, 1);
        q.kick();
        assertEquals(new DriverQueue.Used(h, 256 * 1024 + 1), q.awaitUsed(TIMEOUT));
        assertArrayEquals(expected, Arrays.copyOf(Files.readAllBytes(file), DISK_BYTES), "file");
        assertArrayEquals(Arrays.copyOf(expected, 256 * 1024), q.written(h, 256 * 1024), "IN");
    }

    /** A guest's fstrim frees qcow2 clusters for reuse: write/DISCARD cycles keep the host file bounded. */
    @Test
    void qcow2DiscardCyclesKeepTheFileBounded() throws Exception {
        Qemu.require();
        Path img = dir.resolve("trim.qcow2");
        Qemu.ok("qemu-img", "create", "-f", "qcow2", img.toString(), "32M");
        VirtioBlock blk = new VirtioBlock(DiskImages.open(img, ImageFormat.QCOW2, false, false), "q", SyncMode.FULL);
        toClose.add(blk);
        DriverQueue q = driver(blk).queue(0);
        Random r = new Random(13);
        int chunk = 1 << 20, chunks = 8; // 8 MiB a cycle, in requests of 1 MiB
        long footprint = 0;
        for (int cycle = 0; cycle < 8; cycle++) {
            long first = (cycle % 3) * (8 << 20) / 512;
            for (int i = 0; i < chunks; i++) {
                q.resetBuffers();
                byte[] d = new byte[chunk];
                r.nextBytes(d);
                long sector = first + (long) i * chunk / 512;
                assertEquals(S_OK, submit(q, 1, List.of(header(T_OUT, sector), d), 1));
                q.resetBuffers();
                int h = q.add(List.of(header(T_IN, sector)), chunk, 1);
                q.kick();
                assertEquals(new DriverQueue.Used(h, chunk + 1), q.awaitUsed(TIMEOUT));
                assertArrayEquals(d, q.written(h, chunk), "read back in cycle " + cycle);
            }
            if (cycle == 0) {
                footprint = Files.size(img);
            }
            q.resetBuffers();
            assertEquals(S_OK, submit(q, 1, List.of(header(T_DISCARD, 0), segment(first, (8 << 20) / 512, 0)), 1));
            assertEquals(S_OK, submit(q, 1, List.of(header(T_FLUSH, 0)), 1));
            assertTrue(Files.size(img) <= 2 * footprint, "after cycle " + cycle + " the file is " + Files.size(img)
                    + " bytes, one cycle's footprint " + footprint);
        }
        q.resetBuffers();
        int h = q.add(List.of(header(T_IN, 0)), 1 << 20, 1);
        q.kick();
        assertEquals(new DriverQueue.Used(h, (1 << 20) + 1), q.awaitUsed(TIMEOUT));
        assertArrayEquals(new byte[1 << 20], q.written(h, 1 << 20), "discarded data reads as zeros");
        blk.close();
        String check = Qemu.ok("qemu-img", "check", "-f", "qcow2", img.toString());
        assertTrue(check.contains("No errors were found") && !check.contains("leaked"), check);
    }

    @Test
    void qcow2BehindTheDevice() throws Exception {
        Path img = dir.resolve("d.qcow2");
        Qemu.require();
        Qemu.ok("qemu-img", "create", "-f", "qcow2", img.toString(), "4M");
        VirtioBlock blk = new VirtioBlock(DiskImages.open(img, ImageFormat.QCOW2, false, false), "q", SyncMode.FULL);
        toClose.add(blk);
        DriverQueue q = driver(blk).queue(0);
        byte[] data = new byte[4096];
        new Random(9).nextBytes(data);
        assertEquals(S_OK, submit(q, 1, List.of(header(T_OUT, 77), data), 1));
        int h = q.add(List.of(header(T_IN, 77)), 4096, 1);
        q.kick();
        assertEquals(new DriverQueue.Used(h, 4097), q.awaitUsed(TIMEOUT));
        assertArrayEquals(data, q.written(h, 4096));
        h = q.add(List.of(header(T_IN, 0)), 512, 1);
        q.kick();
        assertEquals(new DriverQueue.Used(h, 513), q.awaitUsed(TIMEOUT));
        assertArrayEquals(new byte[512], q.written(h, 512));
    }
}
