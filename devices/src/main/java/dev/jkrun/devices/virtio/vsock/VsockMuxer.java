package dev.jkrun.devices.virtio.vsock;

import dev.jkrun.devices.RateLimitedLog;
import dev.jkrun.devices.virtio.vsock.host.HostListener;
import dev.jkrun.devices.virtio.vsock.host.HostSockets;
import dev.jkrun.devices.virtio.vsock.host.HostStream;
import dev.jkrun.devices.virtio.vsock.tsi.TsiMessages;
import dev.jkrun.devices.virtio.vsock.tsi.TsiProxies;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The host end of virtio-vsock (as Firecracker's vsock muxer): routes the guest's packets to connections, opens
 * connections for guest REQUESTs to bridged ports and for host clients of listening bridges, and hands the rx
 * queue the next packet the guest is owed. Everything it holds is bounded: connections by
 * {@link VsockConfig#maxConnections()}, guest data per connection by its credit, RSTs for ports without a
 * connection by {@link VsockConfig#rxBacklog()} (while that is full the device stops taking tx packets: {@link
 * #txPaused()}). Nothing the guest sends makes it throw. Runs on one thread (the device's event loop).
 */
public final class VsockMuxer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(VsockMuxer.class);
    /** listen(2) backlog of a listening bridge (libkrun uses 5; clients beyond the backlog would be refused). */
    static final int LISTEN_BACKLOG = 128;
    /** Connections accepted per readiness event of a listener, so one busy listener cannot starve the rest. */
    static final int ACCEPTS_PER_EVENT = 64;
    /** How long a listener rests after accept failed (out of descriptors: EMFILE), instead of spinning. */
    static final long ACCEPT_PAUSE_MILLIS = 100;
    /** Local ports of host-initiated connections start here (Firecracker picks from the same range). */
    static final int FIRST_LOCAL_PORT = 1 << 30;

    private final VsockConfig config;
    private final HostSockets sockets;
    private final Reactor reactor;
    private final Map<Integer, VsockPort> ports = new HashMap<>();
    private final Map<Long, VsockConnection> connections = new HashMap<>();
    /** Live connections that owe the guest packets, in turn order (a set: an ended one leaves it at once). */
    private final LinkedHashSet<VsockConnection> rxQueue = new LinkedHashSet<>();
    /**
     * Live connections whose REQUEST or RESPONSE waits, served before any data: the guest's connect gives up after
     * 2 s (its kernel's default), and a guest slow to post rx buffers while many connections stream would otherwise
     * see each new connection's answer wait its turn behind every busy one.
     */
    private final LinkedHashSet<VsockConnection> setupRx = new LinkedHashSet<>();
    private final ArrayDeque<VsockHeader> controlRx = new ArrayDeque<>();
    private final List<HostListener> listeners = new ArrayList<>();
    private final List<Reactor.Watch> listenerWatches = new ArrayList<>();
    private final RateLimitedLog guestWarnings = new RateLimitedLog(LOG, "virtio-vsock");
    /** TSI's proxies, when the config enables it; null otherwise. */
    private final TsiProxies tsi;
    private int nextLocalPort = FIRST_LOCAL_PORT;
    private long dropped;
    private long refused;
    private boolean closed;

    public VsockMuxer(VsockConfig config, HostSockets sockets, Reactor reactor) {
        this.config = config;
        this.sockets = sockets;
        this.reactor = reactor;
        for (VsockPort p : config.ports()) {
            ports.put(p.port(), p);
        }
        this.tsi = config.tsi().enabled() ? new TsiProxies(config.tsi(), reactor, this::openForTsi, config.rxBacklog())
                : null;
    }

    /** TSI's proxies (null when TSI is off): counters and published listeners. */
    public TsiProxies tsi() { return tsi; }

    /**
     * Binds and listens on every listening bridge's path.
     *
     * @throws IllegalStateException naming the field when a path exists or cannot be bound (nothing stays open)
     */
    public void start() {
        for (int i = 0; i < config.ports().size(); i++) {
            VsockPort p = config.ports().get(i);
            if (!p.listen()) {
                continue;
            }
            HostListener l;
            try {
                l = sockets.listen(p.path(), LISTEN_BACKLOG);
            } catch (IOException e) {
                close();
                throw new IllegalStateException("vsock.ports[" + i + "].path: cannot listen on " + p.path() + ": "
                        + e.getMessage(), e);
            }
            listeners.add(l);
            int guestPort = p.port();
            Reactor.Watch[] w = new Reactor.Watch[1];
            w[0] = reactor.watch(l.fd(), Reactor.IN, events -> accept(l, w[0], guestPort));
            listenerWatches.add(w[0]);
        }
    }

    // ---- guest to host ----------------------------------------------------------------------------------------

    /** A packet from the guest's tx queue. */
    public void send(VsockPacket packet) {
        VsockHeader h = packet.header();
        // Only correctly addressed packets (as vhost-vsock): anything else is not the guest's to send.
        if (h.srcCid() != VsockHeader.GUEST_CID || h.dstCid() != VsockHeader.HOST_CID) {
            dropped++;
            LOG.debug("virtio-vsock: dropped a packet with src_cid {} dst_cid {}", h.srcCid(), h.dstCid());
            return;
        }
        if (h.type() == VsockHeader.TYPE_DGRAM && tsi != null) {
            tsi.onDgram(h, packet.payload());
            return;
        }
        if (h.type() != VsockHeader.TYPE_STREAM) {
            reply(h); // 5.10.6.5: unknown socket types are reset
            return;
        }
        VsockConnection c = connections.get(VsockConnection.key(h.dstPort(), h.srcPort()));
        if (c != null) {
            c.onGuest(h, packet.payload());
            changed(c);
            return;
        }
        if (h.op() == VsockHeader.OP_REQUEST) {
            connectFromGuest(h);
        } else {
            reply(h); // no such connection (never answering an RST with one)
        }
    }

    /**
     * A tx chain that held no well-formed packet: handled as {@link #send} would its type. A stream packet resets
     * its connection (or is answered with RST); TSI's DGRAMs are dropped, as an unparseable control message is (a
     * STREAM RST on the guest's control port answered nothing it sent); other types get the RST of an unknown type.
     * Only a stream packet ever touches a connection; one that names nothing readable is dropped.
     */
    public void malformed(MalformedPacketException e) {
        VsockHeader h = e.header();
        LOG.debug("virtio-vsock: malformed tx packet: {}", e.getMessage());
        if (h == null || h.srcCid() != VsockHeader.GUEST_CID || h.dstCid() != VsockHeader.HOST_CID
                || (h.type() == VsockHeader.TYPE_DGRAM && tsi != null)) {
            dropped++;
            return;
        }
        if (h.type() != VsockHeader.TYPE_STREAM) {
            reply(h); // 5.10.6.5, as a well-formed one: never the stream that has these ports
            return;
        }
        VsockConnection c = connections.get(VsockConnection.key(h.dstPort(), h.srcPort()));
        if (c != null) {
            c.reset(); // its stream lost bytes
            changed(c);
        } else {
            reply(h);
        }
    }

    private void reply(VsockHeader h) {
        if (h.op() != VsockHeader.OP_RST) {
            queueControl(h.resetReply());
        }
    }

    private void queueControl(VsockHeader h) {
        if (controlRx.size() >= config.rxBacklog()) {
            dropped++; // only reachable when the device ignores txPaused()
            return;
        }
        controlRx.add(h);
    }

    private void connectFromGuest(VsockHeader request) {
        if (tsi != null && request.dstPort() == TsiMessages.DEFAULT_PORT) {
            connectTsi(request);
            return;
        }
        VsockPort port = ports.get(request.dstPort());
        if (port == null || port.listen()) {
            reply(request); // 5.10.6.5: nobody listens there
            return;
        }
        if (connections.size() >= config.maxConnections()) {
            refused++;
            guestWarnings.warn("virtio-vsock: {} connections open, refusing another to port {}",
                    connections.size(), Integer.toUnsignedString(request.dstPort()));
            reply(request);
            return;
        }
        HostSockets.Connecting c;
        try {
            c = sockets.connect(port.path());
        } catch (IOException e) {
            LOG.debug("virtio-vsock: port {}: connect to {} failed: {}", port.port(), port.path(), e.getMessage());
            reply(request);
            return;
        }
        VsockConnection conn = VsockConnection.fromGuest(request, c.stream(), c.connected(), reactor, this::changed,
                config.bufAlloc());
        add(conn);
    }

    /** A TSI socket's stream: the guest connects to port 620 from the port its connected proxy was created for. */
    private void connectTsi(VsockHeader request) {
        if (connections.size() >= config.maxConnections()) {
            refused++;
            reply(request);
            return;
        }
        TsiProxies.Claim claim = tsi.claim(request.srcPort());
        if (claim == null) {
            reply(request); // no connected proxy there
            return;
        }
        VsockConnection conn = VsockConnection.fromGuest(request, claim.stream(), true, reactor, this::changed,
                config.bufAlloc());
        conn.onReleased = claim.onReleased();
        add(conn);
    }

    /** {@link TsiProxies.Streams#openToGuest}: a client of a published listener, as a listening bridge's. */
    private int openForTsi(int guestPort, HostStream s, Runnable onEstablished, Runnable onReleased) {
        if (connections.size() >= config.maxConnections()) {
            refused++;
            s.close();
            onReleased.run();
            return -1;
        }
        int local = freeLocalPort(guestPort);
        VsockConnection c = VsockConnection.fromHost(local, guestPort, s, reactor, this::changed, config.bufAlloc(),
                config.listenRetryMillis());
        c.onEstablished = onEstablished;
        c.onReleased = onReleased;
        add(c);
        return local;
    }

    // ---- host to guest ----------------------------------------------------------------------------------------

    private void accept(HostListener listener, Reactor.Watch watch, int guestPort) {
        for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
            HostStream s;
            try {
                s = listener.accept();
            } catch (IOException e) {
                // Out of descriptors, most likely: the pending connection stays readable, so rest instead of spin.
                guestWarnings.warn("virtio-vsock: accept on {} failed: {}", listener, e.getMessage());
                watch.interest(0);
                reactor.schedule(ACCEPT_PAUSE_MILLIS, () -> {
                    if (!closed) {
                        watch.interest(Reactor.IN);
                    }
                });
                return;
            }
            if (s == null) {
                return;
            }
            if (connections.size() >= config.maxConnections()) {
                refused++;
                guestWarnings.warn("virtio-vsock: {} connections open, closing a new host connection for port {}",
                        connections.size(), Integer.toUnsignedString(guestPort));
                s.close();
                continue;
            }
            int local = freeLocalPort(guestPort);
            add(VsockConnection.fromHost(local, guestPort, s, reactor, this::changed, config.bufAlloc(),
                    config.listenRetryMillis()));
        }
    }

    private int freeLocalPort(int guestPort) {
        while (true) {
            int p = nextLocalPort;
            nextLocalPort = nextLocalPort == -2 ? FIRST_LOCAL_PORT : nextLocalPort + 1; // never VMADDR_PORT_ANY
            if (!connections.containsKey(VsockConnection.key(p, guestPort))) {
                return p;
            }
        }
    }

    private void add(VsockConnection c) {
        connections.put(c.key, c);
        try {
            c.attach(reactor.watch(c.stream().fd(), c.desiredInterest(), events -> {
                c.onHost(events);
                changed(c);
            }));
        } catch (RuntimeException e) {
            connections.remove(c.key);
            c.release();
            throw e;
        }
        changed(c);
    }

    /** After anything happened to {@code c}: remove it when it ended, else update its watch and the rx queue. */
    private void changed(VsockConnection c) {
        if (connections.get(c.key) != c) {
            return; // a timer of a connection already gone
        }
        if (c.end() != VsockConnection.End.NONE) {
            connections.remove(c.key);
            if (c.queued) {
                // Out of the rx queue now, not when the guest next posts buffers: a guest that posts none while it
                // opens and resets connections would otherwise grow the queue (and keep every ended one) forever.
                rxQueue.remove(c); // identity: connections do not override equals
                c.queued = false;
            }
            setupRx.remove(c);
            c.release();
            if (c.end() == VsockConnection.End.RESET) {
                queueControl(c.resetHeader());
            }
            return;
        }
        c.applyInterest();
        if ((c.pending() & VsockConnection.P_SETUP) != 0) {
            setupRx.add(c);
        }
        if (c.pending() != 0 && !c.queued) {
            c.queued = true;
            rxQueue.add(c);
        }
    }

    /** Whether the guest is owed packets (it may still get none: a connection may wait for credit). */
    public boolean hasRx() { return !controlRx.isEmpty() || !rxQueue.isEmpty() || (tsi != null && tsi.hasRx()); }

    /**
     * The next packet for the guest, with up to {@code maxPayload} bytes of data in {@code payload[0..len)}; null
     * when none is ready. Connections take turns.
     */
    public VsockHeader nextRx(byte[] payload, int maxPayload) {
        if (!controlRx.isEmpty()) {
            return controlRx.poll();
        }
        while (!setupRx.isEmpty()) {
            Iterator<VsockConnection> first = setupRx.iterator();
            VsockConnection c = first.next();
            first.remove();
            if (connections.get(c.key) == c && (c.pending() & VsockConnection.P_SETUP) != 0) {
                VsockHeader h = c.nextRx(payload, 0); // REQUEST or RESPONSE: no data
                changed(c);
                if (h != null) {
                    return h;
                }
            }
        }
        if (tsi != null) {
            VsockHeader d = tsi.nextRx(payload, maxPayload);
            if (d != null) {
                return d;
            }
        }
        for (int turns = rxQueue.size(); turns > 0; turns--) {
            Iterator<VsockConnection> first = rxQueue.iterator();
            VsockConnection c = first.next();
            first.remove();
            c.queued = false;
            if (connections.get(c.key) != c) {
                continue;
            }
            VsockHeader h = c.nextRx(payload, maxPayload);
            changed(c);
            if (h != null) {
                return h;
            }
            if (!controlRx.isEmpty()) {
                return controlRx.poll();
            }
        }
        return null;
    }

    /** Whether the RST backlog is full: the device then leaves tx packets in their queue until rx drains. */
    public boolean txPaused() {
        return controlRx.size() >= config.rxBacklog() || (tsi != null && tsi.backlogFull());
    }

    public int connectionCount() { return connections.size(); }

    /** Connections waiting in the rx queue for the guest's buffers (tests). */
    int queuedConnections() { return rxQueue.size(); }

    /** Guest data waiting for host sockets, all connections together (tests). */
    long bufferedToHost() {
        long n = 0;
        for (VsockConnection c : connections.values()) {
            n += c.bufferedToHost();
        }
        return n;
    }

    /** The heap that guest data waiting for host sockets takes, all connections together (tests). */
    long heldToHostBytes() {
        long n = 0;
        for (VsockConnection c : connections.values()) {
            n += c.heldToHostBytes();
        }
        return n;
    }

    /** Packets dropped: wrongly addressed, unparseable, or (never with a well-behaved device) over the backlog. */
    public long droppedPackets() { return dropped; }

    /** Connections refused for the connection cap. */
    public long refusedConnections() { return refused; }

    /** The muxer's state, one line per connection, for a diagnostic dump ({@code -Djkrun.vsock.dumpSeconds}). */
    public String describe() {
        StringBuilder b = new StringBuilder();
        b.append(connections.size()).append(" connections, ").append(rxQueue.size()).append(" queued for rx, ")
                .append(controlRx.size()).append(" control packets, dropped ").append(dropped).append(", refused ")
                .append(refused);
        for (VsockConnection c : connections.values()) {
            b.append("\n  ").append(c.describe());
        }
        return b.toString();
    }

    /** Resets every connection (telling the guest) as a device reset does; listeners stay. */
    public void resetAll() {
        for (VsockConnection c : new ArrayList<>(connections.values())) {
            c.reset();
            changed(c);
        }
    }

    /** Closes every host socket, and every listener (removing its socket node). Idempotent. */
    @Override
    public void close() {
        closed = true;
        if (tsi != null) {
            tsi.close();
        }
        for (VsockConnection c : connections.values()) {
            c.release();
        }
        connections.clear();
        rxQueue.clear();
        setupRx.clear();
        controlRx.clear();
        for (Reactor.Watch w : listenerWatches) {
            w.close();
        }
        listenerWatches.clear();
        for (HostListener l : listeners) {
            l.close();
        }
        listeners.clear();
        guestWarnings.flush();
    }
}
