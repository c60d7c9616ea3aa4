package dev.jkrun.devices.virtio.queue;

import dev.jkrun.devices.testing.DriverQueue;
import dev.jkrun.devices.testing.StrictGuestMemory;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.HeapGuestMemory;
import dev.jkrun.memory.MemoryRegion;
import dev.jkrun.memory.MmapGuestMemory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class QueueTest {
    static final int SIZE = 16;
    static final long MIB = 1 << 20;
    HeapGuestMemory mem;
    /** The same RAM for the device side where a test wants every access outside RAM to fail it. */
    StrictGuestMemory strict;
    DriverQueue dq;
    Queue q;

    @BeforeEach
    void setUp() {
        mem = HeapGuestMemory.of(0, 1 << 20);
        strict = new StrictGuestMemory(mem);
        dq = new DriverQueue(mem, SIZE, 0x1000, 0x10000, 0x40000, () -> { });
        q = dq.deviceQueue(256);
        assertEquals(List.of(), q.validate(strict));
    }

    @AfterEach
    void noAccessOutsideRam() {
        assertEquals(List.of(), strict.violations());
    }

    private QueueError popError() {
        InvalidChainException e = assertThrows(InvalidChainException.class, () -> q.pop(strict));
        return e.error();
    }

    /** After a bad chain the device gives it back with len 0 and a good chain still works. */
    private void assertChainErrorThenRecovers(QueueError expected, int head) throws Exception {
        InvalidChainException e = assertThrows(InvalidChainException.class, () -> q.pop(strict));
        assertEquals(expected, e.error());
        assertTrue(e.isChainError());
        assertEquals(head, e.headIndex());
        q.addUsed(strict, e.headIndex(), 0);
        assertEquals(new DriverQueue.Used(head, 0), dq.pollUsed().orElseThrow());
        assertFalse(q.isBroken());
        int good = dq.addReadable(new byte[] {1, 2, 3});
        DescriptorChain c = q.pop(strict).orElseThrow();
        assertEquals(good, c.headIndex());
        assertArrayEquals(new byte[] {1, 2, 3}, c.readAll());
    }

    @Test
    void popsWellFormedChain() throws Exception {
        int head = dq.add(List.of(new byte[] {1, 2}, new byte[] {3}), 4, 5);
        DescriptorChain c = q.pop(mem).orElseThrow();
        assertEquals(head, c.headIndex());
        assertEquals(4, c.descriptors().size());
        assertEquals(3, c.readableLength());
        assertEquals(9, c.writableLength());
        assertArrayEquals(new byte[] {1, 2, 3}, c.readAll());
        assertTrue(q.pop(mem).isEmpty());
        Writer w = c.writer();
        w.writeExact(new byte[] {9, 8, 7, 6, 5, 4});
        q.addUsed(mem, head, w.usedLength());
        assertEquals(new DriverQueue.Used(head, 6), dq.pollUsed().orElseThrow());
        assertArrayEquals(new byte[] {9, 8, 7, 6, 5, 4}, dq.written(head, 6));
    }

    @Test
    void loopIsChainTooLong() throws Exception {
        int a = dq.takeDescriptor(), b = dq.takeDescriptor();
        long buf = dq.alloc(8);
        dq.writeDescriptor(a, buf, 8, Queue.VRING_DESC_F_NEXT, b);
        dq.writeDescriptor(b, buf, 8, Queue.VRING_DESC_F_NEXT, a);
        dq.publish(a);
        assertChainErrorThenRecovers(QueueError.CHAIN_TOO_LONG, a);
    }

    @Test
    void nextIndexBeyondSize() throws Exception {
        int a = dq.takeDescriptor();
        dq.writeDescriptor(a, dq.alloc(8), 8, Queue.VRING_DESC_F_NEXT, SIZE + 3);
        dq.publish(a);
        assertChainErrorThenRecovers(QueueError.DESCRIPTOR_INDEX_OUT_OF_RANGE, a);
    }

    @Test
    void headIndexBeyondSize() throws Exception {
        dq.publish(SIZE);
        assertChainErrorThenRecovers(QueueError.DESCRIPTOR_INDEX_OUT_OF_RANGE, SIZE);
    }

    /** RAM of one region: buffers are checked inline against it (DescriptorChain.inRam), to the exact byte. */
    @Test
    void buffersAtTheEndOfOneRegionRam() throws Exception {
        long end = 1 << 20;
        int h = dq.takeDescriptor(), w = dq.takeDescriptor();
        dq.writeDescriptor(h, end - 16, 8, Queue.VRING_DESC_F_NEXT, w);
        dq.writeDescriptor(w, end - 8, 8, Queue.VRING_DESC_F_WRITE, 0);
        dq.publish(h);
        DescriptorChain c = q.pop(strict).orElseThrow();
        assertEquals(List.of(end - 16, end - 8), List.of(c.address(0), c.address(1)), "ending exactly at RAM's end");
        q.addUsed(strict, h, 0);
        dq.pollUsed().orElseThrow();
        for (long[] bad : new long[][] {{end - 7, 8}, {end, 1}, {end - 1, 0xFFFF_FFFFL}, {-8, 8}, {-1, 2}}) {
            int a = dq.takeDescriptor();
            dq.writeDescriptor(a, bad[0], (int) bad[1], Queue.VRING_DESC_F_WRITE, 0);
            dq.publish(a);
            boolean wraps = Long.compareUnsigned(bad[0] + bad[1], bad[0]) < 0;
            assertChainErrorThenRecovers(wraps ? QueueError.BUFFER_ADDRESS_OVERFLOW : QueueError.BUFFER_OUT_OF_MEMORY, a);
        }
    }

    /** One region away from address 0 (as RAM at 2 GiB on Arm) and one ending at 2^64 - 1: below, at and past it. */
    @Test
    void buffersAgainstOneRegionAwayFromZero() throws Exception {
        for (long base : new long[] {0x8000_0000L, 0xFFFF_FFFF_FFF0_0000L}) {
            long size = base == 0x8000_0000L ? MIB : MIB - 1; // the second ends at 2^64 - 1
            HeapGuestMemory m = HeapGuestMemory.of(new MemoryRegion(GuestAddress.of(base), size));
            StrictGuestMemory sm = new StrictGuestMemory(m);
            DriverQueue d = new DriverQueue(m, SIZE, base + 0x1000, base + 0x10000, base + 0x40000, () -> { });
            Queue qq = d.deviceQueue(256);
            assertEquals(List.of(), qq.validate(sm));
            long end = base + size;
            for (long[] good : new long[][] {{base, 8}, {end - 8, 8}, {end - 1, 1}}) {
                int a = d.takeDescriptor();
                d.writeDescriptor(a, good[0], (int) good[1], Queue.VRING_DESC_F_WRITE, 0);
                d.publish(a);
                DescriptorChain c = qq.pop(sm).orElseThrow();
                assertEquals(good[0], c.address(0), String.format("base 0x%x: buffer 0x%x+%d", base, good[0], good[1]));
                qq.addUsed(sm, a, 0);
            }
            long[][] bad = {{base - 1, 2}, {base - 8, 8}, {0, 8}, {end - 7, 8}, {end, 1}, {0x8000_0000_0000_0000L, 8},
                {0x7FFF_FFFF_FFFF_FFF0L, 16}, {base + 8, 0xFFFF_FFFFL}};
            for (long[] b : bad) {
                int a = d.takeDescriptor();
                d.writeDescriptor(a, b[0], (int) b[1], Queue.VRING_DESC_F_WRITE, 0);
                d.publish(a);
                boolean wraps = Long.compareUnsigned(b[0] + b[1], b[0]) < 0;
                InvalidChainException e = assertThrows(InvalidChainException.class, () -> qq.pop(sm),
                        String.format("base 0x%x: buffer 0x%x+%d", base, b[0], b[1]));
                assertEquals(wraps ? QueueError.BUFFER_ADDRESS_OVERFLOW : QueueError.BUFFER_OUT_OF_MEMORY, e.error());
                qq.addUsed(sm, a, 0);
            }
            assertFalse(qq.isBroken());
        }
    }

    @Test
    void bufferOutsideRam() throws Exception {
        int a = dq.takeDescriptor();
        dq.writeDescriptor(a, (1 << 20) - 4, 8, 0, 0);
        dq.publish(a);
        assertChainErrorThenRecovers(QueueError.BUFFER_OUT_OF_MEMORY, a);
    }

    @Test
    void bufferLengthOverflow() throws Exception {
        int a = dq.takeDescriptor();
        dq.writeDescriptor(a, 0xFFFF_FFFF_FFFF_F000L, 0x2000, 0, 0);
        dq.publish(a);
        assertChainErrorThenRecovers(QueueError.BUFFER_ADDRESS_OVERFLOW, a);
    }

    @Test
    void readableAfterWritable() throws Exception {
        int a = dq.takeDescriptor(), b = dq.takeDescriptor();
        dq.writeDescriptor(a, dq.alloc(8), 8, Queue.VRING_DESC_F_WRITE | Queue.VRING_DESC_F_NEXT, b);
        dq.writeDescriptor(b, dq.alloc(8), 8, 0, 0);
        dq.publish(a);
        assertChainErrorThenRecovers(QueueError.READABLE_AFTER_WRITABLE, a);
    }

    @Test
    void writableAfterReadableIsFine() throws Exception {
        int head = dq.add(List.of(new byte[4]), 4);
        DescriptorChain c = q.pop(mem).orElseThrow();
        assertEquals(head, c.headIndex());
        assertEquals(1, c.readable().size());
        assertEquals(1, c.writable().size());
    }

    @Test
    void indirectChain() throws Exception {
        q.setIndirectAllowed(true);
        int head = dq.addIndirect(List.of(new byte[] {1, 2, 3, 4}, new byte[] {5}), 3, 7);
        DescriptorChain c = q.pop(mem).orElseThrow();
        assertEquals(head, c.headIndex());
        assertEquals(4, c.descriptors().size());
        assertArrayEquals(new byte[] {1, 2, 3, 4, 5}, c.readAll());
        assertEquals(10, c.writableLength());
    }

    @Test
    void indirectNotNegotiated() throws Exception {
        int head = dq.addIndirect(List.of(new byte[4]));
        assertChainErrorThenRecovers(QueueError.INDIRECT_NOT_NEGOTIATED, head);
    }

    private int indirectDescriptor(long table, int len, int flags) {
        int a = dq.takeDescriptor();
        dq.writeDescriptor(a, table, len, Queue.VRING_DESC_F_INDIRECT | flags, 0);
        dq.publish(a);
        return a;
    }

    @Test
    void indirectTableBadLength() throws Exception {
        q.setIndirectAllowed(true);
        long t = dq.alloc(32);
        dq.writeDescriptorAt(t, dq.alloc(4), 4, 0, 0);
        assertChainErrorThenRecovers(QueueError.INDIRECT_TABLE_BAD_LENGTH, indirectDescriptor(t, 20, 0));
        assertChainErrorThenRecovers(QueueError.INDIRECT_TABLE_BAD_LENGTH, indirectDescriptor(t, 0, 0));
    }

    @Test
    void indirectTableTooLarge() throws Exception {
        q.setIndirectAllowed(true);
        assertChainErrorThenRecovers(QueueError.INDIRECT_TABLE_TOO_LARGE,
                indirectDescriptor(0x1000, 16 * (Queue.MAX_INDIRECT_ENTRIES + 1), 0));
    }

    @Test
    void indirectTableOutsideRam() throws Exception {
        q.setIndirectAllowed(true);
        assertChainErrorThenRecovers(QueueError.INDIRECT_TABLE_OUT_OF_MEMORY, indirectDescriptor((1 << 20) - 16, 32, 0));
    }

    @Test
    void nestedIndirect() throws Exception {
        q.setIndirectAllowed(true);
        long t = dq.alloc(16);
        dq.writeDescriptorAt(t, t, 16, Queue.VRING_DESC_F_INDIRECT, 0);
        assertChainErrorThenRecovers(QueueError.NESTED_INDIRECT, indirectDescriptor(t, 16, 0));
    }

    @Test
    void indirectWithNext() throws Exception {
        q.setIndirectAllowed(true);
        long t = dq.alloc(16);
        dq.writeDescriptorAt(t, dq.alloc(4), 4, 0, 0);
        assertChainErrorThenRecovers(QueueError.INDIRECT_WITH_NEXT, indirectDescriptor(t, 16, Queue.VRING_DESC_F_NEXT));
    }

    @Test
    void indirectLoopAndIndex() throws Exception {
        q.setIndirectAllowed(true);
        long t = dq.alloc(32);
        long b = dq.alloc(4);
        dq.writeDescriptorAt(t, b, 4, Queue.VRING_DESC_F_NEXT, 1);
        dq.writeDescriptorAt(t + 16, b, 4, Queue.VRING_DESC_F_NEXT, 0);
        assertChainErrorThenRecovers(QueueError.CHAIN_TOO_LONG, indirectDescriptor(t, 32, 0));
        dq.writeDescriptorAt(t + 16, b, 4, Queue.VRING_DESC_F_NEXT, 2);
        assertChainErrorThenRecovers(QueueError.DESCRIPTOR_INDEX_OUT_OF_RANGE, indirectDescriptor(t, 32, 0));
    }

    @Test
    void availIndexJumpBreaksQueue() {
        dq.setAvailIdx(SIZE + 1);
        InvalidChainException e = assertThrows(InvalidChainException.class, () -> q.pop(mem));
        assertEquals(QueueError.AVAIL_INDEX_TOO_FAR, e.error());
        assertFalse(e.isChainError());
        assertTrue(q.isBroken());
        assertEquals(QueueError.AVAIL_INDEX_TOO_FAR, q.brokenBy());
        assertDoesNotThrow(() -> assertTrue(q.pop(mem).isEmpty()));
    }

    @Test
    void availIndexExactlySizeIsFine() throws Exception {
        for (int i = 0; i < SIZE; i++) {
            dq.addReadable(new byte[] {(byte) i});
        }
        assertEquals(SIZE, q.pending(mem));
        for (int i = 0; i < SIZE; i++) {
            assertTrue(q.pop(mem).isPresent());
        }
    }

    @Test
    void validationRules() {
        Queue v = dq.deviceQueue(256);
        v.setSize(24);
        assertEquals(List.of(QueueError.INVALID_QUEUE_SIZE), v.validate(mem));
        v.setSize(512);
        assertEquals(List.of(QueueError.INVALID_QUEUE_SIZE), v.validate(mem));
        v.setSize(0);
        assertEquals(List.of(QueueError.INVALID_QUEUE_SIZE), v.validate(mem));
        v.setSize(SIZE);
        v.setDescTable(GuestAddress.of(0x1008));
        v.setAvailRing(GuestAddress.of(0x2001));
        v.setUsedRing(GuestAddress.of(0x3002));
        assertEquals(List.of(QueueError.DESC_TABLE_MISALIGNED, QueueError.AVAIL_RING_MISALIGNED,
                QueueError.USED_RING_MISALIGNED), v.validate(mem));
        v.setDescTable(GuestAddress.of((1 << 20) - 16));
        v.setAvailRing(GuestAddress.of((1 << 20) - 2));
        v.setUsedRing(GuestAddress.of(-4L));
        assertEquals(List.of(QueueError.DESC_TABLE_OUT_OF_MEMORY, QueueError.AVAIL_RING_OUT_OF_MEMORY,
                QueueError.USED_RING_OUT_OF_MEMORY), v.validate(mem));
        v.setReady(false);
        assertEquals(List.of(), v.validate(mem), "a queue that is not ready is not checked");
    }

    @Test
    void needEventMath() {
        // vring_need_event(event, new, old): notify when event is in [old, new).
        assertTrue(Queue.needEvent((short) 0, (short) 1, (short) 0));
        assertFalse(Queue.needEvent((short) 1, (short) 1, (short) 0));
        assertTrue(Queue.needEvent((short) 4, (short) 5, (short) 2));
        assertFalse(Queue.needEvent((short) 7, (short) 5, (short) 2));
        assertFalse(Queue.needEvent((short) 1, (short) 5, (short) 2));
        // Wraparound: old 0xFFFE, new 0x0002 crossed 0xFFFF, 0x0000 and 0x0001.
        assertTrue(Queue.needEvent((short) 0xFFFF, (short) 2, (short) 0xFFFE));
        assertTrue(Queue.needEvent((short) 0x0001, (short) 2, (short) 0xFFFE));
        assertFalse(Queue.needEvent((short) 0x0002, (short) 2, (short) 0xFFFE));
        assertFalse(Queue.needEvent((short) 0xFFFD, (short) 2, (short) 0xFFFE));
    }

    @Test
    void eventIdxSuppression() throws Exception {
        q.setEventIdx(true);
        dq.setUsedEvent(0);
        int h = dq.addReadable(new byte[1]);
        q.pop(mem);
        q.addUsed(mem, h, 0); // used idx 1
        assertTrue(q.needsNotification(mem), "first time always notifies");
        dq.setUsedEvent(3); // driver wants an interrupt once used idx passes 3
        for (int i = 0; i < 2; i++) {
            h = dq.addReadable(new byte[1]);
            q.pop(mem);
            q.addUsed(mem, h, 0); // used idx 2, 3
            assertFalse(q.needsNotification(mem));
        }
        h = dq.addReadable(new byte[1]);
        q.pop(mem);
        q.addUsed(mem, h, 0); // used idx 4 crossed 3
        assertTrue(q.needsNotification(mem));
        assertFalse(q.needsNotification(mem), "nothing new since");
    }

    @Test
    void eventIdxWraparound() throws Exception {
        q.setEventIdx(true);
        // Run the counters up to just below 0xFFFF.
        for (int i = 0; i < 0xFFFE; i++) {
            int h = dq.addReadable(new byte[1]);
            q.pop(mem);
            q.addUsed(mem, h, 0);
            dq.pollUsed();
            if (i % 512 == 0) {
                dq.resetBuffers();
            }
        }
        dq.setUsedEvent(0xFFFE);
        q.needsNotification(mem); // record used idx 0xFFFE as signalled
        dq.setUsedEvent(0x0000);
        int h = dq.addReadable(new byte[1]);
        q.pop(mem);
        q.addUsed(mem, h, 0); // 0xFFFF
        assertFalse(q.needsNotification(mem));
        h = dq.addReadable(new byte[1]);
        q.pop(mem);
        q.addUsed(mem, h, 0); // 0x0000: used_event 0 not yet passed (need new-1 >= event)
        assertFalse(q.needsNotification(mem));
        h = dq.addReadable(new byte[1]);
        q.pop(mem);
        q.addUsed(mem, h, 0); // 0x0001 passed 0x0000
        assertTrue(q.needsNotification(mem));
        assertEquals(1, q.nextUsed());
    }

    @Test
    void noInterruptFlagWithoutEventIdx() {
        assertTrue(q.needsNotification(mem));
        dq.setAvailFlags(Queue.VRING_AVAIL_F_NO_INTERRUPT);
        assertFalse(q.needsNotification(mem));
    }

    @Test
    void enableDisableNotification() throws Exception {
        q.disableNotification(mem);
        assertEquals(Queue.VRING_USED_F_NO_NOTIFY, dq.usedFlags());
        assertFalse(q.enableNotification(mem));
        assertEquals(0, dq.usedFlags());
        dq.addReadable(new byte[1]);
        assertTrue(q.enableNotification(mem), "buffers already there");
        q.setEventIdx(true);
        q.pop(mem);
        assertFalse(q.enableNotification(mem));
        assertEquals(1, dq.availEvent());
    }

    @Test
    void readerAndWriterCrossBoundaries() throws Exception {
        int head = dq.add(List.of(new byte[] {1, 0}, new byte[] {0, 0, 2}, new byte[] {3, 4, 5, 6, 7, 8, 9, 10}), 3, 1, 8);
        DescriptorChain c = q.pop(mem).orElseThrow();
        Reader r = c.reader();
        assertEquals(13, r.available());
        assertEquals(1, r.readInt());
        assertEquals(2, r.readByte());
        assertEquals(0x0A09080706050403L, r.readLong());
        assertEquals(0, r.available());
        InvalidChainException e = assertThrows(InvalidChainException.class, r::readByte);
        assertEquals(QueueError.DESCRIPTOR_CHAIN_TOO_SHORT, e.error());
        Writer w = c.writer();
        assertEquals(12, w.available());
        w.writeInt(0x44332211);
        w.writeLong(0x0C0B0A0908070605L);
        assertEquals(0, w.available());
        assertThrows(InvalidChainException.class, () -> w.writeByte((byte) 1));
        assertEquals(12, w.bytesWritten());
        assertArrayEquals(new byte[] {0x11, 0x22, 0x33, 0x44, 5, 6, 7, 8, 9, 10, 11, 12}, dq.written(head, 12));
        assertEquals(0, c.reader().skip(2) - 2);
    }

    @Test
    void popIntoReusesOneChainObject() throws Exception {
        DescriptorChain c = new DescriptorChain();
        assertFalse(q.pop(mem, c));
        int h1 = dq.add(List.of(new byte[0], new byte[] {1, 2, 3, 4}, new byte[] {5}), 0, 4);
        assertTrue(q.pop(mem, c));
        assertEquals(h1, c.headIndex());
        assertEquals(5, c.count());
        assertEquals(3, c.firstWritable());
        assertEquals(5, c.readableLength());
        assertEquals(4, c.writableLength());
        Reader r = c.reader();
        assertEquals(0x04030201, r.readInt()); // past the empty first buffer, in one load
        assertEquals(5, r.readByte());
        assertSame(r, c.reader());
        assertEquals(5, c.reader().available()); // rewound
        Writer w = c.writer();
        w.writeInt(0x0D0C0B0A); // past the empty first writable buffer
        assertEquals(4, w.bytesWritten());
        q.addUsed(mem, h1, w.usedLength());
        assertArrayEquals(new byte[] {0x0A, 0x0B, 0x0C, 0x0D}, dq.written(h1, 4));

        int h2 = dq.add(List.of(new byte[] {9}));
        assertTrue(q.pop(mem, c));
        assertEquals(h2, c.headIndex());
        assertEquals(1, c.count());
        assertEquals(1, c.firstWritable());
        assertEquals(0, c.writableLength());
        assertEquals(0, c.writer().available());
        assertEquals(List.of(new Descriptor(c.descriptors().get(0).addr(), 1, false)), c.readable());
        assertEquals(9, c.reader().readByte());
        q.addUsed(mem, h2, 0);

        // A malformed chain leaves the object empty; the next good one fills it again.
        int bad = dq.takeDescriptor();
        dq.writeDescriptor(bad, 0x10000, 1, Queue.VRING_DESC_F_WRITE | Queue.VRING_DESC_F_NEXT, dq.takeDescriptor());
        dq.writeDescriptor((bad + 1) % SIZE, 0x10000, 1, 0, 0);
        dq.publish(bad);
        InvalidChainException e = assertThrows(InvalidChainException.class, () -> q.pop(mem, c));
        assertEquals(QueueError.READABLE_AFTER_WRITABLE, e.error());
        assertEquals(-1, c.headIndex());
        assertEquals(0, c.count());
        assertEquals(0, c.reader().available());
        q.addUsed(mem, bad, 0);
        int h3 = dq.add(List.of(new byte[] {7, 7}), 2);
        assertTrue(q.pop(mem, c));
        assertEquals(h3, c.headIndex());
        assertEquals(2, c.reader().available());
    }

    @Test
    void ringsFollowAReconfiguration() throws Exception {
        int h = dq.add(List.of(new byte[] {1}), 1);
        assertEquals(h, q.pop(mem).orElseThrow().headIndex()); // the windows onto the first rings now exist
        q.addUsed(mem, h, 0);
        assertEquals(new DriverQueue.Used(h, 0), dq.pollUsed().orElseThrow());
        // Reset, then a second driver queue elsewhere in RAM: the next pop and addUsed must use the new rings.
        q.reset();
        DriverQueue other = new DriverQueue(mem, SIZE, 0x80000, 0x90000, 0x10000, () -> { });
        q.setSize(SIZE);
        q.setDescTable(other.descTable());
        q.setAvailRing(other.availRing());
        q.setUsedRing(other.usedRing());
        q.setReady(true);
        int h2 = other.add(List.of(new byte[] {2, 3}), 4);
        DescriptorChain c = q.pop(mem).orElseThrow();
        assertEquals(h2, c.headIndex());
        assertEquals(2, c.readableLength());
        q.addUsed(mem, h2, 4);
        assertEquals(new DriverQueue.Used(h2, 4), other.pollUsed().orElseThrow());
        assertTrue(dq.pollUsed().isEmpty(), "nothing more on the old used ring");
    }

    @Test
    void unvalidatedNegativeSizeBreaksTheQueueWithoutEscapingExceptions() {
        q.setSize(-2); // never accepted by validate(); a device must still not see a foreign exception
        dq.add(List.of(new byte[] {1}));
        InvalidChainException e = assertThrows(InvalidChainException.class, () -> q.pop(mem));
        assertEquals(QueueError.AVAIL_INDEX_TOO_FAR, e.error());
        q.reset();
        q.setSize(-3);
        q.setEventIdx(true);
        q.setReady(true);
        assertTrue(q.needsNotification(mem));
        assertTrue(q.needsNotification(mem), "used_event outside the ring: notify, as for any unreadable ring");
    }

    @Test
    void viewsCoverBuffers() throws Exception {
        dq.add(List.of(new byte[] {1, 2}, new byte[] {3}), 2, 2);
        DescriptorChain c = q.pop(mem).orElseThrow();
        assertEquals(2, c.reader().views(100).length);
        Writer w = c.writer();
        var vs = w.views(3);
        assertEquals(2, vs.length);
        assertEquals(2, vs[0].remaining());
        assertEquals(1, vs[1].remaining());
        vs[0].put((byte) 7);
        w.advance(3);
        assertEquals(1, w.available());
    }

    // ---- guest addresses at and above 2^63: compared unsigned, refused before any access ----------------------

    /** Addresses that lie outside the 1 MiB of RAM, none of which wraps with the lengths used here. */
    private static final long[] ABOVE_2P63 = {0xFFFF_FFFF_FFFF_F000L, 0x8000_0000_0020_0000L, 0x8000_0000_0000_0000L,
        0x7FFF_FFFF_FFFF_FFF0L};

    @Test
    void bufferAbove2p63IsOutsideRam() throws Exception {
        for (long addr : ABOVE_2P63) {
            int a = dq.takeDescriptor();
            dq.writeDescriptor(a, addr, 0x100, 0, 0);
            dq.publish(a);
            assertChainErrorThenRecovers(QueueError.BUFFER_OUT_OF_MEMORY, a);
            // The same as the writable part after a good readable buffer.
            int h = dq.takeDescriptor(), w = dq.takeDescriptor();
            dq.writeDescriptor(h, dq.alloc(16), 16, Queue.VRING_DESC_F_NEXT, w);
            dq.writeDescriptor(w, addr, 0x100, Queue.VRING_DESC_F_WRITE, 0);
            dq.publish(h);
            assertChainErrorThenRecovers(QueueError.BUFFER_OUT_OF_MEMORY, h);
            dq.resetBuffers();
        }
    }

    @Test
    void indirectTableAbove2p63IsOutsideRam() throws Exception {
        q.setIndirectAllowed(true);
        for (long t : ABOVE_2P63) {
            assertChainErrorThenRecovers(QueueError.INDIRECT_TABLE_OUT_OF_MEMORY, indirectDescriptor(t, 32, 0));
        }
        // A table that would end exactly at 2^64.
        assertChainErrorThenRecovers(QueueError.INDIRECT_TABLE_OUT_OF_MEMORY, indirectDescriptor(0xFFFF_FFFF_FFFF_FFE0L, 32, 0));
        // A table in RAM naming a buffer up there.
        long t = dq.alloc(16);
        dq.writeDescriptorAt(t, 0xFFFF_FFFF_FFFF_F000L, 0x100, Queue.VRING_DESC_F_WRITE, 0);
        assertChainErrorThenRecovers(QueueError.BUFFER_OUT_OF_MEMORY, indirectDescriptor(t, 16, 0));
    }

    @Test
    void ringsAbove2p63AreRefusedByValidate() {
        for (long a : ABOVE_2P63) {
            Queue v = dq.deviceQueue(256);
            v.setDescTable(GuestAddress.of(a));
            assertEquals(List.of(QueueError.DESC_TABLE_OUT_OF_MEMORY), v.validate(strict), String.format("desc 0x%x", a));
            v = dq.deviceQueue(256);
            v.setAvailRing(GuestAddress.of(a));
            assertEquals(List.of(QueueError.AVAIL_RING_OUT_OF_MEMORY), v.validate(strict), String.format("avail 0x%x", a));
            v = dq.deviceQueue(256);
            v.setUsedRing(GuestAddress.of(a));
            assertEquals(List.of(QueueError.USED_RING_OUT_OF_MEMORY), v.validate(strict), String.format("used 0x%x", a));
            assertFalse(v.isValid(strict));
        }
        assertEquals(0, strict.accesses(), "validate only asks contains()");
    }

    /** Were validate skipped, the memory still refuses the table: the queue breaks, no host memory is read. */
    @Test
    void unvalidatedDescriptorTableAbove2p63BreaksTheQueue() {
        q.setDescTable(GuestAddress.of(0xFFFF_FFFF_FFFF_F000L));
        dq.publish(0);
        InvalidChainException e = assertThrows(InvalidChainException.class, () -> q.pop(mem));
        assertEquals(QueueError.DESC_TABLE_OUT_OF_MEMORY, e.error());
        assertTrue(q.isBroken());
    }

    // ---- 2.7.5.2: at most 2^32 bytes in one chain ------------------------------------------------------------

    /** A queue of 8192 entries over 2 MiB of RAM; rings at 0x1000, tables from 1 MiB; buffers overlap [0, 1 MiB). */
    private record Big(HeapGuestMemory mem, StrictGuestMemory strict, DriverQueue dq, Queue q) {
        static Big create() {
            HeapGuestMemory m = HeapGuestMemory.of(0, 2 << 20);
            DriverQueue d = new DriverQueue(m, 8192, 0x1000, MIB, MIB, () -> { });
            Queue q = d.deviceQueue(8192);
            q.setIndirectAllowed(true);
            StrictGuestMemory s = new StrictGuestMemory(m);
            assertEquals(List.of(), q.validate(s));
            return new Big(m, s, d, q);
        }

        /** Descriptors first..first+n-1 of {@code MIB} bytes each at 0, linked; the last one ends the chain. */
        void writeChain(int first, int n, int flags) {
            for (int i = 0; i < n; i++) {
                dq.writeDescriptor(first + i, 0, (int) MIB, flags | (i + 1 < n ? Queue.VRING_DESC_F_NEXT : 0), first + i + 1);
            }
        }

        /** An indirect table at 1 MiB of n entries of {@code MIB} bytes each at 0, then {@code extra} bytes if > 0. */
        void writeTable(int n, int extra) {
            int all = n + (extra > 0 ? 1 : 0);
            for (int i = 0; i < all; i++) {
                int len = i < n ? (int) MIB : extra;
                dq.writeDescriptorAt(MIB + 16L * i, 0, len, i + 1 < all ? Queue.VRING_DESC_F_NEXT : 0, i + 1);
            }
        }
    }

    @Test
    void directChainOfExactly4GiBIsAccepted() throws Exception {
        Big b = Big.create();
        b.writeChain(0, 2048, 0);
        b.dq.writeDescriptor(2047, 0, (int) MIB, Queue.VRING_DESC_F_NEXT, 2048);
        b.writeChain(2048, 2048, Queue.VRING_DESC_F_WRITE);
        b.dq.publish(0);
        DescriptorChain c = b.q.pop(b.strict).orElseThrow();
        assertEquals(4096, c.descriptors().size());
        assertEquals(Queue.MAX_CHAIN_BYTES / 2, c.readableLength());
        assertEquals(Queue.MAX_CHAIN_BYTES / 2, c.writableLength());
        assertEquals(Queue.MAX_CHAIN_BYTES / 2, c.reader().available());
        assertEquals(Queue.MAX_CHAIN_BYTES / 2, c.writer().available());
        assertEquals(List.of(), b.strict.violations());
    }

    @Test
    void directChainOneByteOver4GiBIsRefused() throws Exception {
        Big b = Big.create();
        b.writeChain(0, 4096, Queue.VRING_DESC_F_WRITE);
        b.dq.writeDescriptor(4095, 0, (int) MIB, Queue.VRING_DESC_F_WRITE | Queue.VRING_DESC_F_NEXT, 4096);
        b.dq.writeDescriptor(4096, 0, 1, Queue.VRING_DESC_F_WRITE, 0);
        b.dq.publish(0);
        InvalidChainException e = assertThrows(InvalidChainException.class, () -> b.q.pop(b.strict));
        assertEquals(QueueError.CHAIN_TOO_MANY_BYTES, e.error());
        assertEquals(0, e.headIndex());
        // A chain-level error: the chain goes back with len 0 and the queue goes on.
        b.q.addUsed(b.strict, e.headIndex(), 0);
        assertFalse(b.q.isBroken());
        b.dq.writeDescriptor(10, 0, (int) MIB, Queue.VRING_DESC_F_NEXT, 11);
        b.dq.writeDescriptor(11, 0, (int) MIB, 0, 0);
        b.dq.publish(10);
        assertEquals(2 * MIB, b.q.pop(b.strict).orElseThrow().readableLength());
        assertEquals(List.of(), b.strict.violations());
    }

    @Test
    void indirectChainOfExactly4GiBIsAccepted() throws Exception {
        Big b = Big.create();
        b.writeTable(4096, 0);
        b.dq.writeDescriptor(7, MIB, 16 * 4096, Queue.VRING_DESC_F_INDIRECT, 0);
        b.dq.publish(7);
        DescriptorChain c = b.q.pop(b.strict).orElseThrow();
        assertEquals(4096, c.descriptors().size());
        assertEquals(Queue.MAX_CHAIN_BYTES, c.readableLength());
        assertEquals(List.of(), b.strict.violations());
    }

    @Test
    void indirectChainOneByteOver4GiBIsRefused() throws Exception {
        Big b = Big.create();
        b.writeTable(4096, 1);
        b.dq.writeDescriptor(7, MIB, 16 * 4097, Queue.VRING_DESC_F_INDIRECT, 0);
        b.dq.publish(7);
        InvalidChainException e = assertThrows(InvalidChainException.class, () -> b.q.pop(b.strict));
        assertEquals(QueueError.CHAIN_TOO_MANY_BYTES, e.error());
        assertEquals(7, e.headIndex());
        // Direct and indirect buffers count together: 1 MiB before the table, 4 GiB - 1 MiB in it, then 1 byte.
        b.writeTable(4095, 1);
        b.dq.writeDescriptor(20, 0, (int) MIB, Queue.VRING_DESC_F_NEXT, 21);
        b.dq.writeDescriptor(21, MIB, 16 * 4096, Queue.VRING_DESC_F_INDIRECT, 0);
        b.dq.publish(20);
        e = assertThrows(InvalidChainException.class, () -> b.q.pop(b.strict));
        assertEquals(QueueError.CHAIN_TOO_MANY_BYTES, e.error());
        assertEquals(List.of(), b.strict.violations());
    }

    /**
     * The largest table jkrun takes, 65536 entries, each naming all of a 4 GiB RAM: 256 TiB in one chain before
     * the limit. Refused, and parsing stops at the entry that crosses 2^32 bytes instead of reading all 65536.
     */
    @Test
    void indirectTableDescribingTerabytesIsRefusedEarly() throws Exception {
        long ram = 4L << 30, table = ram - 16L * Queue.MAX_INDIRECT_ENTRIES;
        try (MmapGuestMemory m = MmapGuestMemory.create(List.of(new MemoryRegion(GuestAddress.ZERO, ram)))) {
            DriverQueue d = new DriverQueue(m, SIZE, 0x1000, 0x10000, 0x1000, () -> { });
            Queue big = d.deviceQueue(256);
            big.setIndirectAllowed(true);
            StrictGuestMemory s = new StrictGuestMemory(m);
            assertEquals(List.of(), big.validate(s));
            for (int i = 0; i < Queue.MAX_INDIRECT_ENTRIES; i++) {
                d.writeDescriptorAt(table + 16L * i, 0, 0xFFFF_F000, i + 1 < Queue.MAX_INDIRECT_ENTRIES ? Queue.VRING_DESC_F_NEXT : 0, i + 1);
            }
            d.writeDescriptor(0, table, 16 * Queue.MAX_INDIRECT_ENTRIES, Queue.VRING_DESC_F_INDIRECT, 0);
            d.publish(0);
            InvalidChainException e = assertThrows(InvalidChainException.class, () -> big.pop(s));
            assertEquals(QueueError.CHAIN_TOO_MANY_BYTES, e.error());
            assertTrue(s.accesses() < 20, "stopped after the second entry: " + s.accesses() + " accesses");
            assertEquals(List.of(), s.violations());
        }
    }
}
