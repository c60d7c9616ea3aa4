package dev.jkrun.devices.virtio.balloon;

import static dev.jkrun.devices.virtio.balloon.VirtioBalloon.F_DEFLATE_ON_OOM;
import static dev.jkrun.devices.virtio.balloon.VirtioBalloon.F_FREE_PAGE_HINT;
import static dev.jkrun.devices.virtio.balloon.VirtioBalloon.F_PAGE_REPORTING;
import static dev.jkrun.devices.virtio.balloon.VirtioBalloon.F_STATS_VQ;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.devices.testing.CountingTrigger;
import dev.jkrun.devices.testing.DriverQueue;
import dev.jkrun.devices.testing.MockDriver;
import dev.jkrun.devices.virtio.MmioTransport;
import dev.jkrun.devices.virtio.VirtioDevice;
import dev.jkrun.devices.virtio.balloon.VirtioBalloon.Role;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.HeapGuestMemory;
import dev.jkrun.memory.MemoryRegion;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * virtio-balloon through virtio-mmio against fake guest memory with a hole (RAM at [0, 16 MiB) and [32 MiB, 48 MiB)):
 * inflated PFNs and reported ranges inside RAM read as zeros afterwards, every hostile PFN or range (beyond RAM, in the
 * hole, wrapping, zero length, too many) is refused without touching memory, queues move down when features are not
 * negotiated, the stats buffer is held and given back on request, and the target raises a config interrupt.
 */
class VirtioBalloonTest {
    static final long TIMEOUT = 5000;
    static final long MIB = 1 << 20, PAGE = 4096;
    static final long ALL = 1L << F_STATS_VQ | 1L << F_DEFLATE_ON_OOM | 1L << F_FREE_PAGE_HINT | 1L << F_PAGE_REPORTING
            | 1L << Queue.VIRTIO_RING_F_EVENT_IDX | 1L << Queue.VIRTIO_RING_F_INDIRECT_DESC;
    static final long HOLE = 16 * MIB, HIGH = 32 * MIB, HIGH_END = 48 * MIB;
    static final byte FILL = (byte) 0xAB;

    final HeapGuestMemory mem = HeapGuestMemory.of(new MemoryRegion(GuestAddress.of(0), HOLE),
            new MemoryRegion(GuestAddress.of(HIGH), HIGH_END - HIGH));
    final CountingTrigger irq = new CountingTrigger();
    final List<AutoCloseable> toClose = new ArrayList<>();

    @AfterEach
    void tearDown() throws Exception {
        for (AutoCloseable c : toClose) {
            c.close();
        }
        assertTrue(CountingTrigger.await(() -> Thread.getAllStackTraces().keySet().stream()
                .noneMatch(t -> t.getName().startsWith("virtio-balloon")), TIMEOUT), "virtio-balloon threads left running");
    }

    private VirtioBalloon balloon() {
        VirtioBalloon b = new VirtioBalloon();
        toClose.add(b);
        return b;
    }

    private MockDriver driver(VirtioDevice dev, long features) {
        MmioTransport t = new MmioTransport(dev, mem, irq);
        toClose.add(t);
        MockDriver d = new MockDriver(t, mem, 0x10000, MIB, MIB); // buffers in [1 MiB, 6 MiB)
        d.init(features);
        return d;
    }

    /** Fills [8 MiB, 16 MiB) and the whole high region with FILL. */
    private void pattern() {
        mem.fill(GuestAddress.of(8 * MIB), 8 * MIB, FILL);
        mem.fill(GuestAddress.of(HIGH), HIGH_END - HIGH, FILL);
    }

    private boolean zeroed(long addr, long len) {
        byte[] b = mem.readBytes(GuestAddress.of(addr), (int) len);
        for (byte x : b) {
            if (x != 0) {
                return false;
            }
        }
        return true;
    }

    private boolean untouched(long addr, long len) {
        byte[] b = mem.readBytes(GuestAddress.of(addr), (int) len);
        for (byte x : b) {
            if (x != FILL) {
                return false;
            }
        }
        return true;
    }

    static byte[] pfns(long... pfns) {
        ByteBuffer b = ByteBuffer.allocate(4 * pfns.length).order(ByteOrder.LITTLE_ENDIAN);
        for (long p : pfns) {
            b.putInt((int) p);
        }
        return b.array();
    }

    private static DriverQueue.Used send(DriverQueue q, byte[]... readable) {
        int h = q.add(List.of(readable));
        q.kick();
        DriverQueue.Used u = q.awaitUsed(TIMEOUT);
        assertEquals(new DriverQueue.Used(h, 0), u);
        return u;
    }

