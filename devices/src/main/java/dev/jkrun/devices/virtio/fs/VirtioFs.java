package dev.jkrun.devices.virtio.fs;

import dev.jkrun.devices.RateLimitedLog;
import dev.jkrun.devices.fs.dax.DaxWindow;
import dev.jkrun.devices.fs.fuse.Fuse;
import dev.jkrun.devices.fs.fuse.FuseServer;
import dev.jkrun.devices.runtime.EventLoop;
import dev.jkrun.devices.virtio.ActivationContext;
import dev.jkrun.devices.virtio.DeviceThreads;
import dev.jkrun.devices.virtio.QueueWorker;
import dev.jkrun.devices.virtio.VirtioDevice;
import dev.jkrun.devices.virtio.queue.DescriptorChain;
import dev.jkrun.devices.virtio.queue.InvalidChainException;
import dev.jkrun.devices.virtio.queue.Reader;
import dev.jkrun.devices.virtio.queue.Writer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * virtio-fs (device id 26, virtio 1.2 §5.11): a FUSE server reached through hiprio (queue 0: FORGET, BATCH_FORGET
 * and INTERRUPT only) and one or more request queues (1..n). Config space is the 36-byte tag and the number of
 * request queues. Hiprio and the first request queue are served by one {@link EventLoop} thread, each further
 * request queue by a thread of its own, each queue with its own request and reply buffers: with n request queues a
 * guest has up to n FUSE requests in flight at once (Linux 6.11+ spreads its CPUs over them). The server and the
 * backends take concurrent requests ({@link dev.jkrun.devices.fs.passthrough.PassthroughFs} keeps a descriptor open
 * while a request uses it and changes its tables under one lock). One request queue is the default, as in libkrun.
 */
public final class VirtioFs implements VirtioDevice {
    private static final Logger LOG = LoggerFactory.getLogger(VirtioFs.class);
    public static final int DEVICE_TYPE = 26;
    public static final int QUEUE_SIZE = 1024;
    public static final int TAG_BYTES = 36;
    /** The hiprio queue's index; request queues follow it. */
    public static final int HIPRIO_QUEUE = 0;
    private static final long F_INDIRECT_DESC = 1L << 28, F_EVENT_IDX = 1L << 29;
    /** The most request queues a device offers (each one a thread and 2 MiB of request and reply buffers). */
    public static final int MAX_REQUEST_QUEUES = 16;
    /** The largest request the server accepts (1 MiB of WRITE data plus headers); larger chains get an errno. */
    private static final int BUFFER_BYTES = (1 << 20) + 8192;

    private final String tag;
    private final byte[] config = new byte[TAG_BYTES + 4];
    private final FuseServer server;
    private final AutoCloseable backend;
    private final DeviceThreads threads;
    private final RateLimitedLog failures;
    private final int requestQueues;
    /** The device's threads between activate and reset: hiprio with request queue 1, then one per further queue. */
    private final java.util.List<EventLoop> loops = new java.util.ArrayList<>();

    /**
     * @param tag the mount tag the guest uses (at most 36 bytes of UTF-8)
     * @param backend closed with the device (the filesystem's host fds); may be null
     */
    public VirtioFs(String tag, FuseServer server, AutoCloseable backend) { this(tag, server, backend, 1); }

    /** @param requestQueues how many request queues the device offers, 1 to {@link #MAX_REQUEST_QUEUES} */
    public VirtioFs(String tag, FuseServer server, AutoCloseable backend, int requestQueues) {
        if (requestQueues < 1 || requestQueues > MAX_REQUEST_QUEUES) {
            throw new IllegalArgumentException("virtio-fs request queues must be 1 to " + MAX_REQUEST_QUEUES + ": " + requestQueues);
        }
        this.requestQueues = requestQueues;
        byte[] t = tag.getBytes(StandardCharsets.UTF_8);
        if (t.length == 0 || t.length > TAG_BYTES) {
            throw new IllegalArgumentException("virtio-fs tag must be 1 to 36 bytes: '" + tag + "'");
        }
        this.tag = tag;
        this.server = server;
        this.backend = backend;
        this.threads = new DeviceThreads("virtio-fs[" + tag + "]");
        this.failures = new RateLimitedLog(LOG, "virtio-fs[" + tag + "]");
        System.arraycopy(t, 0, config, 0, t.length);
        ByteBuffer.wrap(config).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(TAG_BYTES, requestQueues);
    }

