package dev.jkrun.devices.virtio.fs;

import dev.jkrun.devices.Trigger;
import dev.jkrun.devices.fs.fuse.FuseServer;
import dev.jkrun.devices.virtio.DeviceThreads;
import dev.jkrun.devices.virtio.QueueWorker;
import dev.jkrun.devices.virtio.VirtioDevice;
import dev.jkrun.devices.virtio.queue.DescriptorChain;
import dev.jkrun.devices.virtio.queue.InvalidChainException;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.devices.virtio.queue.Reader;
import dev.jkrun.devices.virtio.queue.Writer;
import dev.jkrun.libc.EventFd;
import dev.jkrun.memory.GuestMemory;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * virtio-fs (device id 26): a FUSE server reached through two queues, hiprio (0: FORGET, BATCH_FORGET and
 * INTERRUPT only) and one request queue (1). Config space is the 36-byte tag and the number of request queues. Each
 * queue has its own worker thread with its own request and reply buffers, so FUSE requests never share mutable
 * state here; a FORGET on hiprio can still run beside a request that uses the same inode, which the backend must
 * allow for ({@link dev.jkrun.devices.fs.passthrough.PassthroughFs} keeps a descriptor open while a request uses it).
 */
public final class VirtioFs implements VirtioDevice {
    public static final int DEVICE_TYPE = 26;
    public static final int QUEUE_SIZE = 1024;
    public static final int TAG_BYTES = 36;
    /** The hiprio queue's index; request queues follow it. */
    public static final int HIPRIO_QUEUE = 0;
    private static final long F_INDIRECT_DESC = 1L << 28, F_EVENT_IDX = 1L << 29;
    /** The largest request the server accepts (1 MiB of WRITE data plus headers); larger chains get an errno. */
    private static final int BUFFER_BYTES = (1 << 20) + 8192;

    private final String tag;
    private final byte[] config = new byte[TAG_BYTES + 4];
    private final FuseServer server;
    private final AutoCloseable backend;
    private final List<QueueWorker> workers = new ArrayList<>();
    private final DeviceThreads threads;

    /**
     * @param tag the mount tag the guest uses (at most 36 bytes of UTF-8)
     * @param backend closed with the device (the filesystem's host fds); may be null
     */
    public VirtioFs(String tag, FuseServer server, AutoCloseable backend) {
        byte[] t = tag.getBytes(StandardCharsets.UTF_8);
        if (t.length == 0 || t.length > TAG_BYTES) {
            throw new IllegalArgumentException("virtio-fs tag must be 1 to 36 bytes: '" + tag + "'");
        }
        this.tag = tag;
        this.server = server;
        this.backend = backend;
        this.threads = new DeviceThreads("virtio-fs[" + tag + "]");
        System.arraycopy(t, 0, config, 0, t.length);
        ByteBuffer.wrap(config).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(TAG_BYTES, 1);
    }

    public String tag() { return tag; }

    @Override
    public int deviceType() { return DEVICE_TYPE; }

    @Override
    public int[] queueMaxSizes() { return new int[] {QUEUE_SIZE, QUEUE_SIZE}; }

    @Override
    public long availableFeatures() { return F_INDIRECT_DESC | F_EVENT_IDX; }

    @Override
    public void readConfig(long offset, byte[] data) {
        VirtioDevice.readConfigBytes(config, offset, data);
    }

    @Override
    public void writeConfig(long offset, byte[] data) {
        // The spec makes the whole config space read-only for the driver.
    }

    @Override
    public synchronized void activate(GuestMemory mem, List<Queue> queues, List<EventFd> events, Trigger interrupt) {
        for (int q = 0; q < queues.size(); q++) {
            Handler h = new Handler(q == HIPRIO_QUEUE);
            workers.add(new QueueWorker(threads, "virtio-fs[" + tag + "]-q" + q, mem, queues.get(q), events.get(q), interrupt,
                    h::handle).start());
        }
    }

    @Override
    public DeviceThreads threads() { return threads; }

    @Override
    public synchronized boolean isActivated() { return !workers.isEmpty(); }

    @Override
    public synchronized void reset() {
        workers.forEach(QueueWorker::stop);
        workers.clear();
    }

    @Override
    public synchronized void close() {
        reset();
        if (backend != null) {
            try {
                backend.close();
            } catch (Exception ignored) {
                // host fds are released by the OS at exit at the latest; nothing the guest can observe
            }
        }
    }

    /** One queue's buffers: the request gathered from the readable descriptors, the reply for the writable ones. */
    private final class Handler {
        private final ByteBuffer request = ByteBuffer.allocateDirect(BUFFER_BYTES);
        private final ByteBuffer reply = ByteBuffer.allocateDirect(BUFFER_BYTES);
        private final byte[] copy = new byte[64 * 1024];
        private final boolean highPriority;

        Handler(boolean highPriority) { this.highPriority = highPriority; }

        int handle(DescriptorChain chain) throws InvalidChainException {
            Reader in = chain.reader();
            request.clear();
            // An oversized request is cut at the buffer: its header's len then disagrees and the server answers EINVAL.
            while (request.hasRemaining()) {
                int n = in.read(copy, 0, Math.min(copy.length, request.remaining()));
                if (n <= 0) {
                    break;
                }
                request.put(copy, 0, n);
            }
            request.flip();
            Writer out = chain.writer();
            reply.clear();
            reply.limit((int) Math.min(out.available(), BUFFER_BYTES));
            int len = highPriority ? server.handleHighPriority(request, reply) : server.handle(request, reply);
            if (len <= 0) {
                return 0;
            }
            reply.position(0).limit(len);
            while (reply.hasRemaining()) {
                int n = Math.min(copy.length, reply.remaining());
                reply.get(copy, 0, n);
                out.writeExact(copy, 0, n);
            }
            return len;
        }
    }
}
