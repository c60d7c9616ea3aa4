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
 * virtio-fs (device id 26): a FUSE server reached through two queues, hiprio (0: FORGET, BATCH_FORGET and
 * INTERRUPT only) and one request queue (1). Config space is the 36-byte tag and the number of request queues. Both
 * queues are served by the device's one {@link EventLoop} thread, each with its own request and reply buffers, so
 * FUSE requests never run concurrently here (backends still allow it: {@link
 * dev.jkrun.devices.fs.passthrough.PassthroughFs} keeps a descriptor open while a request uses it).
 */
public final class VirtioFs implements VirtioDevice {
    private static final Logger LOG = LoggerFactory.getLogger(VirtioFs.class);
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
    private final DeviceThreads threads;
    private final RateLimitedLog failures;
    /** The device's one thread, between activate and reset. */
    private EventLoop loop;

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
        this.failures = new RateLimitedLog(LOG, "virtio-fs[" + tag + "]");
        System.arraycopy(t, 0, config, 0, t.length);
        ByteBuffer.wrap(config).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(TAG_BYTES, 1);
    }

    public String tag() { return tag; }

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
    public synchronized void activate(ActivationContext ctx) {
        if (loop != null) {
            throw new IllegalStateException("virtio-fs[" + tag + "] already active");
        }
        // FUSE requests on host files run on the loop thread, as they ran on each queue's thread before; hiprio
        // (FORGET) now waits behind a request in progress instead of running beside it, which only makes it safer.
        loop = QueueWorker.serve(threads, "virtio-fs[" + tag + "]", ctx, q -> new QueueHandler(server, q == HIPRIO_QUEUE)::handle, failures);
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
