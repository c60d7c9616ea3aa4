package dev.jkrun.devices.virtio.console;

import dev.jkrun.devices.RateLimitedLog;
import dev.jkrun.devices.runtime.EventLoop;
import dev.jkrun.devices.virtio.ActivationContext;
import dev.jkrun.devices.virtio.DeviceThreads;
import dev.jkrun.devices.virtio.VirtioDevice;
import dev.jkrun.devices.virtio.queue.DescriptorChain;
import dev.jkrun.devices.virtio.queue.InvalidChainException;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.devices.virtio.queue.Reader;
import dev.jkrun.devices.virtio.queue.Writer;
import dev.jkrun.libc.EventFd;
import dev.jkrun.memory.GuestMemory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Optional;

/**
 * virtio-console (device id 3, virtio 1.2 section 5.3) with {@code VIRTIO_CONSOLE_F_SIZE} and
 * {@code VIRTIO_CONSOLE_F_MULTIPORT}.
 *
 * <p>Queues, all of size 32: port 0 rx (0) and tx (1), control rx (2) and tx (3), then port k rx {@code 2+2k} and
 * tx {@code 3+2k}. Without MULTIPORT only port 0 exists (queues 0 and 1).
 *
 * <p>One thread, an {@link EventLoop} started by {@link #activate} and stopped and joined by {@link #reset()} /
 * {@link #close()}, serves every queue and every host descriptor: per port, guest output (tx queue → host, waiting
 * for room with epoll when the host is slow, never in write(2)) and host input (readable host fd → the guest's rx
 * buffers, the fd unwatched while the guest has no buffer); with MULTIPORT the driver's control messages and the
 * delivery of queued host control messages. Only inputs that are Java streams add a helper thread each
 * ({@link PortInput#of}): a stream cannot be waited on beside descriptors.
 *
 * <p>MULTIPORT handshake: driver DEVICE_READY → host PORT_ADD for every port; driver PORT_READY(id) → host
 * CONSOLE_PORT + PORT_OPEN + RESIZE for a console port, PORT_OPEN otherwise, then PORT_NAME when named; driver
 * PORT_OPEN(id, 1) → the port's host input is read. Host input EOF → PORT_OPEN(id, 0).
 *
 * <p>Host control messages wait for the driver's control rx buffers in a bounded queue: each says the latest state
 * of one (port, event) pair, so a newer message for the same pair replaces the waiting one in its place (a driver
 * that repeats DEVICE_READY or PORT_READY without taking anything costs nothing).
 */
public final class VirtioConsole implements VirtioDevice {
    private static final Logger LOG = LoggerFactory.getLogger(VirtioConsole.class);

    public static final int DEVICE_TYPE = 3;
    public static final int QUEUE_SIZE = 32;
    /** Feature bits (virtio_console.h). */
    public static final int VIRTIO_CONSOLE_F_SIZE = 0, VIRTIO_CONSOLE_F_MULTIPORT = 1;
    /** Control events (virtio_console.h). */
    public static final int DEVICE_READY = 0, PORT_ADD = 1, PORT_REMOVE = 2, PORT_READY = 3, CONSOLE_PORT = 4,
            RESIZE = 5, PORT_OPEN = 6, PORT_NAME = 7;
    /** Config space: cols u16, rows u16, max_nr_ports u32, emerg_wr u32. */
    public static final int CONFIG_SIZE = 12;
    private static final int CONTROL_RX = 2, CONTROL_TX = 3;
    /**
     * Bound on host control messages waiting for the driver, per port: one per (port, event) pair, and there are
     * eight events. Coalescing keeps the queue below it; the bound is what holds if that ever changes.
     */
    public static final int MAX_PENDING_CONTROL_PER_PORT = 8;

    private final List<ConsolePort> ports;
    private volatile int cols;
    private volatile int rows;

    private final Object lock = new Object();
    private final DeviceThreads deviceThreads = new DeviceThreads("virtio-console");
    private final RateLimitedLog guestWarnings = new RateLimitedLog(LOG, "virtio-console");
    private long ackedFeatures;
    private volatile Session session;
    private boolean closed;

