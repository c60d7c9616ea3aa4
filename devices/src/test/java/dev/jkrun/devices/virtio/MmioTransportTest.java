package dev.jkrun.devices.virtio;

import dev.jkrun.devices.Trigger;
import dev.jkrun.devices.testing.CountingTrigger;
import dev.jkrun.devices.testing.LogCapture;
import dev.jkrun.devices.testing.MockDriver;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.libc.EventFd;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.memory.HeapGuestMemory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.List;

import static dev.jkrun.devices.virtio.MmioTransport.*;
import static org.junit.jupiter.api.Assertions.*;

class MmioTransportTest {
    /** A device that records what the transport did to it. */
    static class FakeDevice implements VirtioDevice {
        int activations, resets, closes;
        long acked = -1;
        List<Queue> queues;
        List<EventFd> events;
        Trigger used;
        Trigger configChanged;
        byte[] config = {10, 20, 30, 40};
        boolean failActivate;

        @Override public int deviceType() { return 42; }
        @Override public int[] queueMaxSizes() { return new int[] {16, 8}; }
        @Override public long availableFeatures() { return 0x5L | (1L << 40) | (1L << Queue.VIRTIO_RING_F_EVENT_IDX); }
        @Override public void ackFeatures(long f) { acked = f; }
        @Override public void readConfig(long off, byte[] d) {
            for (int i = 0; i < d.length; i++) {
                d[i] = off + i < config.length ? config[(int) off + i] : 0;
            }
        }
        @Override public void writeConfig(long off, byte[] d) { config[(int) off] = d[0]; }
        @Override public void activate(ActivationContext ctx) {
            if (failActivate) {
                throw new IllegalStateException("no");
            }
            activations++;
            queues = ctx.queues().stream().map(ActiveQueue::queue).toList();
            events = ctx.queues().stream().map(ActiveQueue::notification).toList();
            used = ctx.usedBuffer();
            configChanged = ctx.configChanged();
        }
        @Override public boolean isActivated() { return activations > resets; }
        @Override public void reset() { resets++; }
        @Override public void close() { closes++; }
    }

    HeapGuestMemory mem;
    FakeDevice dev;
    CountingTrigger irq;
    MmioTransport t;
    MockDriver drv;

    @BeforeEach
    void setUp() {
        mem = HeapGuestMemory.of(0, 4 << 20);
        dev = new FakeDevice();
        irq = new CountingTrigger();
        t = new MmioTransport(dev, mem, irq);
        drv = new MockDriver(t, mem);
    }

    @AfterEach
    void tearDown() { t.close(); }

    @Test
    void identity() {
        assertEquals(0x74726976, drv.read(MAGIC_VALUE));
        assertEquals(2, drv.read(VERSION));
        assertEquals(42, drv.read(DEVICE_ID));
        assertEquals(0, drv.read(VENDOR));
        assertEquals(0, drv.read(CONFIG_GENERATION));
        assertEquals(-1, drv.read(SHM_LEN_LOW));
        assertEquals(-1, drv.read(SHM_LEN_HIGH));
        assertEquals(2, t.queueEvents().size());
    }

    @Test
    void sharedMemoryRegionsAreReportedBySelectedId() {
        FakeDevice shm = new FakeDevice() {
            @Override
            public java.util.List<SharedMemoryRegion> sharedMemoryRegions() {
                return java.util.List.of(new SharedMemoryRegion(0, 0x40_0000_0000L, 0x2_0020_0000L));
            }
        };
        try (MmioTransport withShm = new MmioTransport(shm, mem, irq)) {
            MockDriver d = new MockDriver(withShm, mem);
            d.write(SHM_SEL, 0);
            assertEquals(0x0020_0000, d.read(SHM_LEN_LOW));
            assertEquals(2, d.read(SHM_LEN_HIGH));
            assertEquals(0, d.read(SHM_BASE_LOW));
            assertEquals(0x40, d.read(SHM_BASE_HIGH));
            for (int id : new int[] {1, -1, 0x100}) {
                d.write(SHM_SEL, id);
                assertEquals(-1, d.read(SHM_LEN_LOW), "no region " + id);
                assertEquals(-1, d.read(SHM_LEN_HIGH));
                assertEquals(-1, d.read(SHM_BASE_LOW));
                assertEquals(-1, d.read(SHM_BASE_HIGH));
            }
        }
    }

    @Test
    void featuresIncludeVersion1() {
        assertEquals(dev.availableFeatures() | VirtioDevice.VIRTIO_F_VERSION_1, drv.deviceFeatures());
        drv.write(DEVICE_FEATURES_SEL, 2);
        assertEquals(0, drv.read(DEVICE_FEATURES));
    }

