package dev.jkrun.devices.virtio.net;

import dev.jkrun.devices.RateLimitedLog;
import dev.jkrun.devices.runtime.EventLoop;
import dev.jkrun.devices.virtio.ActivationContext;
import dev.jkrun.devices.virtio.DeviceThreads;
import dev.jkrun.devices.virtio.VirtioDevice;
import dev.jkrun.devices.virtio.queue.DescriptorChain;
import dev.jkrun.devices.virtio.queue.InvalidChainException;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.libc.EventFd;
import dev.jkrun.memory.GuestMemory;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * virtio-net (device id 1, virtio 1.2 §5.1) as libkrun builds it: one receive and one transmit queue, the MAC in
 * config space, the offloads the caller asks for among {@link #OFFLOADS}, EVENT_IDX; no control queue, no mergeable
 * receive buffers. Frames go to and come from a {@link NetBackend} on the host.
 *
 * <p>Everything runs on one event-loop thread watching the two queues' notifications and the backend's descriptor.
 * Backpressure is by not taking: a frame the backend has no room for is held (one, copied out of the guest) and the
 * transmit queue is not read until the backend is writable, so the guest's ring fills and its stack waits; a frame
 * from the host for which the guest has posted no buffer is held (one) and the backend is not read until the guest
 * posts buffers, so the host socket fills and its peer waits. Neither side can make the device buffer more.
 *
 * <p>Bad input never leaves the device: a transmit chain shorter than the header plus an Ethernet header, or longer
 * than the header plus {@link NetBackend#MAX_FRAME}, is given back unsent; a host frame longer than the guest's
 * buffer is dropped; both are counted ({@link #stats()}). A backend that fails or hangs up is logged once and
 * stops the NIC's traffic (transmitted frames are then taken and dropped so the guest never stalls), not the VM.
 */
public final class VirtioNet implements VirtioDevice {
    public static final int DEVICE_TYPE = 1;
    /** libkrun's queue size. */
    public static final int QUEUE_SIZE = 1024;
    public static final int RX = 0, TX = 1;
    /** Feature bits (§5.1.3). */
    public static final int F_CSUM = 0, F_GUEST_CSUM = 1, F_MAC = 5, F_GUEST_TSO4 = 7, F_GUEST_TSO6 = 8,
            F_GUEST_UFO = 10, F_HOST_TSO4 = 11, F_HOST_TSO6 = 12, F_HOST_UFO = 14;
    /** The offloads a caller may ask for (libkrun's mask); MAC, EVENT_IDX and INDIRECT_DESC are always offered. */
    public static final long OFFLOADS = bit(F_CSUM) | bit(F_GUEST_CSUM) | bit(F_GUEST_TSO4) | bit(F_GUEST_TSO6)
            | bit(F_GUEST_UFO) | bit(F_HOST_TSO4) | bit(F_HOST_TSO6) | bit(F_HOST_UFO);
    /** libkrun's COMPAT_NET_FEATURES, what its legacy calls (krun_set_passt_fd, krun_set_gvproxy_path) offer. */
    public static final long COMPAT_FEATURES = bit(F_CSUM) | bit(F_GUEST_CSUM) | bit(F_GUEST_TSO4) | bit(F_GUEST_UFO)
            | bit(F_HOST_TSO4) | bit(F_HOST_UFO);
    /**
     * jkrun's default for the passt it starts: libkrun's set without the device-side segmentation (HOST_TSO4/UFO).
     * A guest's TSO frame is up to 65549 bytes, and passt's socket protocol drops frames over 65535 (Debian 12's
     * passt, ETH_MAX_MTU): iperf3 through it saw thousands of retransmissions. Without them the guest segments to its
     * MTU, which jkrun's init takes from passt's DHCP offer (65520).
     */
    public static final long PASST_FEATURES = COMPAT_FEATURES & ~(bit(F_HOST_TSO4) | bit(F_HOST_UFO));
    /** Config space: {@code u8 mac[6]; le16 status; le16 max_virtqueue_pairs} (§5.1.4), status and pairs 0. */
    public static final int CONFIG_SIZE = 10;
    /** An Ethernet header: the shortest frame worth sending. */
    static final int ETH_HLEN = 14;
    /** Frames one queue moves per loop turn before the other queue and the backend get the thread. */
    static final int FRAMES_PER_TURN = 256;
    /** How long a send the host refused for want of buffers (ENOBUFS) waits before the next try. */
    static final long BUSY_RETRY_MS = 1;

    private static final Logger LOG = LoggerFactory.getLogger(VirtioNet.class);

    /** What the device counted since it was made (across resets). */
    public record Stats(long txFrames, long txDropped, long rxFrames, long rxDropped) {}

    private final String name;
    private final byte[] mac;
    private final long offered;
    private final NetBackend backend;
    private final DeviceThreads threads;
    private final RateLimitedLog guestWarnings;
    private final AtomicLong txFrames = new AtomicLong(), txDropped = new AtomicLong(), rxFrames = new AtomicLong(),
            rxDropped = new AtomicLong();
    private final Object lock = new Object();
    /** Whether the backend failed: its traffic has stopped for the device's life (a reset does not revive it). */
    private volatile boolean backendGone;
    private Session session;
    private boolean closed;

    /**
     * @param name     the NIC's name in logs ("eth0")
     * @param mac      six bytes, a unicast address
     * @param features the offloads asked for; bits outside {@link #OFFLOADS} are an error
     * @param backend  taken: closed with the device
     */
    public VirtioNet(String name, byte[] mac, long features, NetBackend backend) {
        if (mac == null || mac.length != 6) {
            throw new IllegalArgumentException("mac: 6 bytes are needed");
        }
        if ((mac[0] & 1) != 0) {
            throw new IllegalArgumentException("mac: " + macString(mac) + " is a multicast address");
        }
        if ((features & ~OFFLOADS) != 0) {
            throw new IllegalArgumentException("features: 0x" + Long.toHexString(features & ~OFFLOADS)
                    + " are not offloads virtio-net offers (allowed: 0x" + Long.toHexString(OFFLOADS) + ")");
        }
        this.name = name;
        this.mac = mac.clone();
        this.offered = features | bit(F_MAC) | bit(Queue.VIRTIO_RING_F_EVENT_IDX) | bit(Queue.VIRTIO_RING_F_INDIRECT_DESC);
        this.backend = backend;
        this.threads = new DeviceThreads("virtio-net " + name);
        this.guestWarnings = new RateLimitedLog(LOG, "virtio-net " + name);
    }

    static long bit(int b) { return 1L << b; }

    public static String macString(byte[] m) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < m.length; i++) {
            s.append(i == 0 ? "" : ":").append(String.format("%02x", m[i] & 0xFF));
        }
        return s.toString();
    }

    public String name() { return name; }

    public NetBackend backend() { return backend; }

    public Stats stats() { return new Stats(txFrames.get(), txDropped.get(), rxFrames.get(), rxDropped.get()); }

    @Override
    public int deviceType() { return DEVICE_TYPE; }

    @Override
    public int[] queueMaxSizes() { return new int[] {QUEUE_SIZE, QUEUE_SIZE}; }

    @Override
    public long availableFeatures() { return offered; }

    @Override
    public void ackFeatures(long features) {
        try {
            backend.negotiated(features);
        } catch (RuntimeException e) {
            LOG.warn("virtio-net {}: the backend ({}) cannot follow the negotiated features: {}", name, backend.describe(),
                    e.getMessage());
        }
    }

    @Override
    public void readConfig(long offset, byte[] data) {
        byte[] config = Arrays.copyOf(mac, CONFIG_SIZE); // status and max_virtqueue_pairs: 0
        VirtioDevice.readConfigBytes(config, offset, data);
    }

    @Override
    public void writeConfig(long offset, byte[] data) {
        // §5.1.4: the MAC is read-only once VERSION_1 is negotiated (the legacy driver wrote it); nothing else is writable.
        guestWarnings.warn("virtio-net {}: the driver wrote {} bytes at config offset {}; ignored", name, data.length, offset);
    }

    @Override
    public DeviceThreads threads() { return threads; }

    @Override
    public boolean isActivated() {
        synchronized (lock) {
            return session != null;
        }
    }

    @Override
    public void activate(ActivationContext ctx) {
        synchronized (lock) {
            if (closed) {
                throw new IllegalStateException("virtio-net " + name + " is closed");
            }
            if (session != null) {
                throw new IllegalStateException("virtio-net " + name + " already active");
            }
            if (ctx.queues().size() != 2) {
                throw new IllegalArgumentException("virtio-net needs 2 queues");
            }
            Session s = new Session(ctx);
            s.start();
            session = s;
        }
    }

    @Override
    public void reset() {
        synchronized (lock) {
            Session s = session;
            session = null;
            if (s != null) {
                s.stop();
            }
        }
    }

    @Override
    public void close() {
        synchronized (lock) {
            if (closed) {
                return;
            }
            closed = true;
        }
        reset();
        guestWarnings.flush();
        backend.close();
    }

    /** Everything between activate and reset; all of it runs on the loop's thread. */
    private final class Session {
        private final GuestMemory mem;
        private final ActivationContext ctx;
        private final Queue rxq, txq;
        private final EventLoop loop;
        private final byte[] rxBuf = new byte[NetHeader.SIZE + NetBackend.MAX_FRAME];
        private final byte[] txBuf = new byte[NetHeader.SIZE + NetBackend.MAX_FRAME];
        /** Bytes (header included) of the frame waiting for a guest buffer; 0 when none. */
        private int rxLen;
        /** A guest buffer taken for the next frame. */
        private DescriptorChain rxChain;
        /** The frame the backend had no room for, waiting; null when none. */
        private ByteBuffer txHeld;
        private EventLoop.Registration backendReg;
        private boolean wantIn = true, wantOut;
        private EventLoop.Timer busyTimer;

        Session(ActivationContext ctx) {
            this.mem = ctx.memory();
            this.ctx = ctx;
            this.rxq = ctx.queue(RX).queue();
            this.txq = ctx.queue(TX).queue();
            this.loop = new EventLoop("virtio-net-" + name);
        }

        void start() {
            try {
                watch(RX, this::rx);
                watch(TX, this::tx);
                if (!backendGone) {
                    backendReg = loop.register(backend.fd(), EventLoop.IN, this::onBackend);
                }
                loop.execute(this::tx);
                loop.execute(this::rx);
                loop.start(threads);
            } catch (RuntimeException | Error e) {
                loop.close();
                throw e;
            }
        }

        void stop() {
            loop.stop();
            if (backendReg != null) {
                backendReg.close();
            }
            loop.close();
        }

        private void watch(int qi, Runnable drain) {
            EventFd ev = ctx.queue(qi).notification();
            loop.register(ev.fd().raw(), EventLoop.IN, events -> {
                ev.await(); // readable: does not block
                drain.run();
            });
        }

        private void onBackend(int events) {
            if ((events & EventLoop.OUT) != 0 || (events & (EventLoop.ERR | EventLoop.HUP)) != 0 && wantOut) {
                tx();
            }
            if ((events & ~EventLoop.OUT) != 0) {
                rx(); // IN, or ERR/HUP: the read tells which
            }
        }

        private void interest() {
            if (backendReg != null) {
                backendReg.interest((wantIn ? EventLoop.IN : 0) | (wantOut ? EventLoop.OUT : 0));
            }
        }

        private void backendFailed(Exception e) {
            if (backendGone) {
                return;
            }
            backendGone = true;
            LOG.error("virtio-net {}: the backend ({}) failed: {}; the NIC carries no more traffic", name,
                    backend.describe(), e.getMessage() == null ? e.toString() : e.getMessage());
            if (backendReg != null) {
                backendReg.close();
                backendReg = null;
            }
            if (txHeld != null) {
                txHeld = null;
                txDropped.incrementAndGet();
            }
            rxLen = 0;
            loop.execute(this::tx); // what the guest sends from now on is taken and dropped
        }

        private void notifyGuest(Queue q) {
            if (q.needsNotification(mem)) {
                ctx.usedBuffer().trigger();
            }
        }

        /** The next chain, turning notifications back on when there is none (§2.7.10); empty when none. */
        private Optional<DescriptorChain> next(Queue q, String what) {
            while (!DeviceThreads.stopRequested()) {
                Optional<DescriptorChain> c;
                try {
                    c = q.pop(mem);
                } catch (InvalidChainException e) {
                    guestWarnings.warn("virtio-net {} {}: {}", name, what, e.getMessage());
                    if (!e.isChainError()) {
                        return Optional.empty();
                    }
                    q.addUsed(mem, e.headIndex(), 0);
                    notifyGuest(q);
                    continue;
                }
                if (c.isPresent() || q.isBroken() || !q.enableNotification(mem)) {
                    return c;
                }
                q.disableNotification(mem);
            }
            return Optional.empty();
        }

        // ---- guest -> host ----------------------------------------------------------------------------------

        void tx() {
            boolean used = false;
            try {
                for (int turn = 0; !DeviceThreads.stopRequested(); turn++) {
                    if (!backendGone && !flushHeld()) {
                        return;
                    }
                    if (turn >= FRAMES_PER_TURN) {
                        loop.execute(this::tx);
                        return;
                    }
                    Optional<DescriptorChain> c = next(txq, "tx");
                    if (c.isEmpty()) {
                        return;
                    }
                    DescriptorChain chain = c.get();
                    int len = take(chain);
                    txq.addUsed(mem, chain.headIndex(), 0); // the frame is copied out: the buffer goes back now
                    used = true;
                    if (len < 0) {
                        txDropped.incrementAndGet();
                        continue;
                    }
                    if (backendGone) {
                        txDropped.incrementAndGet();
                        continue;
                    }
                    txHeld = frameToSend(len);
                    if (txHeld == null) {
                        txDropped.incrementAndGet();
                    }
                }
            } finally {
                if (used) {
                    notifyGuest(txq);
                }
            }
        }

        /** Copies the chain's frame (header first) into txBuf; its length, or -1 when it is not a frame. */
        private int take(DescriptorChain chain) {
            long total = chain.readableLength();
            if (total < NetHeader.SIZE + ETH_HLEN || total > txBuf.length) {
                guestWarnings.warn("virtio-net {} tx: a chain of {} bytes is not a frame (header {} + {}..{} bytes); dropped",
                        name, total, NetHeader.SIZE, ETH_HLEN, NetBackend.MAX_FRAME);
                return -1;
            }
            try {
                chain.reader().readExact(txBuf, 0, (int) total);
            } catch (InvalidChainException e) {
                guestWarnings.warn("virtio-net {} tx: {}", name, e.getMessage());
                return -1;
            }
            return (int) total;
        }

        /** The frame in txBuf as the backend takes it: bare, its checksum completed where the guest left it to us. */
        private ByteBuffer frameToSend(int len) {
            if (backend.carriesHeader()) {
                return ByteBuffer.wrap(txBuf, 0, len);
            }
            if ((NetHeader.flags(txBuf, 0) & NetHeader.F_NEEDS_CSUM) != 0
                    && !NetHeader.completeChecksum(txBuf, NetHeader.SIZE, len - NetHeader.SIZE,
                            NetHeader.csumStart(txBuf, 0), NetHeader.csumOffset(txBuf, 0))) {
                guestWarnings.warn("virtio-net {} tx: checksum offsets {}+{} lie outside the {}-byte frame; dropped", name,
                        NetHeader.csumStart(txBuf, 0), NetHeader.csumOffset(txBuf, 0), len - NetHeader.SIZE);
                return null;
            }
            return ByteBuffer.wrap(txBuf, NetHeader.SIZE, len - NetHeader.SIZE);
        }

        /** Sends what is held (and the backend's own pending bytes); whether the way is clear for the next frame. */
        private boolean flushHeld() {
            try {
                if (backend.hasPendingWrite() && !backend.flushPending()) {
                    waitOut();
                    return false;
                }
                if (txHeld == null) {
                    clearOut();
                    return true;
                }
                switch (backend.write(txHeld)) {
                    case SENT -> {
                        txHeld = null;
                        txFrames.incrementAndGet();
                        return flushHeld();
                    }
                    case REJECTED -> {
                        txHeld = null;
                        txDropped.incrementAndGet();
                        return true;
                    }
                    case FULL -> {
                        waitOut();
                        return false;
                    }
                    case BUSY -> {
                        if (busyTimer == null) {
                            busyTimer = loop.schedule(BUSY_RETRY_MS, () -> {
                                busyTimer = null;
                                tx();
                            });
                        }
                        return false;
                    }
                    default -> throw new IllegalStateException();
                }
            } catch (Exception e) {
                backendFailed(e);
                return true;
            }
        }

        private void waitOut() {
            if (!wantOut) {
                wantOut = true;
                interest();
            }
        }

        private void clearOut() {
            if (wantOut) {
                wantOut = false;
                interest();
            }
        }

        // ---- host -> guest ----------------------------------------------------------------------------------

        void rx() {
            boolean used = false;
            try {
                for (int turn = 0; !DeviceThreads.stopRequested(); turn++) {
                    if (rxLen == 0) {
                        if (backendGone) {
                            return;
                        }
                        if (turn >= FRAMES_PER_TURN) {
                            loop.execute(this::rx);
                            return;
                        }
                        if (!readFrame()) {
                            return;
                        }
                        continue;
                    }
                    if (rxChain == null) {
                        Optional<DescriptorChain> c = next(rxq, "rx");
                        if (c.isEmpty()) {
                            if (wantIn) { // hold the frame; read no more until the guest posts buffers
                                wantIn = false;
                                interest();
                            }
                            return;
                        }
                        rxChain = c.get();
                        if (rxChain.firstWritable() > 0) {
                            guestWarnings.warn("virtio-net {} rx: chain {} has device-readable buffers; returned unused",
                                    name, rxChain.headIndex());
                            rxq.addUsed(mem, rxChain.headIndex(), 0);
                            used = true;
                            rxChain = null;
                            continue;
                        }
                    }
                    if (!wantIn) {
                        wantIn = true;
                        interest();
                    }
                    if (rxChain.writableLength() < rxLen) {
                        // Without MRG_RXBUF one chain holds one frame (§5.1.6.3.1): this one cannot be delivered.
                        rxDropped.incrementAndGet();
                        rxLen = 0;
                        continue;
                    }
                    try {
                        rxChain.writer().writeExact(rxBuf, 0, rxLen);
                    } catch (InvalidChainException e) {
                        guestWarnings.warn("virtio-net {} rx: {}", name, e.getMessage());
                        rxq.addUsed(mem, rxChain.headIndex(), 0);
                        used = true;
                        rxChain = null;
                        rxDropped.incrementAndGet();
                        rxLen = 0;
                        continue;
                    }
                    rxq.addUsed(mem, rxChain.headIndex(), rxLen);
                    used = true;
                    rxFrames.incrementAndGet();
                    rxChain = null;
                    rxLen = 0;
                }
            } finally {
                if (used) {
                    notifyGuest(rxq);
                }
            }
        }

        /** Reads the next frame from the backend into rxBuf; whether there was one (a dropped one counts as one). */
        private boolean readFrame() {
            int off = backend.carriesHeader() ? 0 : NetHeader.SIZE;
            ByteBuffer dst = ByteBuffer.wrap(rxBuf, off, rxBuf.length - off);
            int n;
            try {
                n = backend.read(dst);
            } catch (Exception e) {
                backendFailed(e);
                return false;
            }
            if (n == NetBackend.NONE) {
                return false;
            }
            if (n == NetBackend.DROPPED || n + off < (backend.carriesHeader() ? NetHeader.SIZE : 0) + ETH_HLEN) {
                rxDropped.incrementAndGet();
                return true;
            }
            if (off > 0) {
                NetHeader.writePlain(rxBuf, 0);
            }
            rxLen = off + n;
            return true;
        }
    }
}
