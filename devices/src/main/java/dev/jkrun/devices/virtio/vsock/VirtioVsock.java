package dev.jkrun.devices.virtio.vsock;

import dev.jkrun.devices.RateLimitedLog;
import dev.jkrun.devices.Trigger;
import dev.jkrun.devices.runtime.EventLoop;
import dev.jkrun.devices.virtio.ActivationContext;
import dev.jkrun.devices.virtio.ActiveQueue;
import dev.jkrun.devices.virtio.DeviceThreads;
import dev.jkrun.devices.virtio.VirtioDevice;
import dev.jkrun.devices.virtio.queue.DescriptorChain;
import dev.jkrun.devices.virtio.queue.InvalidChainException;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.devices.virtio.vsock.host.BoundListeners;
import dev.jkrun.devices.virtio.vsock.host.HostSockets;
import dev.jkrun.devices.virtio.vsock.host.UnixHostSockets;
import dev.jkrun.memory.GuestMemory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * virtio-vsock (device id 19, virtio 1.2 section 5.10): guest CID 3, host CID 2, stream sockets bridged to host
 * unix sockets ({@link VsockConfig}). Queues rx (0), tx (1) and event (2), 256 entries each; config space
 * {@code guest_cid u64}. Offers VERSION_1, and VIRTIO_VSOCK_F_DGRAM when TSI is on ({@link VsockConfig#tsi()}).
 *
 * <p>One {@link EventLoop} thread per activation runs everything: the queues' notifications, every host socket and
 * timer of the {@link VsockMuxer}. After each event the rx queue gets what the guest is owed; the tx queue is left
 * alone while the muxer's RST backlog is full (5.10.6.6: the device must not let rx back-pressure make it drop
 * packets; it stops taking tx ones instead) and resumes as rx drains. The event queue's buffers are kept
 * unused (no TRANSPORT_RESET: there is no migration).
 */
public final class VirtioVsock implements VirtioDevice {
    private static final Logger LOG = LoggerFactory.getLogger(VirtioVsock.class);
    public static final int DEVICE_TYPE = 19;
    public static final int QUEUE_SIZE = 256;
    public static final int RX = 0, TX = 1, EVENT = 2;
    /** VIRTIO_VSOCK_F_DGRAM (libkrunfw's patch): offered only with TSI, whose control protocol needs it. */
    public static final int F_DGRAM = 3;

    private final VsockConfig config;
    private final HostSockets sockets;
    /** Bound at construction, for the device's life (see BoundListeners). */
    private final BoundListeners listeners;
    private final DeviceThreads threads = new DeviceThreads("virtio-vsock");
    private final RateLimitedLog failures = new RateLimitedLog(LOG, "virtio-vsock");
    private Session session;

    /** A device bridging to host unix sockets; listening paths must not exist yet. */
    public VirtioVsock(VsockConfig config) { this(config, UnixHostSockets.INSTANCE); }

    /** A device over any {@link HostSockets} (tests). */
    public VirtioVsock(VsockConfig config, HostSockets sockets) {
        config.checkListenPaths();
        this.config = config;
        this.listeners = new BoundListeners(config, sockets, VsockMuxer.LISTEN_BACKLOG);
        this.sockets = listeners.sockets();
    }

    public VsockConfig config() { return config; }

    @Override
    public int deviceType() { return DEVICE_TYPE; }

    @Override
    public int[] queueMaxSizes() { return new int[] {QUEUE_SIZE, QUEUE_SIZE, QUEUE_SIZE}; }

    @Override
    public long availableFeatures() { return config.tsi().enabled() ? 1L << F_DGRAM : 0; }

    @Override
    public void readConfig(long offset, byte[] data) {
        byte[] cfg = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(VsockHeader.GUEST_CID).array();
        VirtioDevice.readConfigBytes(cfg, offset, data);
    }

    @Override
    public void writeConfig(long offset, byte[] data) {
        LOG.debug("virtio-vsock: config write at {} ignored (guest_cid is read-only)", offset);
    }

    @Override
    public DeviceThreads threads() { return threads; }

    @Override
    public synchronized void activate(ActivationContext ctx) {
        if (session != null) {
            throw new IllegalStateException("virtio-vsock: already active");
        }
        EventLoop loop = new EventLoop("virtio-vsock");
        Session s = new Session(ctx, loop);
        try {
            s.muxer.start();
            for (int q = 0; q < ctx.queues().size(); q++) {
                ActiveQueue aq = ctx.queue(q);
                int index = q;
                loop.register(aq.notification().fd().raw(), EventLoop.IN, events -> {
                    aq.notification().await(); // readable: does not block
                    s.notified(index);
                });
            }
            loop.execute(() -> s.notified(TX));
            loop.start(threads);
        } catch (RuntimeException | Error e) {
            s.close();
            throw e;
        }
        session = s;
    }

    @Override
    public synchronized boolean isActivated() { return session != null; }

    @Override
    public synchronized void reset() {
        if (session != null) {
            session.close();
            session = null;
        }
        failures.flush();
    }

    @Override
    public void close() {
        reset();
        listeners.close();
    }

    /** One activation: the loop, the muxer and the queues; everything but close() on the loop thread. */
    private final class Session {
        private final GuestMemory mem;
        private final Queue rx;
        private final Queue tx;
        private final Trigger interrupt;
        private final EventLoop loop;
        private final VsockMuxer muxer;
        private final byte[] payload = new byte[VsockHeader.MAX_PAYLOAD];
        private boolean txWaiting;

        Session(ActivationContext ctx, EventLoop loop) {
            this.mem = ctx.memory();
            this.rx = ctx.queue(RX).queue();
            this.tx = ctx.queue(TX).queue();
            this.interrupt = ctx.usedBuffer();
            this.loop = loop;
            LoopReactor reactor = new LoopReactor(loop, this::service);
            this.muxer = new VsockMuxer(config, sockets, reactor);
            long dumpSeconds = Long.getLong("jkrun.vsock.dumpSeconds", 0);
            if (dumpSeconds > 0) {
                dumpEvery(reactor, dumpSeconds * 1000);
            }
        }

        /** A diagnostic: the queues' and the muxer's state every {@code millis}, logged at WARN when asked for. */
        private void dumpEvery(Reactor reactor, long millis) {
            reactor.schedule(millis, () -> {
                String queues;
                try {
                    queues = "rx avail " + rx.pending(mem) + " next " + rx.nextAvail() + " used " + rx.nextUsed()
                            + ", tx avail " + tx.pending(mem) + " next " + tx.nextAvail() + " used " + tx.nextUsed()
                            + (txWaiting ? " (tx waiting)" : "");
                } catch (InvalidChainException | RuntimeException e) {
                    queues = "queues: " + e;
                }
                LOG.warn("virtio-vsock state: {}; {}", queues, muxer.describe());
                dumpEvery(reactor, millis);
            });
        }

        void notified(int queue) {
            if (queue == TX) {
                serveTx();
            }
            service();
        }

        /** After every event: fill rx buffers; tx that waited for them goes on once the backlog has room. */
        void service() {
            serveRx();
            if (txWaiting && !muxer.txPaused()) {
                serveTx();
                serveRx();
            }
        }

        private void serveTx() {
            if (!tx.isReady()) {
                return;
            }
            boolean used = false;
            txWaiting = false;
            do {
                tx.disableNotification(mem);
                while (!DeviceThreads.stopRequested()) {
                    if (muxer.txPaused()) {
                        txWaiting = true;
                        break;
                    }
                    Optional<DescriptorChain> c = pop(tx);
                    if (c.isEmpty()) {
                        break;
                    }
                    DescriptorChain chain = c.get();
                    try {
                        muxer.send(VsockPacket.readTx(chain));
                    } catch (MalformedPacketException e) {
                        muxer.malformed(e);
                    } catch (RuntimeException e) {
                        failures.warn("virtio-vsock: tx packet failed: {}", e.toString());
                    }
                    tx.addUsed(mem, chain.headIndex(), 0);
                    used = true;
                }
            } while (!txWaiting && !DeviceThreads.stopRequested() && tx.enableNotification(mem));
            if (txWaiting) {
                tx.enableNotification(mem);
            }
            if (used && tx.needsNotification(mem)) {
                interrupt.trigger();
            }
        }

        private void serveRx() {
            if (!rx.isReady()) {
                return;
            }
            boolean used = false;
            while (muxer.hasRx() && !DeviceThreads.stopRequested()) {
                Optional<DescriptorChain> c = pop(rx);
                if (c.isEmpty()) {
                    if (rx.enableNotification(mem)) {
                        continue; // buffers came while we looked
                    }
                    break;
                }
                DescriptorChain chain = c.get();
                int room = VsockPacket.rxRoom(chain.writableLength());
                int len = 0;
                if (room >= 0) {
                    VsockHeader h;
                    try {
                        h = muxer.nextRx(payload, room);
                    } catch (RuntimeException e) {
                        failures.warn("virtio-vsock: rx packet failed: {}", e.toString());
                        h = null;
                    }
                    if (h == null) {
                        rx.undoPop(); // nothing ready after all (a connection waiting for credit)
                        break;
                    }
                    try {
                        len = VsockPacket.writeRx(chain.writer(), h, payload);
                    } catch (InvalidChainException e) {
                        LOG.debug("virtio-vsock: {}", e.getMessage()); // sized to the chain: not reached
                    }
                }
                rx.addUsed(mem, chain.headIndex(), len); // a buffer too small for a header goes back empty
                used = true;
            }
            if (used && rx.needsNotification(mem)) {
                interrupt.trigger();
            }
        }

        /** The next well-formed chain; malformed ones go back empty (as {@code QueueWorker} does). */
        private Optional<DescriptorChain> pop(Queue q) {
            while (!DeviceThreads.stopRequested()) {
                try {
                    return q.pop(mem);
                } catch (InvalidChainException e) {
                    LOG.debug("virtio-vsock: malformed chain: {}", e.getMessage());
                    if (!e.isChainError()) {
                        return Optional.empty();
                    }
                    q.addUsed(mem, e.headIndex(), 0);
                    if (q.needsNotification(mem)) {
                        interrupt.trigger();
                    }
                }
            }
            return Optional.empty();
        }

        /** Stops the thread first, then releases the host sockets and listeners, then the loop. */
        void close() {
            loop.stop();
            muxer.close();
            loop.close();
        }
    }
}