    public String tag() { return tag; }

    /** How many request queues the device offers (config space's num_request_queues). */
    public int requestQueues() { return requestQueues; }

    /** The FUSE server behind the queues (its file system is the share's backend). */
    public FuseServer server() { return server; }

    @Override
    public java.util.List<SharedMemoryRegion> sharedMemoryRegions() {
        return server.daxWindow().map(w -> java.util.List.of(new SharedMemoryRegion(
                DaxWindow.CACHE_SHM_ID, w.guestAddress(), w.size()))).orElse(java.util.List.of());
    }

    @Override
    public int deviceType() { return DEVICE_TYPE; }

    @Override
    public int[] queueMaxSizes() {
        int[] sizes = new int[1 + requestQueues];
        java.util.Arrays.fill(sizes, QUEUE_SIZE);
        return sizes;
    }

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
    public synchronized void activate(ActivationContext ctx) {
        if (!loops.isEmpty()) {
            throw new IllegalStateException("virtio-fs[" + tag + "] already active");
        }
        // Hiprio (FORGET) shares the first request queue's thread: it waits behind a request in progress there. Each
        // further request queue has a thread of its own; a queue the driver did not set up stays idle.
        java.util.function.IntFunction<QueueWorker.Handler> handlers = q -> {
            QueueHandler h = new QueueHandler(server, q == HIPRIO_QUEUE);
            if (q == HIPRIO_QUEUE || !LOG.isDebugEnabled()) {
                return h::handle;
            }
            // which request queues a guest uses (Linux maps its CPUs onto them): said once per queue and activation
            boolean[] said = {false};
            return chain -> {
                if (!said[0]) {
                    said[0] = true;
                    LOG.debug("virtio-fs[{}] request queue {} of {} serves its first request", tag, q, requestQueues);
                }
                return h.handle(chain);
            };
        };
        String name = "virtio-fs[" + tag + "]";
        try {
            loops.add(QueueWorker.serve(threads, name, ctx, new int[] {HIPRIO_QUEUE, HIPRIO_QUEUE + 1}, handlers, failures,
                    Long.MAX_VALUE));
            for (int q = HIPRIO_QUEUE + 2; q <= requestQueues; q++) {
                loops.add(QueueWorker.serve(threads, name + "-r" + (q - 1), ctx, new int[] {q}, handlers, failures, Long.MAX_VALUE));
            }
        } catch (RuntimeException | Error e) {
            stopLoops();
            throw e;
        }
    }

    private void stopLoops() {
        for (EventLoop l : loops) {
            l.requestStop(); // all at once: each thread finishes its request meanwhile
        }
        for (EventLoop l : loops) {
            l.close();
        }
        loops.clear();
    }

    @Override
    public DeviceThreads threads() { return threads; }

    @Override
    public synchronized boolean isActivated() { return !loops.isEmpty(); }

