package dev.jkrun.devices.virtio.console;

import dev.jkrun.devices.RateLimitedLog;
import dev.jkrun.devices.Trigger;
import dev.jkrun.devices.virtio.ActivationContext;
import dev.jkrun.devices.virtio.ActiveQueue;
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
import java.util.ArrayList;
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
 * <p>Threads, all started by {@link #activate} and stopped and joined by {@link #reset()} / {@link #close()}:
 * per port an rx thread (host input → the guest's writable buffers on the rx queue) and a tx thread (woken by the
 * tx queue's EventFd: guest output → host); with MULTIPORT a control-tx thread (the driver's control messages) and
 * a control-rx thread (delivers queued host control messages when the driver adds buffers).
 *
 * <p>MULTIPORT handshake: driver DEVICE_READY → host PORT_ADD for every port; driver PORT_READY(id) → host
 * CONSOLE_PORT + PORT_OPEN + RESIZE for a console port, PORT_OPEN otherwise, then PORT_NAME when named; driver
 * PORT_OPEN(id, 1) → the port's rx thread starts reading host input. Host input EOF → PORT_OPEN(id, 0).
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
    private static final long JOIN_TIMEOUT_MS = 5000;
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
     * Port 0's terminal changed size: updates config space and, with MULTIPORT active, sends RESIZE for every
     * console port. (Without MULTIPORT the transport's configChanged() tells the driver.)
     */
    public void resize(int cols, int rows) {
        this.cols = cols;
        this.rows = rows;
        Session s = session;
        if (s != null && s.multiport) {
            for (int i = 0; i < ports.size(); i++) {
                if (ports.get(i).console()) {
                    s.sendControl(resizeMessage(i, cols, rows));
                }
            }
        }
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
        List<Queue> queues = ctx.queues().stream().map(ActiveQueue::queue).toList();
        List<EventFd> queueEvents = ctx.queues().stream().map(ActiveQueue::notification).toList();
        GuestMemory mem = ctx.memory();
        Trigger interrupt = ctx.usedBuffer();
        synchronized (lock) {
            if (closed) {
                throw new IllegalStateException("virtio-console is closed");
            }
            if (session != null) {
                throw new IllegalStateException("virtio-console already active");
            }
            if (queues.size() != 2 + 2 * ports.size() || queueEvents.size() != queues.size()) {
                throw new IllegalArgumentException("virtio-console needs " + (2 + 2 * ports.size()) + " queues");
            }
            Session s = new Session(mem, queues, queueEvents, interrupt, multiport());
            session = s;
            s.start();
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

    /** Everything that exists between activate and reset. */
    private final class Session {
        private final GuestMemory mem;
        private final List<Queue> queues;
        private final List<EventFd> events;
        private final Trigger interrupt;
        private final boolean multiport;
        private final List<Thread> threads = new ArrayList<>();
        private volatile boolean stopping;
        /** Per port: whether the driver has opened it (always true without MULTIPORT). */
        private final boolean[] guestOpen;
        /** Host control messages the driver has no buffer for yet, by (port, event), in the order first sent. */
        private final LinkedHashMap<Long, byte[]> pendingControl = new LinkedHashMap<>();

        Session(GuestMemory mem, List<Queue> queues, List<EventFd> events, Trigger interrupt, boolean multiport) {
            this.mem = mem;
            this.queues = queues;
            this.events = events;
            this.interrupt = interrupt;
            this.multiport = multiport;
            this.guestOpen = new boolean[ports.size()];
            if (!multiport) {
                guestOpen[0] = true;
            }
        }

        void start() {
            int nPorts = multiport ? ports.size() : 1;
            for (int i = 0; i < nPorts; i++) {
                final int port = i;
                spawn("rx" + i, () -> rxLoop(port));
                spawn("tx" + i, () -> eventLoop(txQueueIndex(port), () -> drainTx(port)));
            }
            if (multiport) {
                spawn("ctrl-tx", () -> eventLoop(CONTROL_TX, this::drainControlTx));
                spawn("ctrl-rx", () -> eventLoop(CONTROL_RX, this::flushControl));
            }
        }

        private void spawn(String name, Runnable body) {
            threads.add(deviceThreads.start("virtio-console-" + name, body));
        }

        void stop() {
            stopping = true;
            for (Thread t : threads) {
                DeviceThreads.requestStop(t);
            }
            for (EventFd e : events) {
                try {
                    e.signal();
                } catch (RuntimeException ignored) {
                    // closed already
                }
            }
            synchronized (guestOpen) {
                guestOpen.notifyAll();
            }
            for (ConsolePort p : ports) {
                p.input().wakeup();
            }
            for (Thread t : threads) {
                try {
                    t.join(JOIN_TIMEOUT_MS);
                    if (t.isAlive()) {
                        t.interrupt();
                        t.join(JOIN_TIMEOUT_MS);
                    }
                    if (t.isAlive()) {
                        LOG.error("virtio-console: thread {} did not stop", t.getName());
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }

        private void notifyGuest(Queue q) {
            if (q.needsNotification(mem)) {
                interrupt.trigger();
            }
        }

        /** Waits on queue {@code qi}'s EventFd and runs {@code drain} after each notification. */
        private void eventLoop(int qi, Runnable drain) {
            EventFd ev = events.get(qi);
            drain.run(); // buffers may be there already
            while (!stopping) {
                ev.await();
                if (stopping) {
                    return;
                }
                drain.run();
            }
        }

        /** Pops the next chain, giving malformed ones back with length 0. Empty when none (or queue broken). */
        private Optional<DescriptorChain> next(Queue q, String what) {
            while (!stopping) { // a driver may keep adding malformed chains
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

        // ---- tx: guest → host ------------------------------------------------------------------------------

        private void drainTx(int port) {
            Queue q = queues.get(txQueueIndex(port));
            PortOutput out = ports.get(port).output();
            byte[] buf = new byte[4096];
            boolean used = false;
            do {
                q.disableNotification(mem);
                Optional<DescriptorChain> c;
                while (!stopping && (c = next(q, "tx" + port)).isPresent()) {
                    Reader r = c.get().reader();
                    try {
                        int n;
                        // One chain may describe gigabytes (overlapping descriptors): a stop must not wait for it.
                        while (!stopping && (n = r.read(buf, 0, buf.length)) > 0) {
                            out.write(buf, 0, n);
                        }
                    } catch (IOException | RuntimeException e) {
                        guestWarnings.warn("virtio-console: port {} output failed: {}", port, e.toString());
                    }
                    q.addUsed(mem, c.get().headIndex(), 0);
                    used = true;
                }
            } while (!stopping && q.enableNotification(mem));
            try {
                out.flush();
            } catch (IOException e) {
                guestWarnings.warn("virtio-console: port {} flush failed: {}", port, e.toString());
            }
            if (used) {
                notifyGuest(q);
            }
        }

        // ---- rx: host → guest ------------------------------------------------------------------------------

        private void rxLoop(int port) {
            PortInput in = ports.get(port).input();
            byte[] buf = new byte[QUEUE_SIZE * 128];
            while (!stopping) {
                if (!awaitGuestOpen(port)) {
                    return;
                }
                int n;
                try {
                    n = in.read(buf, 0, buf.length);
                } catch (IOException e) {
                    guestWarnings.warn("virtio-console: port {} input failed: {}", port, e.toString());
                    n = -1;
                }
                if (stopping) {
                    return;
                }
                if (n < 0) {
                    LOG.debug("virtio-console: port {} input reached end of file", port);
                    if (multiport) {
                        sendControl(controlMessage(port, PORT_OPEN, 0, null));
                    }
                    return;
                }
                if (n > 0) {
                    deliver(port, buf, n);
                }
            }
        }

        private boolean awaitGuestOpen(int port) {
            synchronized (guestOpen) {
                while (!guestOpen[port] && !stopping) {
                    try {
                        guestOpen.wait();
                    } catch (InterruptedException e) {
                        return false;
                    }
                }
                return !stopping;
            }
        }

        /** Writes {@code buf[0..n)} into the rx queue's buffers, waiting for the driver to add more as needed. */
        private void deliver(int port, byte[] buf, int n) {
            int qi = rxQueueIndex(port);
            Queue q = queues.get(qi);
            int off = 0;
            while (off < n && !stopping) {
                Optional<DescriptorChain> c = next(q, "rx" + port);
                if (c.isEmpty()) {
                    if (q.isBroken()) {
                        return; // nothing to do until the driver resets the device
                    }
                    if (!q.enableNotification(mem)) {
                        events.get(qi).await();
                    }
                    continue;
                }
                Writer w = c.get().writer();
                int k = w.write(buf, off, n - off);
                off += k;
                q.addUsed(mem, c.get().headIndex(), w.usedLength());
                notifyGuest(q);
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
                Queue q = queues.get(CONTROL_RX);
                boolean used = false;
                while (!pendingControl.isEmpty() && !stopping) {
                    Optional<DescriptorChain> c = next(q, "control rx");
                    if (c.isEmpty()) {
                        if (q.isBroken() || !q.enableNotification(mem)) {
                            break; // the ctrl-rx thread calls us again when the driver adds buffers
                        }
                        continue;
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
            Queue q = queues.get(CONTROL_TX);
            boolean used = false;
            do {
                q.disableNotification(mem);
                Optional<DescriptorChain> c;
                while (!stopping && (c = next(q, "control tx")).isPresent()) {
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
            } while (!stopping && q.enableNotification(mem));
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
                    synchronized (guestOpen) {
                        guestOpen[id] = value == 1;
                        guestOpen.notifyAll();
                    }
                }
                default -> LOG.debug("virtio-console: control event {} for port {} ignored", event, id);
            }
        }
    }
}