    /** @param cols columns and @param rows rows of port 0's terminal (0x0 when none) */
    public VirtioConsole(List<ConsolePort> ports, int cols, int rows) {
        if (ports.isEmpty()) {
            throw new IllegalArgumentException("a console needs at least one port");
        }
        this.ports = List.copyOf(ports);
        this.cols = cols;
        this.rows = rows;
    }

    public List<ConsolePort> ports() { return ports; }

    public static int rxQueueIndex(int port) { return port == 0 ? 0 : 2 + 2 * port; }

    public static int txQueueIndex(int port) { return port == 0 ? 1 : 3 + 2 * port; }

    @Override
    public int deviceType() { return DEVICE_TYPE; }

    @Override
    public int[] queueMaxSizes() {
        int[] s = new int[2 + 2 * ports.size()];
        java.util.Arrays.fill(s, QUEUE_SIZE);
        return s;
    }

    @Override
    public long availableFeatures() {
        return (1L << VIRTIO_CONSOLE_F_SIZE) | (1L << VIRTIO_CONSOLE_F_MULTIPORT)
                | (1L << Queue.VIRTIO_RING_F_INDIRECT_DESC) | (1L << Queue.VIRTIO_RING_F_EVENT_IDX);
    }

    @Override
    public void ackFeatures(long features) {
        synchronized (lock) {
            ackedFeatures = features;
        }
    }

    private boolean multiport() { return (ackedFeatures & (1L << VIRTIO_CONSOLE_F_MULTIPORT)) != 0; }

