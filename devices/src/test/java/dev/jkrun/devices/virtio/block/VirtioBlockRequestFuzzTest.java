package dev.jkrun.devices.virtio.block;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jkrun.devices.block.DiskImage;
import dev.jkrun.devices.block.DiskImages;
import dev.jkrun.devices.block.FuzzFiles;
import dev.jkrun.devices.block.ImageFormat;
import dev.jkrun.devices.block.SyncMode;
import dev.jkrun.devices.block.TinyImages;
import dev.jkrun.devices.testing.DriverQueue;
import dev.jkrun.devices.virtio.queue.Descriptor;
import dev.jkrun.devices.virtio.queue.DescriptorChain;
import dev.jkrun.devices.virtio.queue.InvalidChainException;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.HeapGuestMemory;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * virtio-blk requests from a hostile driver over raw, qcow2 and VMDK images, each read-write and read-only: the
 * request type, sector, segments and the chain's layout (how many descriptors, their lengths, directions and
 * addresses, inside guest RAM or not) are fuzzed, and the chain is served directly ({@link VirtioBlock#handle}).
 * Oracle: the device never throws; a chain with a writable byte in RAM gets a status there (OK, IOERR or UNSUPP)
 * and a used length that covers it and no more than its writable bytes, one without gets 0; an OK IN/OUT lay wholly
 * on the disk and an OK write was to a writable disk; guest memory changed only inside the chain's writable
 * buffers; read-only images, the files' sizes (no write past a disk's end) and a canary beside the images never
 * change. Replayed from the committed inputs by every test run; fuzzed with {@code fuzz/run
 * VirtioBlockRequestFuzzTest}.
 */
class VirtioBlockRequestFuzzTest {
    static final int DISK_BYTES = 1 << 20, TAIL_BYTES = 64 << 10;
    static final int MEM_BYTES = 3 << 20, RING = 0, QUEUE_SIZE = 16, BUFFERS = 0x10000;
    static final int[] TYPES = {VirtioBlock.T_IN, VirtioBlock.T_OUT, VirtioBlock.T_FLUSH, VirtioBlock.T_GET_ID,
            VirtioBlock.T_DISCARD, VirtioBlock.T_WRITE_ZEROES};

    /** A device and what must hold of its files. */
    private record Disk(VirtioBlock dev, boolean readOnly, List<Path> files, long[] crcs, long[] sizes) {}

    private static List<Disk> disks;
    private static Path canary;
    private static long canaryCrc;
    private static HeapGuestMemory mem;

    private static void setUp() throws IOException {
        Path d = FuzzFiles.scratch("blk-fuzz");
        canary = Files.write(d.resolve("canary.bin"), new byte[4096]);
        canaryCrc = FuzzFiles.crc(canary);
        disks = new ArrayList<>();
        for (boolean ro : new boolean[] {false, true}) {
            String s = ro ? "ro" : "rw";
            byte[] raw = new byte[DISK_BYTES];
            Arrays.fill(raw, (byte) 0x3c);
            Path rawFile = Files.write(d.resolve(s + ".raw"), raw);
            add(DiskImages.open(rawFile, ImageFormat.RAW, ro, false), ro, List.of(rawFile), !ro);
            Path q = TinyImages.qcow2(d.resolve(s + ".qcow2"), DISK_BYTES);
            add(DiskImages.open(q, ImageFormat.QCOW2, ro, false), ro, List.of(q), false); // qcow2 grows as it allocates
            Path v = TinyImages.vmdk(d, s, DISK_BYTES, TAIL_BYTES, (byte) 0x7e);
            add(DiskImages.open(v, ImageFormat.VMDK, ro, false), ro,
                    List.of(v, d.resolve(s + "-flat.bin"), d.resolve(s + "-ro.bin")), true);
        }
        mem = HeapGuestMemory.of(0, MEM_BYTES);
    }

    private static void add(DiskImage img, boolean ro, List<Path> files, boolean fixedSize) throws IOException {
        long[] crcs = new long[files.size()], sizes = new long[files.size()];
        for (int i = 0; i < files.size(); i++) {
            crcs[i] = FuzzFiles.crc(files.get(i));
            sizes[i] = fixedSize ? Files.size(files.get(i)) : -1;
        }
        disks.add(new Disk(new VirtioBlock(img, "fuzz" + disks.size(), SyncMode.FULL), ro, files, crcs, sizes));
    }

    private record Buf(long addr, int len, boolean writable) {}

    @FuzzTest(maxDuration = "1h")
    void requestsGetAStatusAndStayInBounds(FuzzedDataProvider data) throws IOException {
        serve(data);
    }

    /** What one input did: the disk, the request type and the status (-1: none written, or no chain). */
    record Outcome(int disk, int type, int status) {}

    static Outcome serve(FuzzedDataProvider data) throws IOException {
        if (disks == null) {
            setUp();
        }
        int diskIndex = data.consumeInt(0, disks.size() - 1);
        Disk disk = disks.get(diskIndex);
        long capSectors = disk.dev().capacitySectors();
        int type = data.consumeBoolean() ? data.pickValue(TYPES) : data.consumeInt();
        long sector = pickSector(data, capSectors);
        ByteBuffer req = ByteBuffer.allocate(VirtioBlock.HEADER_BYTES + 3 * VirtioBlock.SEGMENT_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        req.putInt(type).putInt(data.consumeInt()).putLong(sector);
        // Half the inputs are chains as a driver lays them out (request, data, a 1-byte status), so requests get
        // past the checks; the other half any layout.
        boolean wellFormed = data.consumeBoolean();
        boolean zeroing = type == VirtioBlock.T_DISCARD || type == VirtioBlock.T_WRITE_ZEROES;
        int segments = wellFormed ? (zeroing ? 1 : 0) : data.consumeInt(0, 3);
        for (int i = 0; i < segments; i++) {
            req.putLong(pickSector(data, capSectors)).putInt(pickCount(data)).putInt(data.consumeBoolean() ? 0 : data.consumeInt());
        }
        byte[] request = Arrays.copyOf(req.array(), req.position());

        // The chain: readable buffers (the request bytes spread over them), then writable ones.
        List<Buf> bufs = new ArrayList<>();
        long next = BUFFERS;
        List<int[]> layout = new ArrayList<>(); // {len, writable}
        if (wellFormed) {
            int dataBytes = 512 * data.consumeInt(0, 64);
            layout.add(new int[] {request.length, 0});
            if (type == VirtioBlock.T_OUT) {
                layout.add(new int[] {dataBytes, 0});
            } else if (type == VirtioBlock.T_IN || type == VirtioBlock.T_GET_ID) {
                layout.add(new int[] {dataBytes, 1});
            }
            layout.add(new int[] {1, 1});
        } else {
            int n = data.consumeInt(1, 6);
            for (int i = 0; i < n; i++) {
                boolean writable = i > 0 && data.consumeBoolean();
                layout.add(new int[] {pickLength(data, i == 0 ? request.length : 512), writable ? 1 : 0});
            }
        }
        int n = layout.size();
        for (int[] l : layout) {
            int len = l[0];
            boolean writable = l[1] != 0;
            long addr;
            if (!wellFormed && data.consumeInt(0, 15) == 0) {
                addr = data.consumeLong(); // anywhere, in RAM or not
            } else if (next + Integer.toUnsignedLong(len) <= MEM_BYTES) {
                addr = next;
                next = (next + Integer.toUnsignedLong(len) + 7) & ~7L;
            } else {
                addr = MEM_BYTES - data.consumeInt(0, 4096); // runs off the end of RAM
            }
            bufs.add(new Buf(addr, len, writable));
        }
        boolean indirect = data.consumeInt(0, 7) == 0;

        mem.fill(GuestAddress.of(BUFFERS), MEM_BYTES - BUFFERS, (byte) 0xa5);
        int at = 0;
        for (Buf b : bufs) {
            if (!b.writable() && at < request.length && inRam(b.addr(), 1)) {
                int k = (int) Math.min(Integer.toUnsignedLong(b.len()), request.length - at);
                if (inRam(b.addr(), k)) {
                    mem.write(GuestAddress.of(b.addr()), request, at, k);
                }
                at += k;
            }
        }
        DriverQueue dq = new DriverQueue(mem, QUEUE_SIZE, RING, BUFFERS, MEM_BYTES - BUFFERS, () -> { });
        if (indirect) {
            long table = MEM_BYTES - 16L * n;
            for (int i = 0; i < n; i++) {
                Buf b = bufs.get(i);
                dq.writeDescriptorAt(table + 16L * i, b.addr(), b.len(), flags(b, i + 1 < n), i + 1);
            }
            dq.writeDescriptor(0, table, 16 * n, Queue.VRING_DESC_F_INDIRECT, 0);
        } else {
            for (int i = 0; i < n; i++) {
                Buf b = bufs.get(i);
                dq.writeDescriptor(i, b.addr(), b.len(), flags(b, i + 1 < n), i + 1);
            }
        }
        dq.publish(0);
        Queue q = dq.deviceQueue(QUEUE_SIZE);
        q.setIndirectAllowed(true);
        DescriptorChain chain;
        try {
            Optional<DescriptorChain> c = q.pop(mem);
            if (c.isEmpty()) {
                return new Outcome(diskIndex, type, -1);
            }
            chain = c.get();
        } catch (InvalidChainException e) {
            return new Outcome(diskIndex, type, -1); // the queue's business, not the device's
        }

        byte[] before = new byte[MEM_BYTES];
        mem.read(GuestAddress.of(0), before, 0, MEM_BYTES);
        int used;
        try {
            used = disk.dev().handle(mem, chain);
        } catch (Throwable t) {
            throw new AssertionError("the device threw on " + chain, t);
        }
        byte[] after = new byte[MEM_BYTES];
        mem.read(GuestAddress.of(0), after, 0, MEM_BYTES);

        Descriptor statusDesc = null;
        for (Descriptor d : chain.writable()) {
            if (d.len() != 0) {
                statusDesc = d;
            }
        }
        long statusAddr = statusDesc == null ? -1 : statusDesc.addr().value() + statusDesc.length() - 1;
        int status = -1;
        if (statusDesc == null || !inRam(statusAddr, 1)) {
            assertEquals(0, used, "used length of a chain with no status byte in RAM");
        } else {
            status = after[(int) statusAddr];
            assertTrue(status == VirtioBlock.S_OK || status == VirtioBlock.S_IOERR || status == VirtioBlock.S_UNSUPP,
                    "status byte " + status);
            assertTrue(Integer.toUnsignedLong(used) >= 1 && Integer.toUnsignedLong(used) <= chain.writableLength(),
                    "used length " + Integer.toUnsignedLong(used) + " of " + chain.writableLength() + " writable bytes");
            if (status == VirtioBlock.S_OK) {
                checkOk(disk, capSectors, type, sector, chain);
            }
        }
        for (int i = Arrays.mismatch(before, after); i >= 0; i = nextMismatch(before, after, i + 1)) {
            if (!inWritable(chain, i)) {
                fail("guest byte 0x" + Integer.toHexString(i) + " changed outside the chain's writable buffers");
            }
        }
        for (int i = 0; i < disk.files().size(); i++) {
            Path f = disk.files().get(i);
            if (disk.readOnly()) {
                assertEquals(disk.crcs()[i], FuzzFiles.crc(f), "read-only image " + f + " changed");
            }
            if (disk.sizes()[i] >= 0) {
                assertEquals(disk.sizes()[i], Files.size(f), f + " changed size");
            }
        }
        assertEquals(canaryCrc, FuzzFiles.crc(canary), "the canary beside the images changed");
        return new Outcome(diskIndex, type, status);
    }

    /** What an OK status promises: a data transfer lay on the disk in whole sectors; only a writable disk was written. */
    private static void checkOk(Disk disk, long capSectors, int type, long sector, DescriptorChain chain) {
        long bytes = type == VirtioBlock.T_IN ? chain.writableLength() - 1 : chain.readableLength() - VirtioBlock.HEADER_BYTES;
        if (type == VirtioBlock.T_IN || type == VirtioBlock.T_OUT) {
            BigInteger end = new BigInteger(Long.toUnsignedString(sector)).multiply(BigInteger.valueOf(512)).add(BigInteger.valueOf(bytes));
            assertTrue(bytes % 512 == 0 && end.compareTo(BigInteger.valueOf(capSectors * 512)) <= 0,
                    "OK for " + bytes + " bytes at sector " + Long.toUnsignedString(sector) + " of " + capSectors);
        }
        if (disk.readOnly()) {
            assertTrue(type != VirtioBlock.T_OUT && type != VirtioBlock.T_DISCARD && type != VirtioBlock.T_WRITE_ZEROES,
                    "OK for request type " + type + " on a read-only disk");
        }
    }

    private static int flags(Buf b, boolean hasNext) {
        return (b.writable() ? Queue.VRING_DESC_F_WRITE : 0) | (hasNext ? Queue.VRING_DESC_F_NEXT : 0);
    }

    private static boolean inRam(long addr, long len) {
        return addr >= 0 && len >= 0 && addr <= MEM_BYTES - len;
    }

    private static boolean inWritable(DescriptorChain chain, long addr) {
        for (Descriptor d : chain.writable()) {
            long a = d.addr().value();
            if (Long.compareUnsigned(addr - a, d.length()) < 0) {
                return true;
            }
        }
        return false;
    }

    private static int nextMismatch(byte[] a, byte[] b, int from) {
        if (from >= a.length) {
            return -1;
        }
        int m = Arrays.mismatch(a, from, a.length, b, from, b.length);
        return m < 0 ? -1 : from + m;
    }

    /** Sectors near the interesting edges: 0, the end of the disk, values that overflow when scaled, or anything. */
    private static long pickSector(FuzzedDataProvider data, long capSectors) {
        return switch (data.consumeInt(0, 3)) {
            case 0 -> data.consumeLong(0, capSectors + 2);
            case 1 -> capSectors - data.consumeLong(0, 4);
            case 2 -> data.pickValue(new long[] {-1L, Long.MIN_VALUE, Long.MAX_VALUE, 1L << 55, (1L << 54) - 1, 1L << 32});
            default -> data.consumeLong();
        };
    }

    private static int pickCount(FuzzedDataProvider data) {
        return data.consumeBoolean() ? data.consumeInt(0, 4096) : data.consumeInt();
    }

    private static int pickLength(FuzzedDataProvider data, int usual) {
        return switch (data.consumeInt(0, 3)) {
            case 0 -> usual;
            case 1 -> data.pickValue(new int[] {0, 1, 15, 16, 17, 32, 511, 512, 513, 4096, 65536, DISK_BYTES, DISK_BYTES + 512});
            case 2 -> 512 * data.consumeInt(0, 2 * DISK_BYTES / 512);
            default -> data.consumeInt();
        };
    }
}
