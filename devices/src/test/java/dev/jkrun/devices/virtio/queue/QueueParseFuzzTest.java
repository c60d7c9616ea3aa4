package dev.jkrun.devices.virtio.queue;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jkrun.devices.testing.StrictGuestMemory;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.HeapGuestMemory;
import dev.jkrun.memory.MemoryRegion;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Optional;

/**
 * The device side of a split virtqueue against a hostile driver: the fuzzer lays out rings and descriptors
 * (queue size, ring addresses, descriptor contents and runs of them, indirect tables, avail idx, features) in two
 * RAM regions with a hole between them, then drives pop/addUsed/notification cycles, rewriting rings as it goes.
 * The device sees RAM only through {@link StrictGuestMemory}, so any access outside RAM fails the run. Oracle: a
 * queue that passes validate() never makes the device throw anything but InvalidChainException from pop(), and a
 * popped chain has every buffer inside RAM and at most 2^32 bytes; a pop reads a bounded number of words.
 * Replayed from the committed inputs in every test run; fuzzed with {@code fuzz/run QueueParseFuzzTest}.
 */
class QueueParseFuzzTest {
    /** Low RAM [0, 512 KiB) and high RAM [4 GiB, 4 GiB + 64 KiB): a hole between them and a 32-bit boundary. */
    static final long LOW_SIZE = 0x8_0000, HIGH = 0x1_0000_0000L, HIGH_SIZE = 0x1_0000;
    private static final HeapGuestMemory TWO_REGIONS = HeapGuestMemory.of(
            new MemoryRegion(GuestAddress.ZERO, LOW_SIZE), new MemoryRegion(GuestAddress.of(HIGH), HIGH_SIZE));
    /**
     * High RAM alone: a chain's buffers are then checked inline against its one region (DescriptorChain.inRam), and
     * every address below 4 GiB wraps below the region's start.
     */
    private static final HeapGuestMemory ONE_REGION = HeapGuestMemory.of(new MemoryRegion(GuestAddress.of(HIGH), HIGH_SIZE));
    /** The RAM of the target running now (targets run one at a time), and the driver side's own notion of it. */
    private static HeapGuestMemory RAM;
    /** Independent of the memory module's bounds checks under test. */
    private static StrictGuestMemory DRIVER;
    private static final int MAX_OPS = 48;

    private static final long[] BASES = {0, 0x1000, LOW_SIZE, HIGH, HIGH + HIGH_SIZE, 0x8000_0000_0000_0000L,
        0xFFFF_FFFF_FFFF_F000L, 0x7FFF_FFFF_FFFF_F000L, 0x1_0000_0000L - 0x1000, 0x8000_0001_0000_0000L};

    @FuzzTest(maxDuration = "1h")
    void popNeverLeavesRam(FuzzedDataProvider data) {
        run(TWO_REGIONS, data);
    }

    /** The same driver against RAM of one region (a layout in low RAM then fails validate, as it should). */
    @FuzzTest(maxDuration = "1h")
    void popNeverLeavesOneRegionRam(FuzzedDataProvider data) {
        run(ONE_REGION, data);
    }