    @Override
    public void readConfig(long offset, byte[] data) {
        ByteBuffer cfg = ByteBuffer.allocate(CONFIG_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        cfg.putShort((short) cols).putShort((short) rows).putInt(ports.size()).putInt(0);
        VirtioDevice.readConfigBytes(cfg.array(), offset, data);
    }

    @Override
    public void writeConfig(long offset, byte[] data) {
        LOG.debug("virtio-console: config write at {} ignored (no EMERG_WRITE)", offset);
    }

    /**
     * Port 0's terminal changed size: updates config space and tells the driver, with a configuration change
     * interrupt (virtio 1.2 §5.3.4: cols and rows in config space) and, with MULTIPORT, RESIZE for every console port.
     */
    public void resize(int cols, int rows) {
        this.cols = cols;
        this.rows = rows;
        Session s = session;
        if (s == null) {
            return;
        }
        if (s.multiport) {
            s.loop.execute(() -> {
                for (int i = 0; i < ports.size(); i++) {
                    if (ports.get(i).console()) {
                        s.sendControl(resizeMessage(i, cols, rows));
                    }
                }
            });
        }
        s.ctx.configChanged().trigger();
    }

    @Override
    public boolean isActivated() { return session != null; }

    @Override
    public DeviceThreads threads() { return deviceThreads; }

    /** Host control messages waiting for the driver's control rx buffers (for tests). */
    int pendingControlMessages() {
        Session s = session;
        if (s == null) {
            return 0;
        }
        synchronized (s.pendingControl) {
            return s.pendingControl.size();
        }
    }

    @Override
    public void activate(ActivationContext ctx) {
        synchronized (lock) {
            if (closed) {
                throw new IllegalStateException("virtio-console is closed");
            }
            if (session != null) {
                throw new IllegalStateException("virtio-console already active");
            }
            if (ctx.queues().size() != 2 + 2 * ports.size()) {
                throw new IllegalArgumentException("virtio-console needs " + (2 + 2 * ports.size()) + " queues");
            }
            Session s = new Session(ctx, multiport());
            s.start();
            session = s;
        }
    }

    /**
     * Moves what the driver has already queued on the ports' tx queues to the host now and waits for that, at most
     * {@code timeoutMillis}: a stop decided on a vCPU (a reset right after a panic, libkrun's {@code panic=-1}) must
     * not overtake the console output that preceded it, or the panic line that explains the stop is lost. Returns
     * whether the drain finished in time (true when the device is not active).
     */
    public boolean drainOutput(long timeoutMillis) {
        Session s = session;
        if (s == null) {
            return true;
        }
        if (s.loop.inLoopThread()) {
            s.drainAll();
            return true;
        }
        java.util.concurrent.CompletableFuture<Void> done = new java.util.concurrent.CompletableFuture<>();
        s.loop.execute(() -> {
            try {
                s.drainAll();
            } finally {
                done.complete(null);
            }
        });
        try {
            done.get(timeoutMillis, java.util.concurrent.TimeUnit.MILLISECONDS);
            return true;
        } catch (java.util.concurrent.TimeoutException | java.util.concurrent.ExecutionException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
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
        for (ConsolePort p : ports) {
            try {
                p.output().flush();
            } catch (IOException e) {
                LOG.debug("virtio-console: flush at close failed", e);
            }
            p.input().close();
            p.output().close();
        }
    }

    static byte[] controlMessage(int id, int event, int value, byte[] extra) {
        ByteBuffer b = ByteBuffer.allocate(8 + (extra == null ? 0 : extra.length)).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(id).putShort((short) event).putShort((short) value);
        if (extra != null) {
            b.put(extra);
        }
        return b.array();
    }

    /** virtio 1.2 5.3.6.2: RESIZE is followed by struct virtio_console_resize { le16 cols; le16 rows; }. */
    static byte[] resizeMessage(int id, int cols, int rows) {
        byte[] sz = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putShort((short) cols).putShort((short) rows).array();
        return controlMessage(id, RESIZE, 0, sz);
    }

    /** Everything that exists between activate and reset; all of it runs on {@link #loop}'s thread. */
    private final class Session {
        /** Guest bytes one port moves per loop turn before letting the other descriptors have the thread. */
        private static final int TURN_BYTES = 256 << 10;
        private final GuestMemory mem;
        private final ActivationContext ctx;
        private final boolean multiport;
        private final int nPorts;
        private final EventLoop loop = new EventLoop("virtio-console-loop");
        /** Per port: whether the driver has opened it (always true without MULTIPORT). */
        private final boolean[] guestOpen;
        private final Tx[] tx;
        private final Rx[] rx;
        /** Host control messages the driver has no buffer for yet, by (port, event), in the order first sent. */
        private final LinkedHashMap<Long, byte[]> pendingControl = new LinkedHashMap<>();

        Session(ActivationContext ctx, boolean multiport) {
            this.mem = ctx.memory();
            this.ctx = ctx;
            this.multiport = multiport;
            this.nPorts = multiport ? ports.size() : 1;
            this.guestOpen = new boolean[ports.size()];
            if (!multiport) {
                guestOpen[0] = true;
            }
            tx = new Tx[nPorts];
            rx = new Rx[nPorts];
            for (int i = 0; i < nPorts; i++) {
                tx[i] = new Tx(i);
                rx[i] = new Rx(i);
            }
        }

        void start() {
            int started = 0;
            try {
                for (int i = 0; i < nPorts; i++) {
                    Tx t = tx[i];
                    Rx r = rx[i];
                    watchQueue(txQueueIndex(i), t::drain);
                    watchQueue(rxQueueIndex(i), r::deliver);
                    ports.get(i).input().start(loop, deviceThreads, "virtio-console-in" + i, r::deliver);
                    started++;
                    loop.execute(t::drain); // buffers may be there already
                    loop.execute(r::deliver);
                }
                if (multiport) {
                    watchQueue(CONTROL_TX, this::drainControlTx);
                    watchQueue(CONTROL_RX, this::flushControl);
                    loop.execute(this::drainControlTx);
                }
                loop.start(deviceThreads);
            } catch (RuntimeException | Error e) {
                stopInputs(started);
                loop.close();
                throw e;
            }
        }

        private void watchQueue(int qi, Runnable drain) {
            EventFd ev = ctx.queue(qi).notification();
            loop.register(ev.fd().raw(), EventLoop.IN, events -> {
                ev.await(); // readable: does not block
                drain.run();
            });
        }

        void stop() {
            loop.stop();
            stopInputs(nPorts);
            for (Tx t : tx) {
                t.unwatch();
            }
            loop.close();
        }

        private void stopInputs(int n) {
            for (int i = 0; i < n; i++) {
                ports.get(i).input().stop();
            }
        }

        private Queue queue(int qi) { return ctx.queue(qi).queue(); }

        /** One drain turn of every port's tx queue, on the loop's thread. */
        void drainAll() {
            for (Tx t : tx) {
                t.drain();
            }
        }

        private void notifyGuest(Queue q) {
            if (q.needsNotification(mem)) {
                ctx.usedBuffer().trigger();
            }
        }

        /** Pops the next chain, giving malformed ones back with length 0. Empty when none (or queue broken). */
        private Optional<DescriptorChain> next(Queue q, String what) {
            while (!DeviceThreads.stopRequested()) { // a driver may keep adding malformed chains
                try {
                    return q.pop(mem);
                } catch (InvalidChainException e) {
                    guestWarnings.warn("virtio-console {}: {}", what, e.getMessage());
                    if (!e.isChainError()) {
                        return Optional.empty();
                    }
                    q.addUsed(mem, e.headIndex(), 0);
                    notifyGuest(q);
                }
            }
            return Optional.empty();
        }

        /**
         * The next chain, turning notifications back on when there is none (virtio 1.2 §2.7.10); empty when the
         * driver has nothing more for now (it notifies then).
         */
        private Optional<DescriptorChain> nextOrWait(Queue q, String what) {
            while (true) {
                Optional<DescriptorChain> c = next(q, what);
                if (c.isPresent() || q.isBroken() || DeviceThreads.stopRequested() || !q.enableNotification(mem)) {
                    return c;
                }
                q.disableNotification(mem);
            }
        }

        // ---- tx: guest → host ------------------------------------------------------------------------------

        /** One port's guest output: the chain being written and the bytes of it the host has not taken yet. */
        private final class Tx {
            private final int port;
            private final PortOutput out;
            private final Queue q;
            private final byte[] buf = new byte[4096];
            private int pendingOff, pendingLen;
            private DescriptorChain chain;
            private Reader reader;
            private WatchedFd room;
            /** Chains given back since the driver was last told. */
            private boolean used;

            Tx(int port) {
                this.port = port;
                this.out = ports.get(port).output();
                this.q = queue(txQueueIndex(port));
            }

            /** Moves guest output to the host until the queue is empty, the host is full, or the turn is used up. */
            void drain() {
                int budget = TURN_BYTES;
                q.disableNotification(mem);
                try {
                    while (!DeviceThreads.stopRequested()) {
                        if (pendingLen > 0) {
                            if (!writePending()) {
                                awaitRoom();
                                return;
                            }
                            continue;
                        }
                        if (budget <= 0) {
                            loop.execute(this::drain); // one chain may describe gigabytes: others get their turn
                            return;
                        }
                        if (chain != null) {
                            // One chain may describe gigabytes (overlapping descriptors): read it a buffer at a time.
                            int n = reader.read(buf, 0, buf.length);
                            if (n > 0) {
                                pendingOff = 0;
                                pendingLen = n;
                                budget -= n;
                                continue;
                            }
                            finishChain();
                            continue;
                        }
                        Optional<DescriptorChain> c = nextOrWait(q, "tx" + port);
                        if (c.isEmpty()) {
                            return;
                        }
                        chain = c.get();
                        reader = chain.reader();
                    }
                } finally {
                    flush();
                    if (used) {
                        used = false;
                        notifyGuest(q);
                    }
                }
            }

            /** Whether everything pending went out; a host error drops the rest of the chain, as before. */
            private boolean writePending() {
                try {
                    int n = out.writeSome(buf, pendingOff, pendingLen);
                    pendingOff += n;
                    pendingLen -= n;
                    return pendingLen == 0;
                } catch (IOException | RuntimeException e) {
                    guestWarnings.warn("virtio-console: port {} output failed: {}", port, e.toString());
                    pendingLen = 0;
                    finishChain(); // the rest of it is dropped
                    return true;
                }
            }

            private void finishChain() {
                q.addUsed(mem, chain.headIndex(), 0);
                chain = null;
                reader = null;
                used = true;
            }

            /** The host took less than offered: wait on the loop for room (OUT), not in write(2). */
            private void awaitRoom() {
                if (out.pollFd() < 0) {
                    loop.schedule(10, this::drain); // an output with nothing to wait on took less: look again soon
                    return;
                }
                if (room == null) {
                    room = new WatchedFd(loop, out.pollFd(), events -> {
                        room.interest(0);
                        drain();
                    });
                }
                if (room.pollable()) {
                    room.interest(EventLoop.OUT);
                } else {
                    loop.schedule(10, this::drain); // epoll cannot watch it; took nothing: look again soon
                }
            }

            private void flush() {
                try {
                    out.flush();
                } catch (IOException e) {
                    guestWarnings.warn("virtio-console: port {} flush failed: {}", port, e.toString());
                }
            }

            void unwatch() {
                if (room != null) {
                    room.close();
                    room = null;
                }
            }
        }

        // ---- rx: host → guest ------------------------------------------------------------------------------

        /** One port's host input: bytes read from the host that wait for the guest's rx buffers. */
        private final class Rx {
            private final int port;
            private final PortInput in;
            private final Queue q;
            private final byte[] buf = new byte[QUEUE_SIZE * 128];
            private int stagedOff, staged;
            private boolean ended;

            Rx(int port) {
                this.port = port;
                this.in = ports.get(port).input();
                this.q = queue(rxQueueIndex(port));
            }

            /** Moves host input into the guest's rx buffers while there are both; says what it waits for next. */
            void deliver() {
                int budget = TURN_BYTES;
                while (!DeviceThreads.stopRequested() && !ended) {
                    if (!guestOpen[port]) {
                        in.want(false);
                        return;
                    }
                    if (staged == 0) {
                        if (budget <= 0) {
                            loop.execute(this::deliver);
                            return;
                        }
                        int n;
                        try {
                            n = in.read(buf, 0, buf.length);
                        } catch (IOException e) {
                            guestWarnings.warn("virtio-console: port {} input failed: {}", port, e.toString());
                            n = -1;
                        }
                        if (n < 0) {
                            inputEnded();
                            return;
                        }
                        if (n == 0) {
                            in.want(true);
                            return;
                        }
                        stagedOff = 0;
                        staged = n;
                        budget -= n;
                    }
                    Optional<DescriptorChain> c = nextOrWait(q, "rx" + port);
                    if (c.isEmpty()) {
                        in.want(false); // the input waits for the driver's buffers (the rx notification)
                        return;
                    }
                    Writer w = c.get().writer();
                    int k = w.write(buf, stagedOff, staged);
                    stagedOff += k;
                    staged -= k;
                    q.addUsed(mem, c.get().headIndex(), w.usedLength());
                    notifyGuest(q);
                }
            }

            private void inputEnded() {
                LOG.debug("virtio-console: port {} input reached end of file", port);
                ended = true;
                in.want(false);
                if (multiport) {
                    sendControl(controlMessage(port, PORT_OPEN, 0, null));
                }
            }
        }

        // ---- control queues (MULTIPORT) --------------------------------------------------------------------

        /** Queues {@code msg} (a whole control message: id, event, value, extra) and delivers what fits. */
        void sendControl(byte[] msg) {
            ByteBuffer b = ByteBuffer.wrap(msg).order(ByteOrder.LITTLE_ENDIAN);
            long key = Integer.toUnsignedLong(b.getInt(0)) << 16 | Short.toUnsignedInt(b.getShort(4));
            synchronized (pendingControl) {
                if (!pendingControl.containsKey(key) && pendingControl.size() >= MAX_PENDING_CONTROL_PER_PORT * ports.size()) {
                    guestWarnings.warn("virtio-console: control message for port {} dropped: {} wait for control rx buffers",
                            b.getInt(0), pendingControl.size());
                    return;
                }
                pendingControl.put(key, msg); // a replaced message keeps its place
            }
            flushControl();
        }

        /** Delivers queued host control messages into the control rx queue, as far as buffers allow. */
        private void flushControl() {
            synchronized (pendingControl) {
                Queue q = queue(CONTROL_RX);
                boolean used = false;
                while (!pendingControl.isEmpty() && !DeviceThreads.stopRequested()) {
                    Optional<DescriptorChain> c = nextOrWait(q, "control rx");
                    if (c.isEmpty()) {
                        break; // the control rx notification calls us again when the driver adds buffers
                    }
                    Iterator<byte[]> first = pendingControl.values().iterator();
                    byte[] msg = first.next();
                    first.remove();
                    Writer w = c.get().writer();
                    try {
                        w.writeExact(msg);
                    } catch (InvalidChainException e) {
                        guestWarnings.warn("virtio-console: control message dropped: {}", e.getMessage());
                    }
                    q.addUsed(mem, c.get().headIndex(), w.usedLength());
                    used = true;
                }
                if (used) {
                    notifyGuest(q);
                }
            }
        }

        private void drainControlTx() {
            Queue q = queue(CONTROL_TX);
            boolean used = false;
            do {
                q.disableNotification(mem);
                Optional<DescriptorChain> c;
                while (!DeviceThreads.stopRequested() && (c = next(q, "control tx")).isPresent()) {
                    try {
                        Reader r = c.get().reader();
                        int id = r.readInt();
                        int event = Short.toUnsignedInt(r.readShort());
                        int value = Short.toUnsignedInt(r.readShort());
                        handleControl(id, event, value);
                    } catch (InvalidChainException e) {
                        guestWarnings.warn("virtio-console: bad control message: {}", e.getMessage());
                    }
                    q.addUsed(mem, c.get().headIndex(), 0);
                    used = true;
                }
            } while (!DeviceThreads.stopRequested() && q.enableNotification(mem));
            if (used) {
                notifyGuest(q);
            }
        }

        private void handleControl(int id, int event, int value) {
            switch (event) {
                case DEVICE_READY -> {
                    if (value != 1) {
                        guestWarnings.warn("virtio-console: driver failed to initialise (DEVICE_READY {})", value);
                        return;
                    }
                    for (int i = 0; i < ports.size(); i++) {
                        sendControl(controlMessage(i, PORT_ADD, 0, null));
                    }
                }
                case PORT_READY -> {
                    if (id < 0 || id >= ports.size()) {
                        guestWarnings.warn("virtio-console: PORT_READY for unknown port {}", id);
                        return;
                    }
                    if (value != 1) {
                        guestWarnings.warn("virtio-console: driver failed to add port {}", id);
                        return;
                    }
                    ConsolePort p = ports.get(id);
                    if (p.console()) {
                        sendControl(controlMessage(id, CONSOLE_PORT, 1, null));
                        sendControl(controlMessage(id, PORT_OPEN, 1, null));
                        sendControl(resizeMessage(id, cols, rows));
                    } else {
                        sendControl(controlMessage(id, PORT_OPEN, 1, null));
                    }
                    if (p.name() != null) {
                        sendControl(controlMessage(id, PORT_NAME, 1, p.name().getBytes(StandardCharsets.UTF_8)));
                    }
                }
                case PORT_OPEN -> {
                    if (id < 0 || id >= ports.size()) {
                        guestWarnings.warn("virtio-console: PORT_OPEN for unknown port {}", id);
                        return;
                    }
                    guestOpen[id] = value == 1;
                    if (id < nPorts) {
                        rx[id].deliver(); // starts reading, or stops watching the input
                    }
                }
                default -> LOG.debug("virtio-console: control event {} for port {} ignored", event, id);
            }
        }
    }
}
