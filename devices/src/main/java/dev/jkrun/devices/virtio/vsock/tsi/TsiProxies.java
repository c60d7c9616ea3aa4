package dev.jkrun.devices.virtio.vsock.tsi;

import static dev.jkrun.devices.virtio.vsock.tsi.TsiMessages.DEFAULT_PORT;

import dev.jkrun.devices.RateLimitedLog;
import dev.jkrun.devices.virtio.vsock.Reactor;
import dev.jkrun.devices.virtio.vsock.VsockHeader;
import dev.jkrun.devices.virtio.vsock.host.HostStream;
import dev.jkrun.devices.virtio.vsock.host.SocketStream;
import dev.jkrun.libc.Errno;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.SockAddr;
import dev.jkrun.libc.Sockets;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The host side of TSI (libkrun's {@code muxer.rs} control dispatch, {@code tsi_stream.rs}, {@code tsi_dgram.rs}):
 * serves the guest's control DGRAMs, holds one proxy per guest TSI socket, and hands stream data to the vsock muxer
 * as ordinary {@code VsockConnection}s (so credit, SHUTDOWN and RST are the muxer's, not duplicated here). Replies
 * and received datagrams wait here for rx buffers; every host resource is capped by {@link TsiConfig}. Nothing the
 * guest sends makes it throw. Runs on the muxer's thread.
 */
public final class TsiProxies implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(TsiProxies.class);
    /** Connections accepted per readiness event of a published listener. */
    static final int ACCEPTS_PER_EVENT = 64;
    /** Datagrams tried per rx call that the outbound policy drops, so one flooded socket cannot stall rx. */
    static final int DROPS_PER_RX = 16;
    /** Proxies refused for the cap that CONNECT/LISTEN still answer with ENOBUFS (then they count as unknown). */
    static final int REFUSED_MEMORY = 256;
    private static final byte[] EMPTY = {};

    /** What TSI needs of the vsock muxer: streams to the guest. */
    public interface Streams {
        /**
         * A host connection accepted for the guest's vsock listener {@code guestPort}: the muxer REQUESTs it; runs
         * {@code onEstablished} at the guest's RESPONSE and {@code onReleased} when the connection is gone.
         *
         * @return the connection's host-side vsock port, or -1 when the muxer refused it (the stream is then closed)
         */
        int openToGuest(int guestPort, HostStream stream, Runnable onEstablished, Runnable onReleased);
    }

    /** A connected proxy's stream for the guest's REQUEST to port 620; {@code onReleased} when the connection ends. */
    public record Claim(HostStream stream, Runnable onReleased) {}

    /** A published listener, for the VMM to report (a guest listening on port 0 learns nothing of it otherwise). */
    public record Published(int guestPort, SockAddr host) {}

    private enum State { IDLE, CONNECTING, CONNECTED, CLAIMED, LISTENING, ACCEPTED }

    private final class Proxy {
        final long key;
        final int family;
        final int type;
        State state = State.IDLE;
        FileDescriptor fd;
        Reactor.Watch watch;
        /** The peer: a stream's connect destination or accepted client, a datagram proxy's connect destination. */
        SockAddr peer;
        int connectReplyPort;
        // listening streams
        int guestPort;
        int vmPort;
        SockAddr published;
        int pendingAccepts;
        int acceptWaiter = -1;
        // datagrams
        SockAddr sendTo;
        boolean bound;
        boolean queued;

        Proxy(long key, int family, int type) {
            this.key = key;
            this.family = family;
            this.type = type;
        }

        int svmPort() { return (int) (key >>> 32); }

        /** Closes the watch, then the socket (if this proxy still owns one). */
        void closeHost() {
            if (watch != null) {
                watch.close();
                watch = null;
            }
            if (fd != null) {
                fd.close();
                fd = null;
                hostFds--;
            }
        }
    }

    private record Reply(int srcPort, int dstPort, byte[] data) {}

    private final TsiConfig config;
    private final Reactor reactor;
    private final Streams streams;
    private final int replyBacklog;
    private final Map<Long, Proxy> proxies = new HashMap<>();
    private final ArrayDeque<Reply> replies = new ArrayDeque<>();
    private final ArrayDeque<Proxy> readable = new ArrayDeque<>();
    /** svm ports whose PROXY_CREATE the proxy cap refused, oldest first, bounded. */
    private final LinkedHashMap<Integer, Boolean> refusedCreates = new LinkedHashMap<>();
    private final RateLimitedLog guestWarnings = new RateLimitedLog(LOG, "tsi");
    private int hostFds;
    private long dropped;
    private long internalErrors;

    /**
     * @param replyBacklog replies waiting for rx buffers before {@link #backlogFull()} asks the device to stop taking
     *     tx packets (the vsock config's rxBacklog)
     */
    public TsiProxies(TsiConfig config, Reactor reactor, Streams streams, int replyBacklog) {
        if (!config.enabled()) {
            throw new IllegalArgumentException("tsi: scope is 0 (disabled)");
        }
        this.config = config;
        this.reactor = reactor;
        this.streams = streams;
        this.replyBacklog = replyBacklog;
    }

    static long key(int svmPort, int svmPeerPort) {
        return ((long) svmPort << 32) | Integer.toUnsignedLong(svmPeerPort);
    }

    // ---- the guest's DGRAMs -----------------------------------------------------------------------------------

    /** A DGRAM packet from the guest (addresses already checked by the muxer). */
    public void onDgram(VsockHeader h, byte[] payload) {
        if (h.op() != VsockHeader.OP_RW) {
            dropped++;
            return;
        }
        int src = h.srcPort();
        try {
            switch (h.dstPort()) {
                case TsiMessages.PROXY_CREATE -> create(payload);
                case TsiMessages.CONNECT -> connect(src, payload);
                case TsiMessages.GETNAME -> getname(src, payload);
                case TsiMessages.SENDTO_ADDR -> sendtoAddr(payload);
                case TsiMessages.SENDTO_DATA -> sendData(src, payload, true);
                case TsiMessages.LISTEN -> listen(src, payload);
                case TsiMessages.ACCEPT -> accept(src, payload);
                case TsiMessages.PROXY_RELEASE -> release(payload);
                default -> {
                    if (h.dstPort() == src) {
                        sendData(src, payload, false); // a connected TSI datagram socket: vsock DGRAM to (2, P)
                    } else {
                        dropped++;
                    }
                }
            }
        } catch (RuntimeException e) {
            // Not reached by design (the fuzz target fails on it); if a host call fails in a way not foreseen, the
            // device stays up and the guest's request is lost.
            internalErrors++;
            guestWarnings.warn("tsi: control message to port {} failed: {}", h.dstPort(), e.toString());
        }
    }

    private void reply(int srcPort, int dstPort, byte[] data) {
        if (replies.size() >= 2 * replyBacklog) {
            dropped++; // only when the device ignores backlogFull()
            return;
        }
        replies.add(new Reply(srcPort, dstPort, data));
    }

    private void create(byte[] payload) throws RuntimeException {
        TsiMessages.ProxyCreate req;
        try {
            req = TsiMessages.proxyCreate(payload);
        } catch (BadControlMessage e) {
            dropped++; // PROXY_CREATE has no reply
            return;
        }
        boolean inet = req.family() == SockAddr.AF_INET || req.family() == SockAddr.AF_INET6;
        boolean unix = req.family() == SockAddr.AF_UNIX;
        if ((inet && (config.scope() & TsiConfig.HIJACK_INET) == 0)
                || (unix && (config.scope() & TsiConfig.HIJACK_UNIX) == 0) || !(inet || unix)
                || (req.type() != TsiMessages.SOCK_STREAM && req.type() != TsiMessages.SOCK_DGRAM)) {
            LOG.debug("tsi: PROXY_CREATE of family {} type {} refused (scope {})", req.family(), req.type(),
                    config.scope());
            return; // as libkrun: silently, so CONNECT finds no proxy
        }
        long k = key(req.svmPort(), DEFAULT_PORT);
        Proxy old = proxies.remove(k);
        if (old != null) {
            drop(old); // the guest reused a port whose release we never saw
        }
        if (proxies.size() >= config.maxProxies()) {
            guestWarnings.warn("tsi: {} proxies open, refusing another", proxies.size());
            refusedCreates.put(req.svmPort(), Boolean.TRUE);
            if (refusedCreates.size() > REFUSED_MEMORY) {
                refusedCreates.remove(refusedCreates.keySet().iterator().next());
            }
            return;
        }
        refusedCreates.remove(req.svmPort());
        proxies.put(k, new Proxy(k, req.family(), req.type()));
    }

    /** The proxy a request names by svm_port, or null. */
    private Proxy created(int svmPort) { return proxies.get(key(svmPort, DEFAULT_PORT)); }

    /** The errno for a request naming no proxy: ENOBUFS when the cap refused it, else {@code otherwise}; EINVAL short. */
    private int missing(long svmPort, int otherwise) {
        if (svmPort < 0) {
            return Errno.EINVAL; // too short to name one
        }
        return refusedCreates.containsKey((int) svmPort) ? Sockets.ENOBUFS : otherwise;
    }

    private void connect(int src, byte[] payload) {
        long svm = TsiMessages.svmPort(payload);
        Proxy p = svm < 0 ? null : created((int) svm);
        if (p == null) {
            reply(TsiMessages.CONNECT, src, TsiMessages.result(-missing(svm, Sockets.ECONNREFUSED)));
            return;
        }
        int result;
        try {
            result = startConnect(p, TsiMessages.addressed(payload, p.family).addr(), src);
        } catch (BadControlMessage e) {
            LOG.debug("tsi: CONNECT: {}", e.getMessage());
            result = -e.errno();
        }
        if (result != 1) {
            reply(TsiMessages.CONNECT, src, TsiMessages.result(result));
        }
    }

    /** 0 or -errno to answer now, 1 when the answer follows the connect's completion. */
    private int startConnect(Proxy p, SockAddr to, int replyPort) {
        switch (p.state) {
            case CONNECTING -> { return -Sockets.EALREADY; }
            case CONNECTED, CLAIMED, ACCEPTED -> { return -Sockets.EISCONN; }
            case LISTENING -> { return -Errno.EINVAL; }
            default -> { }
        }
        if (!allowed(to)) {
            guestWarnings.warn("tsi: connect to {} refused by the outbound policy", to);
            return -Errno.EPERM;
        }
        int err = ensureSocket(p);
        if (err != 0) {
            return -err;
        }
        boolean done;
        try {
            done = Sockets.connect(p.fd, to);
        } catch (NativeCallException e) {
            if (p.type == TsiMessages.SOCK_STREAM) {
                p.closeHost(); // a failed stream connect leaves the socket unusable: the next try gets a fresh one
            }
            return -e.errno();
        }
        p.peer = to;
        if (p.type == TsiMessages.SOCK_DGRAM) {
            p.bound = true;
            watchIn(p);
            return 0;
        }
        if (done) {
            p.state = State.CONNECTED;
            return 0;
        }
        p.state = State.CONNECTING;
        p.connectReplyPort = replyPort;
        p.watch = reactor.watch(p.fd.raw(), Reactor.OUT, events -> connectDone(p));
        return 1;
    }

    private void connectDone(Proxy p) {
        if (p.state != State.CONNECTING || proxies.get(p.key) != p) {
            return;
        }
        int err;
        try {
            err = Sockets.soError(p.fd);
        } catch (NativeCallException e) {
            err = e.errno();
        }
        p.watch.close();
        p.watch = null;
        if (err == 0) {
            p.state = State.CONNECTED;
        } else {
            p.state = State.IDLE;
            p.peer = null;
            p.closeHost();
        }
        reply(TsiMessages.CONNECT, p.connectReplyPort, TsiMessages.result(-err));
    }

    private boolean allowed(SockAddr a) {
        InetAddress ip = a.ip();
        return ip == null || config.outbound().allows(ip, a.port()); // AF_UNIX: the scope flag decided
    }

    /** Opens the proxy's host socket if it has none: 0, or the errno (EMFILE for the cap). */
    private int ensureSocket(Proxy p) {
        if (p.fd != null) {
            return 0;
        }
        if (hostFds >= config.maxHostFds()) {
            guestWarnings.warn("tsi: {} host sockets open, refusing another", hostFds);
            return Sockets.EMFILE;
        }
        try {
            p.fd = Sockets.socket(p.family, p.type == TsiMessages.SOCK_STREAM ? Sockets.SOCK_STREAM : Sockets.SOCK_DGRAM);
        } catch (NativeCallException e) {
            return e.errno();
        }
        hostFds++;
        return 0;
    }

    /** The guest's REQUEST from {@code svmPort} to port 620: the connected proxy's stream, or null (RST). */
    public Claim claim(int svmPort) {
        Proxy p = created(svmPort);
        if (p == null || p.state != State.CONNECTED || p.type != TsiMessages.SOCK_STREAM) {
            return null;
        }
        p.state = State.CLAIMED;
        FileDescriptor fd = p.fd;
        p.fd = null; // the connection owns it now; it stays counted until the connection is released
        return new Claim(new SocketStream(fd), () -> hostFds--);
    }

    private void getname(int src, byte[] payload) {
        TsiMessages.Getname req;
        try {
            req = TsiMessages.getname(payload);
        } catch (BadControlMessage e) {
            reply(TsiMessages.GETNAME, src, TsiMessages.getnameReply(-e.errno(), null));
            return;
        }
        Proxy p = proxies.get(key(req.svmPort(), req.svmPeerPort()));
        SockAddr name = null;
        int result;
        if (p == null) {
            result = -Errno.EINVAL; // as libkrun
        } else if (!req.peer()) {
            // The stock guest answers getsockname() itself; a host-side name is only ours to tell for a published
            // listener (the host port a listen on port 0 got).
            name = p.published;
            result = name == null ? -Sockets.EOPNOTSUPP : 0;
        } else {
            name = p.peer;
            result = name != null && p.state != State.CONNECTING ? 0 : -Sockets.ENOTCONN;
        }
        reply(TsiMessages.GETNAME, src, TsiMessages.getnameReply(result, result == 0 ? name : null));
    }

    private void sendtoAddr(byte[] payload) {
        long svm = TsiMessages.svmPort(payload);
        Proxy p = svm < 0 ? null : created((int) svm);
        if (p == null || p.type != TsiMessages.SOCK_DGRAM) {
            dropped++;
            return;
        }
        SockAddr to;
        try {
            to = TsiMessages.addressed(payload, p.family).addr();
        } catch (BadControlMessage e) {
            LOG.debug("tsi: SENDTO_ADDR: {}", e.getMessage());
            p.sendTo = null; // what follows must not go to the previous destination
            dropped++;
            return;
        }
        if (!allowed(to)) {
            guestWarnings.warn("tsi: datagrams to {} refused by the outbound policy", to);
            p.sendTo = null;
            return;
        }
        if (ensureSocket(p) != 0) {
            p.sendTo = null;
            return;
        }
        if (!p.bound) {
            try {
                Sockets.bind(p.fd, p.family == SockAddr.AF_UNIX ? SockAddr.ofRaw(new byte[] {SockAddr.AF_UNIX, 0})
                        : SockAddr.anyInet(p.family)); // replies need a bound port before the first send
            } catch (NativeCallException e) {
                LOG.debug("tsi: SENDTO_ADDR: bind: {}", e.getMessage());
                p.sendTo = null;
                return;
            }
            p.bound = true;
            watchIn(p);
        }
        p.sendTo = to;
    }

    private void sendData(int src, byte[] payload, boolean toStored) {
        Proxy p = created(src);
        if (p == null || p.type != TsiMessages.SOCK_DGRAM || p.fd == null || (toStored ? p.sendTo == null
                : p.peer == null)) {
            dropped++;
            return;
        }
        try {
            ByteBuffer b = ByteBuffer.wrap(payload);
            int n = toStored ? Sockets.sendTo(p.fd, b, p.sendTo) : Sockets.write(p.fd, b);
            if (n == 0 && payload.length > 0) {
                dropped++; // socket buffer full: UDP may drop
            }
        } catch (NativeCallException e) {
            LOG.debug("tsi: datagram from guest port {}: {}", Integer.toUnsignedString(src), e.getMessage());
            dropped++;
        }
    }

    private void listen(int src, byte[] payload) {
        long svm = TsiMessages.svmPort(payload);
        Proxy p = svm < 0 ? null : created((int) svm);
        int result;
        if (p == null) {
            result = -missing(svm, Errno.EPERM); // EPERM: the guest listens inside instead (as libkrun)
        } else {
            try {
                result = startListen(p, TsiMessages.listen(payload, p.family));
            } catch (BadControlMessage e) {
                LOG.debug("tsi: LISTEN: {}", e.getMessage());
                result = -e.errno();
            }
        }
        reply(TsiMessages.LISTEN, src, TsiMessages.result(result));
    }

    private int startListen(Proxy p, TsiMessages.Listen req) {
        if (p.type != TsiMessages.SOCK_STREAM) {
            return -Sockets.EOPNOTSUPP;
        }
        if (p.state == State.LISTENING) {
            return 0;
        }
        if (p.state != State.IDLE) {
            return -Errno.EINVAL;
        }
        if (p.family == SockAddr.AF_UNIX) {
            return -Errno.EPERM; // never published: a guest's unix socket stays the guest's
        }
        InetAddress ip = req.addr().ip();
        int guestPort = req.addr().port();
        if (ip.isLoopbackAddress()) {
            return -Sockets.EADDRNOTAVAIL; // the guest's own loopback is never exposed on the host
        }
        int hostPort;
        if (guestPort == 0) {
            if (!config.exposeEphemeral()) {
                return -Errno.EPERM;
            }
            hostPort = 0;
        } else {
            hostPort = config.hostPort(guestPort);
            if (hostPort < 0) {
                LOG.debug("tsi: guest port {} is not published; the guest listens inside", guestPort);
                return -Errno.EPERM;
            }
        }
        InetAddress bindIp = bindAddress(ip, p.family);
        if (bindIp == null) {
            return -Sockets.EADDRNOTAVAIL;
        }
        int err = ensureSocket(p);
        if (err != 0) {
            return -err;
        }
        try {
            // SO_REUSEADDR only lets a restarted VM rebind past TIME_WAIT; never SO_REUSEPORT, so a second VM
            // mapping the same host port gets EADDRINUSE instead of a share of the connections.
            Sockets.setIntOption(p.fd, Sockets.SOL_SOCKET, Sockets.SO_REUSEADDR, 1);
            Sockets.bind(p.fd, SockAddr.inet(bindIp, hostPort));
            Sockets.listen(p.fd, Math.max(1, Math.min(req.backlog(), Sockets.SOMAXCONN)));
            p.published = Sockets.localAddress(p.fd);
        } catch (NativeCallException e) {
            p.closeHost();
            guestWarnings.warn("tsi: publishing guest port {} on host port {} failed: {}", guestPort, hostPort,
                    e.getMessage());
            return -e.errno();
        }
        p.state = State.LISTENING;
        p.guestPort = guestPort;
        p.vmPort = req.vmPort();
        p.watch = reactor.watch(p.fd.raw(), Reactor.IN, events -> acceptHost(p));
        LOG.info("tsi: guest port {} published on host {}", guestPort, p.published);
        return 0;
    }

    /** The host address a published listener binds: {@link TsiConfig#listenHost()}, else the guest's. */
    private InetAddress bindAddress(InetAddress guestIp, int family) {
        if (config.listenHost().isEmpty()) {
            return guestIp;
        }
        InetAddress h = config.listenHost().get();
        boolean v6 = family == SockAddr.AF_INET6;
        if (v6 == (h instanceof Inet6Address)) {
            return h;
        }
        return h.isLoopbackAddress() ? loopback(v6) : null; // a listen host of the other family only
    }

    private static InetAddress loopback(boolean v6) {
        try {
            return v6 ? InetAddress.getByName("::1") : InetAddress.getByName("127.0.0.1");
        } catch (java.net.UnknownHostException e) {
            throw new IllegalStateException(e); // literals: not reached
        }
    }

    private void acceptHost(Proxy listener) {
        for (int i = 0; i < ACCEPTS_PER_EVENT && listener.state == State.LISTENING; i++) {
            FileDescriptor s;
            try {
                s = Sockets.accept(listener.fd);
            } catch (NativeCallException e) {
                guestWarnings.warn("tsi: accept on {} failed: {}", listener.published, e.getMessage());
                return; // level-triggered: the next event tries again
            }
            if (s == null) {
                return;
            }
            if (hostFds >= config.maxHostFds() || proxies.size() >= config.maxProxies()) {
                guestWarnings.warn("tsi: at the cap ({} host sockets, {} proxies), closing a client of {}", hostFds,
                        proxies.size(), listener.published);
                s.close();
                continue;
            }
            SockAddr client;
            try {
                client = Sockets.peerAddress(s);
            } catch (NativeCallException e) {
                s.close(); // gone already
                continue;
            }
            hostFds++;
            Proxy[] accepted = new Proxy[1];
            long listenerKey = listener.key;
            int local = streams.openToGuest(listener.vmPort, new SocketStream(s), () -> {
                Proxy l = proxies.get(listenerKey);
                if (l != null && l.state == State.LISTENING) {
                    acceptReady(l);
                }
            }, () -> {
                hostFds--;
                if (accepted[0] != null) {
                    proxies.remove(accepted[0].key, accepted[0]);
                }
            });
            if (local == -1) {
                continue; // refused: the muxer closed it and ran onReleased
            }
            Proxy a = new Proxy(key(listener.vmPort, local), listener.family, TsiMessages.SOCK_STREAM);
            a.state = State.ACCEPTED;
            a.peer = client;
            accepted[0] = a;
            proxies.put(a.key, a);
        }
    }

    /** The guest's vsock listener took a connection: answer a waiting TSI_ACCEPT, or count it for the next. */
    private void acceptReady(Proxy l) {
        if (l.acceptWaiter >= 0) {
            reply(TsiMessages.ACCEPT, l.acceptWaiter, TsiMessages.result(0));
            l.acceptWaiter = -1;
        } else {
            l.pendingAccepts++;
        }
    }

    private void accept(int src, byte[] payload) {
        TsiMessages.Accept req;
        try {
            req = TsiMessages.accept(payload);
        } catch (BadControlMessage e) {
            reply(TsiMessages.ACCEPT, src, TsiMessages.result(-e.errno()));
            return;
        }
        Proxy p = created(req.svmPort());
        if (p == null || p.state != State.LISTENING) {
            reply(TsiMessages.ACCEPT, src, TsiMessages.result(-Errno.EINVAL));
        } else if (p.pendingAccepts > 0) {
            p.pendingAccepts--;
            reply(TsiMessages.ACCEPT, src, TsiMessages.result(0));
        } else if (req.nonBlocking()) {
            reply(TsiMessages.ACCEPT, src, TsiMessages.result(-Errno.EAGAIN));
        } else {
            p.acceptWaiter = src; // answered when the next connection is established
        }
    }

    private void release(byte[] payload) {
        TsiMessages.Release req;
        try {
            req = TsiMessages.release(payload);
        } catch (BadControlMessage e) {
            dropped++;
            return;
        }
        Proxy p = proxies.remove(key(req.svmPort(), req.svmPeerPort()));
        if (p != null) {
            // At once, listening or not: a proxy's stream is a vsock connection with its own end (SHUTDOWN/RST),
            // so nothing needs libkrun's 5 s grace.
            drop(p);
        }
    }

    private void drop(Proxy p) {
        p.closeHost();
        p.state = State.IDLE;
        p.queued = false;
        readable.remove(p);
    }

    // ---- datagrams from the host --------------------------------------------------------------------------------

    private void watchIn(Proxy p) {
        if (p.watch == null) {
            p.watch = reactor.watch(p.fd.raw(), Reactor.IN, events -> {
                if (proxies.get(p.key) == p && !p.queued) {
                    p.queued = true;
                    p.watch.interest(0); // until rx takes a datagram: nothing is buffered here
                    readable.add(p);
                }
            });
        }
    }

    // ---- to the guest -----------------------------------------------------------------------------------------

    public boolean hasRx() { return !replies.isEmpty() || !readable.isEmpty(); }

    /** Whether replies pile up: the device then stops taking tx packets until rx drains. */
    public boolean backlogFull() { return replies.size() >= replyBacklog; }

    /**
     * The next DGRAM for the guest with its payload in {@code payload[0..len)}, at most {@code maxPayload} bytes
     * (a reply is cut to that; libkrun sets len to the whole rx buffer, the guest reads only the struct); null when
     * nothing is ready.
     */
    public VsockHeader nextRx(byte[] payload, int maxPayload) {
        Reply r = replies.poll();
        if (r != null) {
            int n = Math.min(r.data().length, maxPayload);
            System.arraycopy(r.data(), 0, payload, 0, n);
            return dgram(r.srcPort(), r.dstPort(), n);
        }
        for (int tries = 0; tries < DROPS_PER_RX && !readable.isEmpty(); tries++) {
            Proxy p = readable.peek();
            Sockets.Datagram d;
            try {
                d = Sockets.receiveFrom(p.fd, ByteBuffer.wrap(payload, 0, Math.min(maxPayload, payload.length)));
            } catch (NativeCallException e) {
                d = null; // e.g. ICMP port unreachable on a connected socket: nothing to deliver
            }
            if (d == null) {
                rearm(readable.poll());
                continue;
            }
            if (d.from() != null && !allowed(d.from())) {
                dropped++;
                continue;
            }
            readable.poll();
            rearm(p);
            // As libkrun: from port 0 to the proxy's vsock port; the guest reports the sendto/connect address.
            return dgram(0, p.svmPort(), Math.min(d.length(), maxPayload));
        }
        return null;
    }

    private void rearm(Proxy p) {
        p.queued = false;
        if (p.watch != null) {
            p.watch.interest(Reactor.IN);
        }
    }

    private static VsockHeader dgram(int src, int dst, int len) {
        return new VsockHeader(VsockHeader.HOST_CID, VsockHeader.GUEST_CID, src, dst, len, VsockHeader.TYPE_DGRAM,
                VsockHeader.OP_RW, 0, 0, 0);
    }

    // ---- accounting -------------------------------------------------------------------------------------------

    public int proxyCount() { return proxies.size(); }

    /** Host sockets TSI holds: proxies' and the streams it handed to the muxer. */
    public int hostFdCount() { return hostFds; }

    public long droppedMessages() { return dropped; }

    /** Control messages that failed unexpectedly (a bug: tests and the fuzz target require 0). */
    public long internalErrors() { return internalErrors; }

    /** The published listeners and the host addresses they got. */
    public List<Published> published() {
        List<Published> l = new ArrayList<>();
        for (Proxy p : proxies.values()) {
            if (p.state == State.LISTENING) {
                l.add(new Published(p.guestPort, p.published));
            }
        }
        return l;
    }

    /** Closes every proxy's socket; streams handed to the muxer are the muxer's to close. */
    @Override
    public void close() {
        for (Proxy p : proxies.values()) {
            p.closeHost();
        }
        proxies.clear();
        readable.clear();
        replies.clear();
        guestWarnings.flush();
    }
}