    private static void run(HeapGuestMemory ram, FuzzedDataProvider data) {
        RAM = ram;
        DRIVER = new StrictGuestMemory(ram);
        for (MemoryRegion r : ram.regions()) {
            ram.fill(r.start(), r.size(), (byte) 0);
        }
        StrictGuestMemory mem = new StrictGuestMemory(RAM);

        int maxSize = 1 << data.consumeInt(0, 15);
        Queue q = new Queue(maxSize);
        q.setSize(data.consumeBoolean() ? 1 << data.consumeInt(0, 13) : data.consumeInt());
        q.setEventIdx(data.consumeBoolean());
        q.setIndirectAllowed(data.consumeBoolean());
        int size = q.size();
        if (data.consumeBoolean()) {
            // A well-formed layout (as Linux lays it out) in low or high RAM, so that most runs get past validate.
            long base = (data.consumeBoolean() ? HIGH : 0x1000) + 16L * data.consumeInt(0, 64);
            long avail = base + 16L * size;
            q.setDescTable(GuestAddress.of(base));
            q.setAvailRing(GuestAddress.of(avail));
            q.setUsedRing(GuestAddress.of((avail + 6 + 2L * size + 3) & ~3L));
        } else {
            q.setDescTable(GuestAddress.of(address(data)));
            q.setAvailRing(GuestAddress.of(address(data)));
            q.setUsedRing(GuestAddress.of(address(data)));
        }
        q.setReady(true);

        int writes = data.consumeInt(0, 24);
        for (int i = 0; i < writes; i++) {
            driverWrite(data, q);
        }

        List<QueueError> errs = q.validate(mem);
        assertEquals(0, mem.accesses(), "validate reads no guest memory");
        if (!errs.isEmpty()) {
            for (QueueError e : errs) {
                assertTrue(e.isQueueLevel(), e + " from validate");
            }
            return; // the transport sets DEVICE_NEEDS_RESET and never hands this queue to a device
        }

        boolean popped = false;
        for (int op = 0; op < MAX_OPS && data.remainingBytes() > 0; op++) {
            switch (data.consumeInt(0, 7)) {
                case 0, 1 -> popped = pop(data, q, mem);
                case 2 -> q.needsNotification(mem);
                case 3 -> q.enableNotification(mem);
                case 4 -> q.disableNotification(mem);
                case 5 -> {
                    if (popped) {
                        q.undoPop();
                        popped = false;
                    }
                }
                default -> driverWrite(data, q);
            }
        }
        assertEquals(List.of(), mem.violations());
    }

    /** One pop and what a device does with its result; returns whether a chain came back (undoPop allowed). */
    private static boolean pop(FuzzedDataProvider data, Queue q, StrictGuestMemory mem) {
        int size = q.size();
        long before = mem.accesses();
        Optional<DescriptorChain> got;
        try {
            got = q.pop(mem);
        } catch (InvalidChainException e) {
            if (e.isChainError()) {
                assertTrue(e.headIndex() < 0x1_0000, "head is a u16");
                if (data.consumeBoolean()) {
                    q.addUsed(mem, e.headIndex(), 0);
                }
            } else {
                assertTrue(e.error().isQueueLevel());
                assertTrue(q.isBroken(), "a queue-level error breaks the queue");
            }
            assertBoundedWork(mem.accesses() - before, size);
            return false;
        }
        assertBoundedWork(mem.accesses() - before, size);
        if (got.isEmpty()) {
            return false;
        }
        DescriptorChain c = got.get();
        assertTrue(c.headIndex() >= 0 && c.headIndex() < size, "head " + c.headIndex() + " in the table");
        long total = 0;
        boolean writable = false;
        for (Descriptor d : c.descriptors()) {
            if (d.length() != 0 && !mem.insideRam(d.addr().value(), d.length())) {
                fail("popped buffer outside RAM: " + d);
            }
            assertTrue(!writable || d.writable(), "readable after writable");
            writable |= d.writable();
            total += d.length();
        }
        assertTrue(total <= Queue.MAX_CHAIN_BYTES, "chain of " + total + " bytes");
        assertEquals(total, c.readableLength() + c.writableLength());

        // Use it as a device would: read some of the readable part, write some of the writable part.
        int written = 0;
        try {
            Reader r = c.reader();
            r.skip(data.consumeInt(0, 64));
            byte[] chunk = new byte[data.consumeInt(0, 4096)];
            r.read(chunk, 0, chunk.length);
            for (ByteBuffer b : r.views(data.consumeInt(0, 8192))) {
                b.get(new byte[b.remaining()]);
            }
            if (c.readableLength() <= 0x1_0000) {
                c.readAll();
            } else {
                r.readExact(new byte[256], 0, (int) Math.min(256, r.available()));
            }
            Writer w = c.writer();
            byte[] reply = new byte[data.consumeInt(0, 600)];
            w.write(reply, 0, reply.length);
            ByteBuffer[] vs = w.views(data.consumeInt(0, 2048));
            long filled = 0;
            for (ByteBuffer b : vs) {
                filled += b.remaining();
                b.put(new byte[b.remaining()]);
            }
            w.advance(filled);
            if (w.available() > 0) {
                w.writeByte((byte) 1);
            }
            written = w.usedLength();
        } catch (InvalidChainException e) {
            assertEquals(QueueError.DESCRIPTOR_CHAIN_TOO_SHORT, e.error());
        }
        if (data.consumeBoolean()) {
            q.addUsed(mem, c.headIndex(), written);
            return false;
        }
        return true;
    }

