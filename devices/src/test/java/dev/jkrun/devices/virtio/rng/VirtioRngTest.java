package dev.jkrun.devices.virtio.rng;

import static dev.jkrun.devices.virtio.rng.VirtioRng.MAX_BYTES_PER_REQUEST;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.devices.testing.CountingTrigger;
import dev.jkrun.devices.testing.DriverQueue;
import dev.jkrun.devices.testing.LogCapture;
import dev.jkrun.devices.testing.MockDriver;
import dev.jkrun.devices.virtio.MmioTransport;
import dev.jkrun.devices.virtio.VirtioDevice;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.memory.HeapGuestMemory;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ScatteringByteChannel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * virtio-rng through virtio-mmio against fake guest memory: buffers of every size and shape get the source's bytes
 * in order up to the per-request bound, chains with device-readable parts or outside RAM come back with 0, a failing
 * source costs nothing but zero-length answers, and the real source's bytes look random.
 */
class VirtioRngTest {
    static final long TIMEOUT = 5000;
    static final long FEATURES = 1L << Queue.VIRTIO_RING_F_EVENT_IDX | 1L << Queue.VIRTIO_RING_F_INDIRECT_DESC;

    final HeapGuestMemory mem = HeapGuestMemory.of(0, 32 << 20);
    final CountingTrigger irq = new CountingTrigger();
    final List<AutoCloseable> toClose = new ArrayList<>();

    @AfterEach
    void tearDown() throws Exception {
        for (AutoCloseable c : toClose) {
            c.close();
        }
        assertTrue(CountingTrigger.await(() -> Thread.getAllStackTraces().keySet().stream()
                .noneMatch(t -> t.getName().startsWith("virtio-rng")), TIMEOUT), "virtio-rng threads left running");
    }

    /** Byte i of everything it ever gives is (byte) (i * 7 + 1); counts opens, reads and closes. */
    static final class CountingSource implements ScatteringByteChannel {
        final AtomicInteger opens, closes;
        volatile boolean open = true;
        volatile long produced;
        volatile int reads;
        /** Most bytes one read gives (a partial read), and reads that fail or end after that many. */
        int maxPerRead = Integer.MAX_VALUE;
        int failAfterReads = Integer.MAX_VALUE;
        int eofAfterReads = Integer.MAX_VALUE;

        CountingSource(AtomicInteger opens, AtomicInteger closes) {
            this.opens = opens;
            this.closes = closes;
            opens.incrementAndGet();
        }

        static byte at(long i) { return (byte) (i * 7 + 1); }

        @Override
        public synchronized long read(ByteBuffer[] dsts, int offset, int length) throws IOException {
            if (!open) {
                throw new ClosedChannelException();
            }
            if (reads >= failAfterReads) {
                reads++;
                throw new IOException("entropy source broken");
            }
            if (reads >= eofAfterReads) {
                reads++;
                return -1;
            }
            reads++;
            long n = 0;
            for (int k = offset; k < offset + length && n < maxPerRead; k++) {
                ByteBuffer b = dsts[k];
                while (b.hasRemaining() && n < maxPerRead) {
                    b.put(at(produced++));
                    n++;
                }
            }
            return n;
        }

        @Override
        public long read(ByteBuffer[] dsts) throws IOException { return read(dsts, 0, dsts.length); }

        @Override
        public int read(ByteBuffer dst) throws IOException { return (int) read(new ByteBuffer[] {dst}, 0, 1); }

        @Override
        public boolean isOpen() { return open; }

        @Override
        public void close() {
            if (open) {
                open = false;
                closes.incrementAndGet();
            }
        }
    }

    final AtomicInteger opens = new AtomicInteger(), closes = new AtomicInteger();
    final List<CountingSource> sources = new ArrayList<>();

    private VirtioRng counting() {
        VirtioRng rng = new VirtioRng(() -> {
            CountingSource s = new CountingSource(opens, closes);
            sources.add(s);
            return s;
        });
        toClose.add(rng);
        return rng;
    }