    /** A hand-made chain of device-writable ranges (as Linux posts reports). */
    private static DriverQueue.Used report(DriverQueue q, long[]... ranges) {
        int[] idx = new int[ranges.length];
        for (int i = 0; i < ranges.length; i++) {
            idx[i] = q.takeDescriptor();
        }
        for (int i = 0; i < ranges.length; i++) {
            boolean more = i + 1 < ranges.length;
            q.writeDescriptor(idx[i], ranges[i][0], (int) ranges[i][1],
                    Queue.VRING_DESC_F_WRITE | (more ? Queue.VRING_DESC_F_NEXT : 0), more ? idx[i + 1] : 0);
        }
        q.publish(idx[0]);
        q.kick();
        DriverQueue.Used u = q.awaitUsed(TIMEOUT);
        assertEquals(idx[0], u.id());
        return u;
    }

    @Test
    void identityFeaturesQueuesAndConfig() {
        VirtioBalloon b = balloon();
        MockDriver d = driver(b, ALL);
        assertEquals(5, d.read(MmioTransport.DEVICE_ID));
        for (int i = 0; i < 5; i++) {
            d.write(MmioTransport.QUEUE_SEL, i);
            assertEquals(256, d.read(MmioTransport.QUEUE_NUM_MAX));
        }
        d.write(MmioTransport.QUEUE_SEL, 5);
        assertEquals(0, d.read(MmioTransport.QUEUE_NUM_MAX), "five queues");
        assertEquals(ALL | VirtioDevice.VIRTIO_F_VERSION_1, d.deviceFeatures());
        assertArrayEquals(new byte[16], d.readConfig(0, 16));
        // the host sets a target: config reads it and a config interrupt is raised
        d.ackInterrupt(d.interruptStatus());
        b.setTargetPages(1234);
        assertEquals(2, d.interruptStatus() & 2, "config change interrupt");
        assertEquals(1234, ByteBuffer.wrap(d.readConfig(0, 4)).order(ByteOrder.LITTLE_ENDIAN).getInt());
        // the driver writes actual (whole and by halves); num_pages, cmd id and poison are not the driver's
        d.transport().write(MmioTransport.CONFIG + 4, new byte[] {7, 0, 0, 0});
        assertEquals(7, b.actualPages());
        d.transport().write(MmioTransport.CONFIG + 6, new byte[] {1, 0});
        assertEquals(0x10007, b.actualPages());
        d.transport().write(MmioTransport.CONFIG, new byte[] {1, 1, 1, 1});
        d.transport().write(MmioTransport.CONFIG + 8, new byte[] {1, 1, 1, 1, 1, 1, 1, 1});
        d.transport().write(MmioTransport.CONFIG + 2, new byte[] {9, 9, 9, 9});
        ByteBuffer c = ByteBuffer.wrap(d.readConfig(0, 16)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(1234, c.getInt());
        assertEquals(0x10007, c.getInt());
        assertEquals(0, c.getInt(), "free page hint cmd id stays STOP");
        assertEquals(0, c.getInt(), "poison_val");
        b.setTargetPages(-1);
        assertEquals(0xFFFFFFFFL, b.targetPages(), "unsigned");
    }

    @Test
    void queueRolesMoveDownForFeaturesNotNegotiated() {
        assertEquals(List.of(Role.INFLATE, Role.DEFLATE), VirtioBalloon.roles(0));
        assertEquals(List.of(Role.INFLATE, Role.DEFLATE, Role.STATS, Role.FREE_PAGE_HINT, Role.REPORTING), VirtioBalloon.roles(ALL));
        assertEquals(List.of(Role.INFLATE, Role.DEFLATE, Role.REPORTING), VirtioBalloon.roles(1L << F_PAGE_REPORTING));
        assertEquals(List.of(Role.INFLATE, Role.DEFLATE, Role.STATS, Role.REPORTING),
                VirtioBalloon.roles(1L << F_PAGE_REPORTING | 1L << F_STATS_VQ));
        // reporting alone: it is queue 2, and it works there
        pattern();
        VirtioBalloon b = balloon();
        MockDriver d = driver(b, 1L << F_PAGE_REPORTING);
        assertEquals(0, report(d.queue(2), new long[] {8 * MIB, 2 * MIB}).len());
        assertTrue(zeroed(8 * MIB, 2 * MIB));
        assertTrue(untouched(10 * MIB, 6 * MIB));
        assertEquals(2 * MIB, b.reportedBytes());
        // queues past the negotiated ones exist on the transport but chains there are returned unused
        assertEquals(0, send(d.queue(3), pfns(8 * MIB / PAGE + 600)).len());
        assertEquals(0, send(d.queue(4), pfns(8 * MIB / PAGE + 601)).len());
        assertTrue(untouched(10 * MIB, 6 * MIB));
    }

    @Test
    void inflateDiscardsPagesInRamAndIgnoresHostilePfns() {
        pattern();
        VirtioBalloon b = balloon();
        MockDriver d = driver(b, ALL);
        DriverQueue inflate = d.queue(0);
        long p8 = 8 * MIB / PAGE, high = HIGH / PAGE;
        // contiguous run, singles, the last page before the hole and the first after it
        send(inflate, pfns(p8, p8 + 1, p8 + 2, p8 + 10, HOLE / PAGE - 1, high, high + 5));
        assertTrue(zeroed(8 * MIB, 3 * PAGE));
        assertTrue(untouched(8 * MIB + 3 * PAGE, 7 * PAGE));
        assertTrue(zeroed(8 * MIB + 10 * PAGE, PAGE));
        assertTrue(zeroed(HOLE - PAGE, PAGE));
        assertTrue(zeroed(HIGH, PAGE));
        assertTrue(untouched(HIGH + PAGE, 4 * PAGE));
        assertTrue(zeroed(HIGH + 5 * PAGE, PAGE));
        assertEquals(7, b.inflatedPages());
        assertEquals(7 * PAGE, b.discardedBytes());
        assertEquals(0, b.rejected());
        // hostile: in the hole, past RAM, the largest PFN, split over descriptors with a torn PFN at the end
        pattern();
        send(inflate, pfns(HOLE / PAGE, (HIGH - PAGE) / PAGE, HIGH_END / PAGE, 0xFFFFFFFFL, 0x80000000L),
                new byte[] {1, 2});
        assertEquals(5, b.rejected());
        assertEquals(7, b.inflatedPages());
        assertTrue(untouched(8 * MIB, 8 * MIB));
        assertTrue(untouched(HIGH, HIGH_END - HIGH));
        // deflate takes nothing away and discards nothing
        DriverQueue deflate = d.queue(1);
        send(deflate, pfns(p8, p8 + 1, 0xFFFFFFFFL));
        assertEquals(2, b.deflatedPages());
        assertEquals(6, b.rejected());
        assertTrue(untouched(8 * MIB, 8 * MIB));
        // a chain with nothing readable or an empty PFN list
        int h = inflate.addWritable(64);
        inflate.kick();
        assertEquals(new DriverQueue.Used(h, 0), inflate.awaitUsed(TIMEOUT));
        assertEquals(0, d.status() & MmioTransport.STATUS_DEVICE_NEEDS_RESET);
    }

    @Test
    void hugePfnCountsAreBounded() {
        pattern();
        VirtioBalloon b = balloon();
        MockDriver d = driver(b, ALL);
        // 1 MiB of PFNs (262144), all pointing at one page in the high region: only the first 65536 are read
        long[] many = new long[(int) (MIB / 4)];
        java.util.Arrays.fill(many, HIGH / PAGE + 7);
        send(d.queue(0), pfns(many));
        assertEquals(VirtioBalloon.MAX_PFNS_PER_CHAIN, b.inflatedPages());
        assertEquals(many.length - VirtioBalloon.MAX_PFNS_PER_CHAIN, b.rejected());
        assertTrue(zeroed(HIGH + 7 * PAGE, PAGE));
        assertTrue(untouched(HIGH + 8 * PAGE, PAGE));
        // and the queue goes on
        d.queue(0).resetBuffers();
        send(d.queue(0), pfns(HIGH / PAGE + 9));
        assertTrue(zeroed(HIGH + 9 * PAGE, PAGE));
    }

    @Test
    void reportedRangesInRamAreDiscardedOthersRefused() {
        pattern();
        VirtioBalloon b = balloon();
        MockDriver d = driver(b, ALL);
        DriverQueue rq = d.queue(4);
        // two ranges in one chain, one in each region
        report(rq, new long[] {8 * MIB, 4 * MIB}, new long[] {HIGH + 2 * MIB, 2 * MIB});
        assertTrue(zeroed(8 * MIB, 4 * MIB));
        assertTrue(untouched(12 * MIB, 4 * MIB));
        assertTrue(untouched(HIGH, 2 * MIB));
        assertTrue(zeroed(HIGH + 2 * MIB, 2 * MIB));
        assertTrue(untouched(HIGH + 4 * MIB, HIGH_END - HIGH - 4 * MIB));
        assertEquals(6 * MIB, b.reportedBytes());
        // unaligned: only the whole pages inside are discarded
        pattern();
        report(rq, new long[] {12 * MIB + 100, 3 * PAGE});
        assertTrue(untouched(12 * MIB, PAGE));
        assertTrue(zeroed(12 * MIB + PAGE, 2 * PAGE));
        assertTrue(untouched(12 * MIB + 3 * PAGE, PAGE));
        long before = b.reportedBytes();
        // hostile: across the hole, in the hole, past RAM, wrapping past 2^64, zero length, smaller than a page
        pattern();
        for (long[] r : new long[][] {{HOLE - PAGE, 2 * PAGE}, {HOLE, PAGE}, {HIGH - PAGE, 2 * PAGE},
                {HIGH_END - PAGE, 2 * PAGE}, {HIGH_END, PAGE}, {-PAGE, 2 * PAGE}, {-1, 0xFFFFFFFFL}, {9 * MIB, 0},
                {9 * MIB + 1, PAGE - 2}}) {
            DriverQueue.Used u = report(rq, r);
            assertEquals(0, u.len());
        }
        assertEquals(before, b.reportedBytes());
        assertTrue(untouched(8 * MIB, 8 * MIB));
        assertTrue(untouched(HIGH, HIGH_END - HIGH));
        // the queue still works
        report(rq, new long[] {HIGH, PAGE});
        assertTrue(zeroed(HIGH, PAGE));
        assertEquals(0, d.status() & MmioTransport.STATUS_DEVICE_NEEDS_RESET);
    }

    static byte[] stats(long... tagValue) {
        ByteBuffer b = ByteBuffer.allocate(10 * (tagValue.length / 2)).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i + 1 < tagValue.length; i += 2) {
            b.putShort((short) tagValue[i]).putLong(tagValue[i + 1]);
        }
        return b.array();
    }