    /**
     * A pop reads avail idx and one ring slot, then four fields per descriptor of the table (each at most once
     * before CHAIN_TOO_LONG) and per entry of one indirect table.
     */
    private static void assertBoundedWork(long accesses, int size) {
        long bound = 2 + 4L * (size + Queue.MAX_INDIRECT_ENTRIES + 1);
        assertTrue(accesses <= bound, accesses + " accesses for one pop, bound " + bound);
    }

    /** The driver (or a hostile guest) changes RAM: descriptors, runs of them, ring entries, avail idx, bytes. */
    private static void driverWrite(FuzzedDataProvider data, Queue q) {
        switch (data.consumeInt(0, 4)) {
            case 0 -> {
                long at = data.consumeBoolean()
                        ? q.descTable().value() + 16L * data.consumeInt(0, Math.max(0, Math.min(q.size(), 1 << 16) - 1))
                        : address(data);
                writeDescriptor(at, address(data), length(data), data.consumeInt(0, 7), data.consumeInt(0, 0xFFFF));
            }
            case 1 -> {
                // A run of linked descriptors (a long chain, or an indirect table), all naming one buffer.
                long at = data.consumeBoolean() ? q.descTable().value() : address(data);
                int n = data.consumeInt(1, 1 << 15);
                long addr = address(data);
                int len = length(data);
                int flags = data.consumeInt(0, 7);
                boolean linked = data.consumeBoolean();
                int fixedNext = data.consumeInt(0, 0xFFFF);
                for (int i = 0; i < n; i++) {
                    int f = i + 1 < n && linked ? flags | Queue.VRING_DESC_F_NEXT : flags;
                    if (!writeDescriptor(at + 16L * i, addr, len, f, linked ? i + 1 : fixedNext)) {
                        break;
                    }
                }
            }
            case 2 -> {
                long slot = q.availRing().value() + 4 + 2L * data.consumeInt(0, 0xFFFF);
                write16(slot, data.consumeBoolean() ? data.consumeInt(0, 15) : data.consumeInt(0, 0xFFFF));
            }
            case 3 -> write16(q.availRing().value() + 2, data.consumeBoolean() ? data.consumeInt(0, 16) : data.consumeInt(0, 0xFFFF));
            default -> {
                long at = address(data);
                byte[] b = data.consumeBytes(64);
                if (DRIVER.insideRam(at, b.length)) {
                    RAM.write(GuestAddress.of(at), b);
                }
            }
        }
    }

    private static boolean writeDescriptor(long at, long addr, int len, int flags, int next) {
        if (!DRIVER.insideRam(at, 16)) {
            return false;
        }
        RAM.writeLong(GuestAddress.of(at), addr);
        RAM.writeInt(GuestAddress.of(at + 8), len);
        RAM.writeShort(GuestAddress.of(at + 12), (short) flags);
        RAM.writeShort(GuestAddress.of(at + 14), (short) next);
        return true;
    }

    private static void write16(long at, int v) {
        if (DRIVER.insideRam(at, 2)) {
            RAM.writeShort(GuestAddress.of(at), (short) v);
        }
    }

    /** Addresses near the edges that matter: RAM bounds, 2^32, 2^63, 2^64; or anything. */
    private static long address(FuzzedDataProvider data) {
        int which = data.consumeInt(0, BASES.length);
        if (which == BASES.length) {
            return data.consumeLong();
        }
        return BASES[which] + data.consumeLong(-64, 0x10_0000);
    }

    /** Buffer lengths: small, table-sized, region-sized, the largest u32s, or anything. */
    private static int length(FuzzedDataProvider data) {
        return switch (data.consumeInt(0, 4)) {
            case 0 -> data.consumeInt(0, 64);
            case 1 -> 16 * data.consumeInt(0, 1 << 16);
            case 2 -> (int) LOW_SIZE - data.consumeInt(0, 64);
            case 3 -> -1 - data.consumeInt(0, 0x1000);
            default -> data.consumeInt();
        };
    }
}