    private MockDriver driver(VirtioDevice dev, long features) {
        MmioTransport t = new MmioTransport(dev, mem, irq);
        toClose.add(t);
        MockDriver d = new MockDriver(t, mem, 0x10000, 0x100000, 24 << 20);
        d.init(features);
        return d;
    }

    /** The bytes a counting source gives from position {@code from}. */
    static byte[] expected(long from, int len) {
        byte[] b = new byte[len];
        for (int i = 0; i < len; i++) {
            b[i] = CountingSource.at(from + i);
        }
        return b;
    }

    static DriverQueue.Used submit(DriverQueue q, int... writable) {
        int h = q.add(List.of(), writable);
        q.kick();
        DriverQueue.Used u = q.awaitUsed(TIMEOUT);
        assertEquals(h, u.id(), "used id");
        return u;
    }

    @Test
    void identityFeaturesAndNoConfigSpace() {
        VirtioRng rng = counting();
        MockDriver d = driver(rng, FEATURES);
        assertEquals(4, d.read(MmioTransport.DEVICE_ID));
        d.write(MmioTransport.QUEUE_SEL, 0);
        assertEquals(256, d.read(MmioTransport.QUEUE_NUM_MAX));
        d.write(MmioTransport.QUEUE_SEL, 1);
        assertEquals(0, d.read(MmioTransport.QUEUE_NUM_MAX), "one queue only");
        assertEquals(FEATURES | VirtioDevice.VIRTIO_F_VERSION_1, d.deviceFeatures());
        assertArrayEquals(new byte[16], d.readConfig(0, 16));
        d.transport().write(MmioTransport.CONFIG, new byte[] {1, 2, 3, 4}); // ignored
        assertArrayEquals(new byte[16], d.readConfig(0, 16));
        assertTrue(rng.isActivated());
        assertEquals(1, opens.get());
    }