    @Test
    void statsBufferIsHeldAndGivenBackOnRequest() {
        VirtioBalloon b = balloon();
        assertFalse(b.requestStats(), "not active");
        MockDriver d = driver(b, ALL);
        DriverQueue sq = d.queue(2);
        assertFalse(b.requestStats(), "no buffer yet");
        int h = sq.add(List.of(stats(VirtioBalloon.STAT_MEMFREE, 1000, VirtioBalloon.STAT_MEMTOT, 5000)));
        sq.kick();
        assertTrue(CountingTrigger.await(() -> b.stats().isPresent(), TIMEOUT));
        assertEquals(1000L, b.stats().get().get(VirtioBalloon.STAT_MEMFREE).orElseThrow());
        assertEquals(5000L, b.stats().get().get(VirtioBalloon.STAT_MEMTOT).orElseThrow());
        assertTrue(sq.pollUsed().isEmpty(), "the device keeps the buffer");
        assertTrue(b.requestStats());
        assertEquals(new DriverQueue.Used(h, 0), sq.awaitUsed(TIMEOUT));
        // the driver refills it: a torn entry at the end is ignored
        byte[] s2 = stats(VirtioBalloon.STAT_MEMFREE, 2000);
        byte[] torn = java.util.Arrays.copyOf(s2, s2.length + 7);
        sq.add(List.of(torn));
        sq.kick();
        assertTrue(CountingTrigger.await(() -> b.stats().get().get(VirtioBalloon.STAT_MEMFREE).orElse(0L) == 2000L, TIMEOUT));
        assertEquals(1, b.stats().get().values().size());
        // a hostile driver posting a second buffer gets the first back; an oversized one is read up to the bound
        long[] big = new long[2 * 1000];
        for (int i = 0; i < 1000; i++) {
            big[2 * i] = i;
            big[2 * i + 1] = i;
        }
        int h3 = sq.add(List.of(stats(big)));
        sq.kick();
        DriverQueue.Used u = sq.awaitUsed(TIMEOUT);
        assertEquals(0, u.len());
        assertTrue(CountingTrigger.await(() -> b.stats().get().values().size() == VirtioBalloon.MAX_STATS, TIMEOUT));
        assertTrue(b.requestStats());
        assertEquals(new DriverQueue.Used(h3, 0), sq.awaitUsed(TIMEOUT));
    }

    @Test
    void hintQueueChainsComeBackUnusedAndResetReactivates() {
        pattern();
        VirtioBalloon b = balloon();
        MockDriver d = driver(b, ALL);
        assertEquals(0, send(d.queue(3), pfns(8 * MIB / PAGE)).len());
        assertTrue(untouched(8 * MIB, PAGE), "hints do nothing");
        d.transport().write(MmioTransport.CONFIG + 4, new byte[] {9, 0, 0, 0});
        b.setTargetPages(5);
        d.setStatus(0);
        assertFalse(b.isActivated());
        assertEquals(0, b.actualPages(), "a reset empties the balloon");
        assertEquals(5, b.targetPages(), "the host's target stays");
        // without STATS_VQ there is no stats queue: nothing to request, and queue 2 is reporting
        d.init(1L << F_PAGE_REPORTING);
        assertFalse(b.requestStats());
        assertEquals(0, report(d.queue(2), new long[] {9 * MIB, PAGE}).len());
        assertTrue(zeroed(9 * MIB, PAGE));
        d.setStatus(0);
        d.init(ALL);
        assertTrue(b.isActivated());
        send(d.queue(0), pfns(8 * MIB / PAGE));
        assertTrue(zeroed(8 * MIB, PAGE));
    }
}