    @Override
    public synchronized void reset() {
        if (!loops.isEmpty()) {
            stopLoops();
            failures.flush();
        }
        server.daxWindow().ifPresent(DaxWindow::unmapAll); // a new driver starts with an empty window
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

    /**
     * One queue's request path: the request gathered from the readable descriptors into a host buffer, the reply
     * scattered into the writable ones. A READ's or WRITE's data does not pass through those buffers: it moves
     * between the host file and the guest's pages in one preadv/pwritev ({@link FuseServer#handleDirect}). Public
     * for the benchmarks that time it without a VM.
     */
    public static final class QueueHandler {
        /** fuse_in_header plus read_in or write_in (both 40 bytes): what a READ or WRITE puts before its data. */
        private static final int RW_HEADERS = Fuse.IN_HEADER + Fuse.READ_IN;
        private final FuseServer server;
        private final ByteBuffer request = ByteBuffer.allocateDirect(BUFFER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        private final ByteBuffer reply = ByteBuffer.allocateDirect(BUFFER_BYTES);
        private final boolean highPriority;

        public QueueHandler(FuseServer server, boolean highPriority) {
            this.server = server;
            this.highPriority = highPriority;
        }

        /** Serves one chain; returns the used length. */
        public int handle(DescriptorChain chain) throws InvalidChainException {
            Reader in = chain.reader();
            request.clear();
            if (!highPriority && in.available() >= RW_HEADERS) {
                gather(in, RW_HEADERS);
                int len = request.getInt(0), opcode = request.getInt(4);
                boolean noExtensions = request.getShort(Fuse.IN_HEADER_TOTAL_EXTLEN) == 0;
                long rest = in.available();
                if (opcode == Fuse.WRITE && noExtensions && Integer.toUnsignedLong(len) == RW_HEADERS + rest
                        && rest <= Fuse.MAX_BUFFER) {
                    return directWrite(chain, in.views(rest), rest);
                }
                if (opcode == Fuse.READ && noExtensions && rest == 0
                        && chain.writableLength() > Fuse.OUT_HEADER) {
                    return directRead(chain);
                }
            }
            // An oversized request is cut at the buffer: its header's len then disagrees and the server answers EINVAL.
            gather(in, request.remaining());
            request.flip();
            Writer out = chain.writer();
            reply.clear();
            reply.limit((int) Math.min(out.available(), BUFFER_BYTES));
            int len = highPriority ? server.handleHighPriority(request, reply) : server.handle(request, reply);
            return len <= 0 ? 0 : scatter(out, len);
        }

        /** Copies up to {@code max} more request bytes from guest memory into {@link #request}, view by view. */
        private void gather(Reader in, int max) {
            int want = (int) Math.min(max, Math.min(in.available(), request.remaining()));
            for (ByteBuffer v : in.views(want)) {
                request.put(v);
            }
            in.skip(want);
        }

        /** Copies the reply's first {@code len} bytes into the chain's writable buffers. */
        private int scatter(Writer out, int len) {
            if (len > out.available()) { // the reply's limit was the room: a server bug, not the guest's
                throw new IllegalStateException("reply of " + len + " bytes, room " + out.available());
            }
            reply.position(0).limit(len);
            for (ByteBuffer v : out.views(len)) {
                int k = v.remaining();
                v.put(reply.slice().limit(k));
                reply.position(reply.position() + k);
            }
            out.advance(len);
            return len;
        }

        /** A READ: the file's bytes go straight into the pages after the reply header. */
        private int directRead(DescriptorChain chain) {
            request.flip();
            Writer out = chain.writer();
            out.advance(Fuse.OUT_HEADER);
            // Views of no more than the READ asks for: a guest's 65,536 one-byte buffers cost nothing for a small READ.
            long size = Integer.toUnsignedLong(request.getInt(Fuse.IN_HEADER + 16)); // read_in.size
            ByteBuffer[] pages = out.views(Math.min(out.available(), Math.min(size, Fuse.MAX_BUFFER)));
            reply.clear().limit(Fuse.OUT_HEADER);
            int len = server.handleDirect(request, reply, pages, 0);
            if (len <= 0) {
                return 0;
            }
            scatter(chain.writer(), Math.min(len, Fuse.OUT_HEADER)); // the header; the data is in place
            return len;
        }

        /** A WRITE: the data goes from the guest's pages straight to the file. */
        private int directWrite(DescriptorChain chain, ByteBuffer[] data, long dataLength) {
            request.flip();
            Writer out = chain.writer();
            reply.clear();
            reply.limit((int) Math.min(out.available(), Fuse.OUT_HEADER + Fuse.WRITE_OUT));
            int len = server.handleDirect(request, reply, data, dataLength);
            return len <= 0 ? 0 : scatter(out, len);
        }
    }
}
