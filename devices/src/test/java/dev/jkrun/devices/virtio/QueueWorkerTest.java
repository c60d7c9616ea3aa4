package dev.jkrun.devices.virtio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.devices.RateLimitedLog;
import dev.jkrun.devices.runtime.EventLoop;
import dev.jkrun.devices.testing.CountingTrigger;
import dev.jkrun.devices.testing.DriverQueue;
import dev.jkrun.devices.testing.LogCapture;
import dev.jkrun.devices.testing.MockDriver;
import dev.jkrun.memory.HeapGuestMemory;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/** What a {@link QueueWorker} does when its device's handler misbehaves. */
class QueueWorkerTest {
    static final long TIMEOUT = 5000;

    /** A device with two request queues, both served by one loop running {@link #handler}. */
    static final class WorkerDevice implements VirtioDevice {
        volatile QueueWorker.Handler handler = chain -> 0;
        volatile long bytesPerTurn = Long.MAX_VALUE;
        volatile EventLoop loop;
        final DeviceThreads threads = new DeviceThreads("virtio-test");
        final RateLimitedLog failures = new RateLimitedLog(LoggerFactory.getLogger(QueueWorkerTest.class), "virtio-test");

        @Override public int deviceType() { return 99; }
        @Override public int[] queueMaxSizes() { return new int[] {32, 32}; }
        @Override public long availableFeatures() { return 0; }
        @Override public void readConfig(long offset, byte[] data) { java.util.Arrays.fill(data, (byte) 0); }
        @Override public void writeConfig(long offset, byte[] data) { }
        @Override public DeviceThreads threads() { return threads; }
        @Override public synchronized void activate(ActivationContext ctx) {
            loop = QueueWorker.serve(threads, "virtio-test-loop", ctx, q -> chain -> handler.handle(chain), failures, bytesPerTurn);
        }
        @Override public synchronized boolean isActivated() { return loop != null; }
        @Override public synchronized void reset() {
            if (loop != null) {
                loop.close();
                loop = null;
            }
        }
        @Override public void close() { reset(); }
    }

    final HeapGuestMemory mem = HeapGuestMemory.of(0, 4 << 20);
    final CountingTrigger irq = new CountingTrigger();
    final WorkerDevice dev = new WorkerDevice();
    final MmioTransport t = new MmioTransport(dev, mem, irq);
    final MockDriver drv = new MockDriver(t, mem);

    @AfterEach
    void tearDown() {
        t.close();
        assertTrue(CountingTrigger.await(() -> Thread.getAllStackTraces().keySet().stream()
                .noneMatch(th -> th.getName().startsWith("virtio-test-")), TIMEOUT), "worker threads left running");
    }

    /**
     * An Error from the handler (a device bug, or the JVM out of memory or stack) ends the worker, but not
     * silently: DEVICE_NEEDS_RESET with a configuration change interrupt (virtio 1.2 §2.1.2), one error logged for
     * the device however many workers die, and a reset brings the device back.
     */
    @Test
    void anErrorInTheHandlerNeedsResetAndIsReportedOnce() {
        dev.handler = chain -> {
            throw new StackOverflowError("handler recursed");
        };
        try (LogCapture log = new LogCapture()) {
            drv.init(0);
            for (int q = 0; q < 2; q++) {
                drv.queue(q).addReadable(new byte[] {1});
                drv.queue(q).kick();
            }
            assertTrue(CountingTrigger.await(() -> (drv.status() & MmioTransport.STATUS_DEVICE_NEEDS_RESET) != 0, TIMEOUT),
                    "status 0x" + Integer.toHexString(drv.status()));
            assertEquals(MmioTransport.INT_CONFIG, drv.interruptStatus() & MmioTransport.INT_CONFIG);
            assertTrue(CountingTrigger.await(() -> Thread.getAllStackTraces().keySet().stream()
                    .noneMatch(th -> th.getName().startsWith("virtio-test-")), TIMEOUT), "the loop ended");
            assertEquals(1, log.count("handler recursed"), String.join("\n", log.lines()));
        }
        dev.handler = chain -> 0;
        drv.setStatus(0);
        assertEquals(0, drv.status() & MmioTransport.STATUS_DEVICE_NEEDS_RESET);
        drv.init(0);
        int h = drv.queue(0).addReadable(new byte[] {2});
        drv.queue(0).kick();
        assertEquals(new DriverQueue.Used(h, 0), drv.queue(0).awaitUsed(TIMEOUT));
    }

    /** A handler that fails every request keeps the queue going, and the log does not grow with the guest's rate. */
    @Test
    void failingRequestsAreLoggedAtALimitedRate() {
        dev.handler = chain -> {
            throw new IllegalStateException("request refused");
        };
        drv.init(0);
        DriverQueue q = drv.queue(0);
        try (LogCapture log = new LogCapture()) {
            long t0 = System.nanoTime();
            for (int round = 0; round < 40; round++) {
                q.resetBuffers();
                for (int i = 0; i < 25; i++) {
                    q.addReadable(new byte[] {3});
                }
                q.kick();
                for (int i = 0; i < 25; i++) {
                    q.awaitUsed(TIMEOUT);
                }
            }
            long n = log.count("request refused");
            assertTrue(n <= LogCapture.rateLimitBound((System.nanoTime() - t0) / 1_000_000), n + " warnings for 1000 failed requests");
        }
        assertEquals(0, drv.status() & MmioTransport.STATUS_DEVICE_NEEDS_RESET);
    }

    /**
     * With a budget of bytes per drain, chains past it wait for the loop's next task turn: a task queued while the
     * first chain was served runs before the third chain (budget: two chains); without one, after all of them.
     */
    @Test
    void aBudgetPerDrainLetsTheLoopRunOtherWorkInBetween() {
        for (long budget : new long[] {200, Long.MAX_VALUE}) {
            WorkerDevice d = new WorkerDevice();
            d.bytesPerTurn = budget;
            MmioTransport tr = new MmioTransport(d, mem, irq);
            try {
                MockDriver m = new MockDriver(tr, mem);
                List<String> order = Collections.synchronizedList(new ArrayList<>());
                d.handler = chain -> 0;
                m.init(0);
                DriverQueue q = m.queue(0);
                q.addWritable(1);
                q.kick();
                q.awaitUsed(TIMEOUT); // the loop is idle now: the next drain is the notification's
                d.handler = chain -> {
                    if (order.isEmpty()) {
                        d.loop.execute(() -> order.add("task"));
                    }
                    order.add("chain");
                    return 100;
                };
                for (int i = 0; i < 6; i++) {
                    q.addWritable(100);
                }
                q.kick();
                for (int i = 0; i < 6; i++) {
                    assertEquals(100, q.awaitUsed(TIMEOUT).len());
                }
                assertTrue(CountingTrigger.await(() -> order.size() == 7, TIMEOUT), order.toString());
                assertEquals(budget == 200 ? 2 : 6, order.indexOf("task"), "budget " + budget + ": " + order);
            } finally {
                tr.close();
            }
        }
    }
}
