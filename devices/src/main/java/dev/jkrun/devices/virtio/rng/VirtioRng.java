package dev.jkrun.devices.virtio.rng;

import dev.jkrun.devices.RateLimitedLog;
import dev.jkrun.devices.runtime.EventLoop;
import dev.jkrun.devices.virtio.ActivationContext;
import dev.jkrun.devices.virtio.DeviceThreads;
import dev.jkrun.devices.virtio.QueueWorker;
import dev.jkrun.devices.virtio.VirtioDevice;
import dev.jkrun.devices.virtio.queue.DescriptorChain;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.devices.virtio.queue.Writer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.ScatteringByteChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * virtio-rng (device id 4, virtio 1.2 section 5.4), which libkrun attaches to every VM: one request queue whose
 * chains are device-writable buffers; each is filled with host entropy and returned with the number of bytes
 * written. No config space and no feature bits of its own (VERSION_1, and the ring features INDIRECT_DESC and
 * EVENT_IDX that the queue layer supports).
 *
 * <p>What a guest can ask for is bounded: at most {@link #MAX_BYTES_PER_REQUEST} bytes per chain (§5.4.6.2 lets the
 * device use less than the whole buffer, and the driver reads the used length), and at most
 * {@link #MAX_BYTES_PER_TURN} bytes per turn of the device's event loop, after which the rest is served on the
 * next turn. A chain with device-readable descriptors (§5.4.6.1: the driver places only buffers for the device to
 * write in the requestq) goes back with length 0 and nothing written; malformed chains are returned with 0 by the
 * {@link QueueWorker} like every other device's. Nothing a guest sends escapes the device.
 *
 * <p>Entropy comes from reading {@code /dev/urandom} (the kernel's CRNG, never blocking once it is seeded, which a
 * host running a JVM long since is) through a {@link FileChannel}, scattered straight into the guest's buffers: no
 * copy, no lock shared with the rest of the JVM, one {@code readv} per chain. {@code SecureRandom}
 * ("NativePRNGNonBlocking") reads the same file but through one buffer behind a JVM-wide lock, and XORs a SHA1PRNG
 * stream into every byte, which costs CPU for nothing here; libkrun uses the kernel's CRNG
 * ({@code getrandom}) directly too. The channel is opened at activation and closed at reset, so a channel closed by
 * an interrupt during a stop is never reused.
 */
public final class VirtioRng implements VirtioDevice {
    public static final int DEVICE_TYPE = 4;
    public static final int QUEUE_SIZE = 256;
    /** Most bytes one chain gets. */
    public static final int MAX_BYTES_PER_REQUEST = 64 << 10;
    /** Bytes served per event-loop turn before the rest waits for the next one. */
    public static final long MAX_BYTES_PER_TURN = 1 << 20;
    static final Path URANDOM = Path.of("/dev/urandom");

    /** Where the bytes come from; opened at each activation, closed at reset. */
    @FunctionalInterface
    public interface EntropySource {
        ScatteringByteChannel open() throws IOException;
    }

    private static final Logger LOG = LoggerFactory.getLogger(VirtioRng.class);
    private static final String NAME = "virtio-rng";

    private final EntropySource source;
    private final DeviceThreads threads = new DeviceThreads(NAME);
    private final RateLimitedLog failures = new RateLimitedLog(LOG, NAME);
    /** Between activate and reset: the loop thread and the open source it reads. */
    private EventLoop loop;
    private ScatteringByteChannel entropy;

    /** Host entropy from {@code /dev/urandom}. */
    public VirtioRng() {
        this(() -> FileChannel.open(URANDOM, StandardOpenOption.READ));
    }

    /** Entropy from {@code source} (tests give a deterministic or failing one). */
    public VirtioRng(EntropySource source) {
        this.source = Objects.requireNonNull(source, "source");
    }

    @Override
    public int deviceType() { return DEVICE_TYPE; }

    @Override
    public int[] queueMaxSizes() { return new int[] {QUEUE_SIZE}; }

    @Override
    public long availableFeatures() {
        return 1L << Queue.VIRTIO_RING_F_INDIRECT_DESC | 1L << Queue.VIRTIO_RING_F_EVENT_IDX;
    }

    @Override
    public void readConfig(long offset, byte[] data) {
        Arrays.fill(data, (byte) 0); // no config space (§5.4.4)
    }

    @Override
    public void writeConfig(long offset, byte[] data) {
        failures.warn("{}: the driver wrote {} bytes at config offset {}; there is no config space", NAME, data.length, offset);
    }

    @Override
    public synchronized void activate(ActivationContext ctx) {
        if (loop != null) {
            throw new IllegalStateException(NAME + " already active");
        }
        ScatteringByteChannel ch;
        try {
            ch = source.open();
        } catch (IOException e) {
            throw new IllegalStateException(NAME + ": cannot open the entropy source: " + e, e);
        }
        try {
            entropy = ch;
            loop = QueueWorker.serve(threads, NAME, ctx, q -> chain -> handle(chain), failures, MAX_BYTES_PER_TURN);
        } catch (RuntimeException | Error e) {
            entropy = null;
            closeQuietly(ch);
            throw e;
        }
    }

    @Override
    public DeviceThreads threads() { return threads; }

    @Override
    public synchronized boolean isActivated() { return loop != null; }

    @Override
    public synchronized void reset() {
        if (loop != null) {
            loop.close();
            loop = null;
            closeQuietly(entropy);
            entropy = null;
            failures.flush();
        }
    }

    @Override
    public synchronized void close() {
        reset();
        failures.flush();
    }

    /**
     * Fills the chain's writable buffers with up to {@link #MAX_BYTES_PER_REQUEST} bytes; returns how many. On the
     * loop thread (the one reader of {@link #entropy} between activate and reset).
     */
    int handle(DescriptorChain chain) {
        if (chain.firstWritable() > 0) {
            LOG.debug("{}: chain {} has {} device-readable descriptors; returned unused", NAME, chain.headIndex(),
                    chain.firstWritable());
            return 0;
        }
        Writer w = chain.writer();
        long want = Math.min(w.available(), MAX_BYTES_PER_REQUEST);
        ScatteringByteChannel ch = entropy;
        if (want == 0 || ch == null) {
            return 0;
        }
        try {
            while (w.bytesWritten() < want && !DeviceThreads.stopRequested()) {
                ByteBuffer[] views = w.views(want - w.bytesWritten());
                long n = ch.read(views);
                if (n <= 0) {
                    failures.warn("{}: the entropy source gave {} after {} of {} bytes", NAME, n, w.bytesWritten(), want);
                    break;
                }
                w.advance(n);
            }
        } catch (IOException e) {
            failures.warn("{}: reading entropy failed after {} of {} bytes: {}", NAME, w.bytesWritten(), want, e.toString());
        }
        return w.usedLength();
    }

    private static void closeQuietly(ScatteringByteChannel ch) {
        if (ch == null) {
            return;
        }
        try {
            ch.close();
        } catch (IOException e) {
            LOG.debug("{}: closing the entropy source: {}", NAME, e.toString());
        }
    }
}