    @Test
    void nonWordAccessBelowConfigIgnored() {
        byte[] b = {9, 9};
        t.read(MAGIC_VALUE, b);
        assertArrayEquals(new byte[2], b);
        drv.setStatus(STATUS_ACKNOWLEDGE);
        t.write(STATUS, new byte[] {0});
        assertEquals(STATUS_ACKNOWLEDGE, drv.status());
        byte[] c = new byte[2];
        t.read(CONFIG + 1, c);
        assertArrayEquals(new byte[] {20, 30}, c);
    }

    @Test
    void handshakeActivates() {
        long acked = drv.init(0x1L | (1L << 40));
        assertEquals(0x1L | (1L << 40) | VirtioDevice.VIRTIO_F_VERSION_1, acked);
        assertEquals(acked, dev.acked);
        assertEquals(1, dev.activations);
        assertEquals(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK, drv.status());
        assertTrue(dev.queues.get(0).isReady());
        assertEquals(16, dev.queues.get(0).size());
        assertEquals(drv.queue(1).descTable(), dev.queues.get(1).descTable());
        assertEquals(drv.queue(1).usedRing(), dev.queues.get(1).usedRing());
    }

    @Test
    void eventIdxFlowsToQueues() {
        drv.init(1L << Queue.VIRTIO_RING_F_EVENT_IDX);
        assertTrue(dev.queues.get(0).eventIdx());
        assertFalse(dev.queues.get(0).indirectAllowed());
    }

