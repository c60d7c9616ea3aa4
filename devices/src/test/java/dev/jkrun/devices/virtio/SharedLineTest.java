package dev.jkrun.devices.virtio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.devices.testing.MockDriver;
import dev.jkrun.memory.HeapGuestMemory;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * A shared level-triggered line: high while any member's InterruptStatus has bits, low once the driver acknowledged
 * the last of them, driven only on changes; with devices raising from their own threads while a "driver" acks.
 */
class SharedLineTest {
    /** The line as the IOAPIC pin sees it: its level and every change. */
    static final class Pin implements SharedLine.Level {
        final List<Boolean> changes = new ArrayList<>();
        volatile boolean high;

        @Override
        public synchronized void set(boolean h) {
            changes.add(h);
            high = h;
        }
    }

    private static MmioTransport activated(SharedLine line, HeapGuestMemory mem, List<MockDriver> drivers,
            List<MmioTransportTest.FakeDevice> devices) {
        MmioTransportTest.FakeDevice d = new MmioTransportTest.FakeDevice();
        MmioTransport t = line.attach(d, mem);
        MockDriver drv = new MockDriver(t, mem, 0x10000 + 0x10000L * drivers.size(), 0x200000 + 0x40000L * drivers.size(), 0x10000);
        drv.init(0);
        drivers.add(drv);
        devices.add(d);
        return t;
    }

    private static Thread start(Runnable r) {
        Thread t = new Thread(r);
        t.start();
        return t;
    }

    @Test
    void highWhileAnyMemberHasStatusBits() {
        HeapGuestMemory mem = HeapGuestMemory.of(0, 4 << 20);
        Pin pin = new Pin();
        SharedLine line = new SharedLine(pin);
        List<MockDriver> drv = new ArrayList<>();
        List<MmioTransportTest.FakeDevice> dev = new ArrayList<>();
        MmioTransport a = activated(line, mem, drv, dev);
        MmioTransport b = activated(line, mem, drv, dev);
        assertEquals(2, line.members());
        assertEquals(List.of(), pin.changes, "nothing raised yet: the line was never driven");

        dev.get(0).used.trigger();                     // a raises
        assertTrue(pin.high);
        dev.get(1).used.trigger();                     // b raises an already high line: no new drive
        dev.get(0).used.trigger();
        assertEquals(List.of(true), pin.changes);

        drv.get(0).ackInterrupt(drv.get(0).interruptStatus());
        assertTrue(pin.high, "b still has its bit");
        drv.get(1).ackInterrupt(MmioTransport.INT_VRING);
        assertFalse(pin.high, "the last bit acknowledged drops the line");
        drv.get(1).ackInterrupt(MmioTransport.INT_VRING); // nothing left to clear
        assertEquals(List.of(true, false), pin.changes);

        b.configChanged();
        assertTrue(pin.high);
        drv.get(1).setStatus(0);                        // a reset clears the status and so the line
        assertFalse(pin.high);
        assertEquals(0, b.interruptStatus());
        assertEquals(2, line.timesRaised());
        a.close();
        b.close();
    }

    /**
     * Four devices raise from their own threads while a driver thread takes interrupts as Linux's vm_interrupt does
     * (read status, ack it, for every member); whenever the devices stop, no status bit may be left behind a low line.
     */
    @Test
    void noRaiseIsLostUnderConcurrency() throws Exception {
        HeapGuestMemory mem = HeapGuestMemory.of(0, 8 << 20);
        Pin pin = new Pin();
        SharedLine line = new SharedLine(pin);
        List<MockDriver> drv = new ArrayList<>();
        List<MmioTransportTest.FakeDevice> dev = new ArrayList<>();
        List<MmioTransport> ts = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            ts.add(activated(line, mem, drv, dev));
        }
        int raises = 20_000;
        AtomicBoolean stop = new AtomicBoolean();
        AtomicInteger handled = new AtomicInteger();
        CountDownLatch go = new CountDownLatch(1);
        List<Thread> threads = new ArrayList<>();
        for (MmioTransportTest.FakeDevice d : dev) {
            threads.add(start(() -> {
                try {
                    go.await();
                } catch (InterruptedException e) {
                    return;
                }
                for (int i = 0; i < raises; i++) {
                    d.used.trigger();
                }
            }));
        }
        Thread driver = start(() -> {
            while (!stop.get()) {
                if (!pin.high) {
                    Thread.onSpinWait();
                    continue;
                }
                for (MockDriver m : drv) {
                    int s = m.interruptStatus();
                    if (s != 0) {
                        m.ackInterrupt(s);
                        handled.incrementAndGet();
                    }
                }
            }
        });
        go.countDown();
        for (Thread t : threads) {
            t.join();
        }
        // the devices are done: the driver must be able to drain every bit through the line
        long deadline = System.nanoTime() + 5_000_000_000L;
        while ((pin.high || ts.stream().anyMatch(t -> t.interruptStatus() != 0)) && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        stop.set(true);
        driver.join();
        for (MmioTransport t : ts) {
            assertEquals(0, t.interruptStatus(), "a status bit was left behind a low line");
        }
        assertFalse(pin.high);
        assertTrue(handled.get() > 0);
        synchronized (pin) {
            for (int i = 1; i < pin.changes.size(); i++) {
                assertTrue(pin.changes.get(i) != pin.changes.get(i - 1), "the line is driven only on changes");
            }
        }
        ts.forEach(MmioTransport::close);
    }
}