    @Test
    void buffersOfEverySizeGetTheSourceBytesInOrder() {
        for (long features : new long[] {FEATURES, 0}) {
            sources.clear();
            MockDriver d = driver(counting(), features);
            DriverQueue q = d.queue(0);
            long pos = 0;
            for (int[] chain : new int[][] {{1}, {4096}, {MAX_BYTES_PER_REQUEST}, {100, 5000, 7}, {3, 0, 9}}) {
                int total = Arrays.stream(chain).sum();
                DriverQueue.Used u = submit(q, chain);
                assertEquals(total, u.len(), Arrays.toString(chain));
                assertArrayEquals(expected(pos, total), q.written(u.id(), total), Arrays.toString(chain));
                pos += total;
            }
            // An indirect table (negotiated) of three writable buffers.
            if (features != 0) {
                int h = q.addIndirect(List.of(), 10, 20, 30);
                q.kick();
                DriverQueue.Used u = q.awaitUsed(TIMEOUT);
                assertEquals(new DriverQueue.Used(h, 60), u);
                assertArrayEquals(expected(pos, 60), q.written(h, 60));
                pos += 60;
            }
            assertEquals(pos, sources.get(0).produced);
            for (AutoCloseable c : toClose) {
                try {
                    c.close();
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            }
            toClose.clear();
        }
    }

    @Test
    void aRequestIsBoundedTo64KiB() {
        MockDriver d = driver(counting(), FEATURES);
        DriverQueue q = d.queue(0);
        DriverQueue.Used u = submit(q, 1 << 20);
        assertEquals(MAX_BYTES_PER_REQUEST, u.len());
        byte[] got = q.written(u.id(), MAX_BYTES_PER_REQUEST + 16);
        assertArrayEquals(expected(0, MAX_BYTES_PER_REQUEST), Arrays.copyOf(got, MAX_BYTES_PER_REQUEST));
        assertArrayEquals(new byte[16], Arrays.copyOfRange(got, MAX_BYTES_PER_REQUEST, got.length), "nothing past the bound");
        // Split over descriptors: the bound is on the chain, not per descriptor.
        u = submit(q, 40000, 40000, 40000);
        assertEquals(MAX_BYTES_PER_REQUEST, u.len());
        assertEquals(2L * MAX_BYTES_PER_REQUEST, sources.get(0).produced);
    }

    @Test
    void partialReadsAreCompleted() {
        MockDriver d = driver(counting(), FEATURES);
        sources.get(0).maxPerRead = 1000;
        DriverQueue q = d.queue(0);
        DriverQueue.Used u = submit(q, 4096, 4096);
        assertEquals(8192, u.len());
        assertArrayEquals(expected(0, 8192), q.written(u.id(), 8192));
        assertEquals(9, sources.get(0).reads);
    }

    @Test
    void chainsWithReadablePartsComeBackEmpty() {
        MockDriver d = driver(counting(), FEATURES);
        DriverQueue q = d.queue(0);
        int h = q.addReadable(new byte[] {1, 2, 3});
        q.kick();
        assertEquals(new DriverQueue.Used(h, 0), q.awaitUsed(TIMEOUT));
        h = q.add(List.of(new byte[] {9}), 64);
        q.kick();
        assertEquals(new DriverQueue.Used(h, 0), q.awaitUsed(TIMEOUT));
        assertArrayEquals(new byte[64], q.written(h, 64), "the writable part is untouched");
        h = q.addIndirect(List.of(new byte[8]), 64);
        q.kick();
        assertEquals(new DriverQueue.Used(h, 0), q.awaitUsed(TIMEOUT));
        assertEquals(0, sources.get(0).produced, "nothing read for them");
        // a zero-length writable buffer: nothing to fill
        assertEquals(0, submit(q, 0).len());
        // and the queue still works
        assertEquals(5, submit(q, 5).len());
        assertEquals(0, d.status() & MmioTransport.STATUS_DEVICE_NEEDS_RESET);
    }

    @Test
    void malformedChainsComeBackWithZeroAndTheQueueGoesOn() {
        MockDriver d = driver(counting(), FEATURES);
        DriverQueue q = d.queue(0);
        // a buffer beyond RAM
        int h = q.takeDescriptor();
        q.writeDescriptor(h, mem.size() - 8, 4096, Queue.VRING_DESC_F_WRITE, 0);
        q.publish(h);
        // a NEXT loop
        int a = q.takeDescriptor(), b = q.takeDescriptor();
        long buf = q.alloc(16);
        q.writeDescriptor(a, buf, 16, Queue.VRING_DESC_F_WRITE | Queue.VRING_DESC_F_NEXT, b);
        q.writeDescriptor(b, buf, 16, Queue.VRING_DESC_F_WRITE | Queue.VRING_DESC_F_NEXT, a);
        q.publish(a);
        q.kick();
        assertEquals(new DriverQueue.Used(h, 0), q.awaitUsed(TIMEOUT));
        assertEquals(new DriverQueue.Used(a, 0), q.awaitUsed(TIMEOUT));
        assertEquals(32, submit(q, 32).len());
        assertEquals(0, d.status() & MmioTransport.STATUS_DEVICE_NEEDS_RESET);
    }

    @Test
    void aFailingSourceAnswersWithWhatItGaveAndIsLoggedAtALimitedRate() {
        MockDriver d = driver(counting(), FEATURES);
        CountingSource s = sources.get(0);
        s.maxPerRead = 100;
        s.eofAfterReads = 1;
        DriverQueue q = d.queue(0);
        DriverQueue.Used u = submit(q, 4096);
        assertEquals(100, u.len(), "the bytes it did give");
        assertArrayEquals(expected(0, 100), q.written(u.id(), 100));
        s.failAfterReads = 0;
        try (LogCapture log = new LogCapture()) {
            long t0 = System.nanoTime();
            for (int round = 0; round < 20; round++) {
                q.resetBuffers();
                for (int i = 0; i < 50; i++) {
                    q.addWritable(64);
                }
                q.kick();
                for (int i = 0; i < 50; i++) {
                    assertEquals(0, q.awaitUsed(TIMEOUT).len());
                }
            }
            long n = log.count("entropy source broken");
            assertTrue(n >= 1 && n <= LogCapture.rateLimitBound((System.nanoTime() - t0) / 1_000_000), n + " warnings for 1000 failed reads");
        }
        assertEquals(0, d.status() & MmioTransport.STATUS_DEVICE_NEEDS_RESET);
    }

    @Test
    void aSourceThatCannotOpenFailsActivation() {
        VirtioRng rng = new VirtioRng(() -> {
            throw new IOException("no /dev/urandom here");
        });
        toClose.add(rng);
        MockDriver d = driver(rng, FEATURES);
        assertNotEquals(0, d.status() & MmioTransport.STATUS_DEVICE_NEEDS_RESET);
        assertFalse(rng.isActivated());
    }

    @Test
    void resetClosesTheSourceAndActivationOpensAFreshOne() {
        VirtioRng rng = counting();
        MockDriver d = driver(rng, FEATURES);
        assertEquals(8, submit(d.queue(0), 8).len());
        d.setStatus(0);
        assertFalse(rng.isActivated());
        assertEquals(1, closes.get());
        assertTrue(CountingTrigger.await(() -> Thread.getAllStackTraces().keySet().stream()
                .noneMatch(t -> t.getName().startsWith("virtio-rng")), TIMEOUT), "the loop ended at reset");
        d.init(FEATURES);
        assertEquals(2, opens.get());
        DriverQueue.Used u = submit(d.queue(0), 8);
        assertEquals(8, u.len());
        assertArrayEquals(expected(0, 8), d.queue(0).written(u.id(), 8), "the new source's bytes");
        rng.close();
        assertEquals(2, closes.get());
    }

    /** More than a turn's budget queued at once (the per-turn bound yields, nothing is lost or reordered). */
    @Test
    void aFloodOfLargeRequestsIsServedWhole() {
        MockDriver d = driver(counting(), FEATURES);
        DriverQueue q = d.queue(0);
        int n = 64; // 4 MiB, four turns' worth
        int[] heads = new int[n];
        for (int i = 0; i < n; i++) {
            heads[i] = q.addWritable(MAX_BYTES_PER_REQUEST);
        }
        q.kick();
        for (int i = 0; i < n; i++) {
            DriverQueue.Used u = q.awaitUsed(TIMEOUT);
            assertEquals(new DriverQueue.Used(heads[i], MAX_BYTES_PER_REQUEST), u);
            assertArrayEquals(expected((long) i * MAX_BYTES_PER_REQUEST, MAX_BYTES_PER_REQUEST),
                    q.written(u.id(), MAX_BYTES_PER_REQUEST));
        }
        assertTrue(irq.count() >= 1);
    }

    /** The real source: /dev/urandom's bytes, different every time, in every buffer of a chain. */
    @Test
    void hostEntropy() {
        VirtioRng rng = new VirtioRng();
        toClose.add(rng);
        MockDriver d = driver(rng, FEATURES);
        DriverQueue q = d.queue(0);
        DriverQueue.Used a = submit(q, 4096);
        DriverQueue.Used b = submit(q, 4096);
        DriverQueue.Used c = submit(q, 1, 31, 4064);
        assertEquals(4096, a.len());
        assertEquals(4096, b.len());
        assertEquals(4096, c.len());
        byte[] x = q.written(a.id(), 4096), y = q.written(b.id(), 4096), z = q.written(c.id(), 4096);
        assertFalse(Arrays.equals(x, y), "two reads differ");
        assertFalse(Arrays.equals(y, z));
        for (byte[] r : List.of(x, y, z)) {
            assertFalse(Arrays.equals(r, new byte[4096]), "not all zero");
            int[] counts = new int[256];
            for (byte v : r) {
                counts[v & 0xFF]++;
            }
            // 4096 uniform bytes: 16 expected per value; more than 64 of one value is a broken source, not chance.
            assertTrue(Arrays.stream(counts).max().getAsInt() < 64, "byte histogram " + Arrays.toString(counts));
        }
        byte[] first = q.written(c.id(), 32);
        assertFalse(Arrays.equals(new byte[32], first), "the 1- and 31-byte buffers were filled too");
    }
}