    @Test
    void wrongStatusOrderIgnored() {
        drv.setStatus(STATUS_DRIVER); // DRIVER before ACKNOWLEDGE
        assertEquals(0, drv.status());
        drv.setStatus(STATUS_ACKNOWLEDGE);
        drv.setStatus(STATUS_ACKNOWLEDGE | STATUS_FEATURES_OK); // skips DRIVER
        assertEquals(STATUS_ACKNOWLEDGE, drv.status());
        drv.setStatus(STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        drv.setStatus(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK); // skips FEATURES_OK
        assertEquals(STATUS_ACKNOWLEDGE | STATUS_DRIVER, drv.status());
        assertEquals(0, dev.activations);
        drv.setStatus(STATUS_ACKNOWLEDGE); // removing bits is not allowed either
        assertEquals(STATUS_ACKNOWLEDGE | STATUS_DRIVER, drv.status());
    }

    @Test
    void featuresOnlyInDriverState() {
        drv.setStatus(STATUS_ACKNOWLEDGE);
        drv.writeDriverFeatures(VirtioDevice.VIRTIO_F_VERSION_1 | 1);
        assertEquals(0, t.driverFeatures());
        drv.addStatus(STATUS_DRIVER);
        drv.writeDriverFeatures(VirtioDevice.VIRTIO_F_VERSION_1 | 1 | 2 /* not offered */);
        assertEquals(VirtioDevice.VIRTIO_F_VERSION_1 | 1, t.driverFeatures());
        drv.addStatus(STATUS_FEATURES_OK);
        drv.writeDriverFeatures(VirtioDevice.VIRTIO_F_VERSION_1 | 4);
        assertEquals(VirtioDevice.VIRTIO_F_VERSION_1 | 1, t.driverFeatures());
    }

    @Test
    void featuresOkRefusedWithoutVersion1() {
        drv.setStatus(STATUS_ACKNOWLEDGE);
        drv.addStatus(STATUS_DRIVER);
        drv.writeDriverFeatures(1);
        drv.addStatus(STATUS_FEATURES_OK);
        assertEquals(STATUS_ACKNOWLEDGE | STATUS_DRIVER, drv.status());
    }

    @Test
    void queueRegistersOnlyBetweenFeaturesOkAndDriverOk() {
        drv.setStatus(STATUS_ACKNOWLEDGE);
        drv.addStatus(STATUS_DRIVER);
        drv.write(QUEUE_SEL, 0);
        drv.write(QUEUE_NUM, 4);
        assertEquals(16, t.queues().get(0).size(), "before FEATURES_OK");
        drv.init(0);
        drv.write(QUEUE_SEL, 0);
        assertEquals(16, drv.read(QUEUE_NUM_MAX));
        drv.write(QUEUE_NUM, 4);
        drv.write(QUEUE_DESC_LOW, 0x5000);
        drv.write(QUEUE_READY, 0);
        Queue q = t.queues().get(0);
        assertEquals(16, q.size());
        assertEquals(drv.queue(0).descTable(), q.descTable());
        assertTrue(q.isReady());
        drv.write(QUEUE_SEL, 7);
        assertEquals(0, drv.read(QUEUE_NUM_MAX));
    }

    @Test
    void resetRestartsEverything() {
        drv.init(0);
        assertEquals(1, dev.activations);
        drv.setStatus(0);
        assertEquals(1, dev.resets);
        assertEquals(0, drv.status());
        assertFalse(t.queues().get(0).isReady());
        assertEquals(0, t.driverFeatures());
        drv.init(0);
        assertEquals(2, dev.activations);
    }

    @Test
    void failedIsSticky() {
        drv.setStatus(STATUS_ACKNOWLEDGE);
        drv.setStatus(STATUS_ACKNOWLEDGE | STATUS_FAILED);
        assertEquals(STATUS_ACKNOWLEDGE | STATUS_FAILED, drv.status());
        drv.setStatus(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FAILED);
        drv.setStatus(STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        assertEquals(STATUS_ACKNOWLEDGE | STATUS_FAILED, drv.status());
        drv.setStatus(0);
        assertEquals(0, drv.status());
    }

    @Test
    void invalidQueueNeedsReset() {
        drv.negotiate(0);
        drv.setupQueue(0, 0);
        drv.write(QUEUE_SEL, 1);
        drv.write(QUEUE_NUM, 6); // not a power of two
        drv.write(QUEUE_READY, 1);
        drv.addStatus(STATUS_DRIVER_OK);
        assertEquals(0, dev.activations);
        assertNotEquals(0, drv.status() & STATUS_DEVICE_NEEDS_RESET);
        assertEquals(INT_CONFIG, drv.interruptStatus() & INT_CONFIG);
        assertEquals(1, irq.count());
    }

    @Test
    void aClosedTransportIgnoresWritesAndNeverActivates() {
        drv.negotiate(0);
        drv.setupQueue(0, 0);
        drv.setupQueue(1, 0);
        t.close();
        drv.addStatus(STATUS_DRIVER_OK);
        drv.write(QUEUE_NOTIFY, 0);
        assertEquals(0, dev.activations);
        assertEquals(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK, drv.status());
        assertEquals(0, irq.count());
    }

    @Test
    void activationFailureNeedsReset() {
        dev.failActivate = true;
        drv.init(0);
        assertNotEquals(0, drv.status() & STATUS_DEVICE_NEEDS_RESET);
    }

    @Test
    void notifyAndInterrupts() throws Exception {
        drv.init(0);
        drv.notifyQueue(1);
        assertEquals(1, t.queueEvents().get(1).await());
        drv.notifyQueue(9); // no such queue: ignored
        dev.used.trigger();
        assertEquals(INT_VRING, drv.interruptStatus());
        assertEquals(1, irq.count());
        t.configChanged();
        assertEquals(INT_VRING | INT_CONFIG, drv.interruptStatus());
        drv.ackInterrupt(INT_VRING);
        assertEquals(INT_CONFIG, drv.interruptStatus());
    }

    @Test
    void describeShowsBothSidesOfEachReadyQueue() {
        drv.init(0);
        drv.queue(1).addWritable(8); // the guest's avail index moves, the device has not popped
        dev.used.trigger();
        String d = t.describe();
        assertTrue(d.startsWith("type 42: status 0xf isr 1; q0 avail 0 "), d);
        assertTrue(d.contains("; q1 avail 1 flags 0 used_event 0 | used 0 flags 0 avail_event 0 | device next avail 0 next used 0"), d);
    }

    @Test
    void interruptAckIgnoredBeforeDriverOk() {
        t.configChanged();
        drv.ackInterrupt(INT_CONFIG);
        assertEquals(INT_CONFIG, drv.interruptStatus());
    }

    @Test
    void configWritesNeedDriver() {
        t.write(CONFIG, new byte[] {99});
        assertEquals(10, dev.config[0]);
        drv.setStatus(STATUS_ACKNOWLEDGE);
        drv.addStatus(STATUS_DRIVER);
        t.write(CONFIG, new byte[] {99});
        assertEquals(99, dev.config[0]);
    }

    @Test
    void closeClosesDeviceAndEvents() {
        t.close();
        t.close();
        assertEquals(1, dev.closes);
        assertFalse(t.queueEvents().get(0).fd().isOpen());
    }

    @Test
    void neverThrowsOnGarbage() {
        java.util.Random r = new java.util.Random(1);
        for (int i = 0; i < 20000; i++) {
            int width = new int[] {1, 2, 4, 8}[r.nextInt(4)];
            byte[] d = new byte[width];
            r.nextBytes(d);
            long off = r.nextInt(0x1100);
            if (r.nextBoolean()) {
                t.write(off, d);
            } else {
                t.read(off, d);
            }
        }
    }

    @Test
    void guestTriggeredWarningsAreLoggedAtALimitedRate() {
        try (LogCapture log = new LogCapture()) {
            long t0 = System.nanoTime();
            for (int i = 0; i < 10_000; i++) {
                drv.write(0x0f0, i); // unknown register
                drv.notifyQueue(0);  // before DRIVER_OK
            }
            long n = log.count("ignored");
            assertTrue(n <= LogCapture.rateLimitBound((System.nanoTime() - t0) / 1_000_000), n + " warnings for 20,000 ignored accesses");
            assertTrue(n > 0, "some are logged");
        }
    }
}
