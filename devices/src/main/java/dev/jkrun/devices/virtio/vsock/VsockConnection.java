package dev.jkrun.devices.virtio.vsock;

import static dev.jkrun.devices.virtio.vsock.VsockHeader.OP_CREDIT_REQUEST;
import static dev.jkrun.devices.virtio.vsock.VsockHeader.OP_CREDIT_UPDATE;
import static dev.jkrun.devices.virtio.vsock.VsockHeader.OP_REQUEST;
import static dev.jkrun.devices.virtio.vsock.VsockHeader.OP_RESPONSE;
import static dev.jkrun.devices.virtio.vsock.VsockHeader.OP_RST;
import static dev.jkrun.devices.virtio.vsock.VsockHeader.OP_RW;
import static dev.jkrun.devices.virtio.vsock.VsockHeader.OP_SHUTDOWN;
import static dev.jkrun.devices.virtio.vsock.VsockHeader.SHUTDOWN_RCV;
import static dev.jkrun.devices.virtio.vsock.VsockHeader.SHUTDOWN_SEND;

import dev.jkrun.devices.virtio.vsock.host.HostStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.function.Consumer;

/**
 * One stream connection between a guest vsock socket and a host socket: its state machine and both credit windows
 * (virtio 1.2 section 5.10.6.3). Host-to-guest data is read from the host socket straight into the guest's rx
 * buffer, only as much as the guest's advertised credit allows, so nothing is buffered that way; guest-to-host data
 * the host socket does not take at once waits here, at most {@code bufAlloc} bytes, the credit we advertise.
 *
 * <p>What this connection owes the guest is a set of pending packet kinds, not a queue of packets: memory per
 * connection stays bounded whatever the guest or host does. Runs on the muxer's thread only.
 */
final class VsockConnection {
    enum State {
        /** The guest asked (REQUEST); the host socket's connect is in progress. */
        CONNECTING,
        /** A host client connected to a listening bridge; our REQUEST to the guest awaits its RESPONSE. */
        REQUESTING,
        ESTABLISHED
    }

    /** How a connection ended: not yet, silently (the guest reset it), or with an RST owed to the guest. */
    enum End { NONE, SILENT, RESET }

    static final int P_REQUEST = 1, P_RESPONSE = 2, P_RW = 4, P_CREDIT_UPDATE = 8, P_CREDIT_REQUEST = 16,
            P_SHUTDOWN = 32;
    /** What sets a connection up: sent before anyone's data. */
    static final int P_SETUP = P_REQUEST | P_RESPONSE;
    /** REQUEST retries to a guest that is not listening yet (libkrun waits ~5 s here, its issue #684). */
    static final long RETRY_FIRST_MILLIS = 10, RETRY_MAX_MILLIS = 200;
    /** Guest data smaller than this that waits for the host socket is gathered into chunks of this size. */
    static final int TO_HOST_CHUNK = 4096;

    final int localPort;
    final int peerPort;
    final long key;
    private final HostStream stream;
    private final Reactor reactor;
    /** The muxer's look at this connection after a timer fired. */
    private final Consumer<VsockConnection> changed;
    private final int bufAlloc;
    private final int creditThreshold;
    private State state;
    private End end = End.NONE;
    private int pending;
    private Reactor.Watch watch;
    private int interest = -1;
    /** In the muxer's rx queue. */
    boolean queued;
    /** TSI's hooks: the guest answered our REQUEST; the connection is gone (its host socket closed). */
    Runnable onEstablished, onReleased;

    // Guest to host: bytes received from the guest, bytes written to the host socket, fwd_cnt last told the guest.
    private int rxCnt;
    private int fwdCnt;
    private int lastFwdCntSent;
    private final ArrayDeque<ByteBuffer> toHost = new ArrayDeque<>();

    // Host to guest: the guest's window and what we sent into it.
    private int peerBufAlloc;
    private int peerFwdCnt;
    private int txCnt;
    private boolean creditRequested;

    // Shutdown: what the guest said, what the host did.
    private boolean peerNoRecv;
    private boolean peerNoSend;
    private boolean hostOutputShut;
    private boolean hostEof;
    private boolean hostHup;
    private int shutdownFlags;

    // Listening bridges: REQUEST retries.
    private boolean requestDelivered;
    private long retryDelay = RETRY_FIRST_MILLIS;
    private Reactor.Timer retryTimer;
    private Reactor.Timer deadlineTimer;

    private VsockConnection(int localPort, int peerPort, HostStream stream, Reactor reactor,
                            Consumer<VsockConnection> changed, int bufAlloc, State state) {
        this.localPort = localPort;
        this.peerPort = peerPort;
        this.key = key(localPort, peerPort);
        this.stream = stream;
        this.reactor = reactor;
        this.changed = changed;
        this.bufAlloc = bufAlloc;
        this.creditThreshold = bufAlloc / 2;
        this.state = state;
    }

    static long key(int localPort, int peerPort) {
        return ((long) localPort << 32) | Integer.toUnsignedLong(peerPort);
    }

    /** The guest's REQUEST to a bridged port, whose host socket is {@code connected} or still connecting. */
    static VsockConnection fromGuest(VsockHeader request, HostStream stream, boolean connected, Reactor reactor,
                                     Consumer<VsockConnection> changed, int bufAlloc) {
        VsockConnection c = new VsockConnection(request.dstPort(), request.srcPort(), stream, reactor, changed,
                bufAlloc, connected ? State.ESTABLISHED : State.CONNECTING);
        c.peerCredit(request);
        if (connected) {
            c.pending = P_RESPONSE;
        }
        return c;
    }

    /**
     * A host client accepted on a listening bridge: REQUEST(local → guest port), repeated while the guest answers
     * RST (not listening yet), for at most {@code retryWindowMillis}.
     */
    static VsockConnection fromHost(int localPort, int guestPort, HostStream stream, Reactor reactor,
                                    Consumer<VsockConnection> changed, int bufAlloc, long retryWindowMillis) {
        VsockConnection c = new VsockConnection(localPort, guestPort, stream, reactor, changed, bufAlloc,
                State.REQUESTING);
        c.pending = P_REQUEST;
        c.deadlineTimer = reactor.schedule(retryWindowMillis, () -> {
            c.deadlineTimer = null;
            c.deadlinePassed();
            changed.accept(c);
        });
        return c;
    }

    State state() { return state; }

    End end() { return end; }

    int pending() { return pending; }

    HostStream stream() { return stream; }

    /** Guest data waiting for the host socket. */
    int bufferedToHost() {
        int n = 0;
        for (ByteBuffer b : toHost) {
            n += b.remaining();
        }
        return n;
    }

    /** The heap {@link #bufferedToHost()} takes: each buffer's array plus ~64 bytes of objects around it. */
    long heldToHostBytes() {
        long n = 0;
        for (ByteBuffer b : toHost) {
            n += b.capacity() + 64;
        }
        return n;
    }

    void attach(Reactor.Watch w) {
        this.watch = w;
        this.interest = -1;
    }

    /** The muxer's view after every event: stop watching a hung-up socket, else watch what we can act on. */
    void applyInterest() {
        if (watch == null) {
            return;
        }
        if (hostHup) {
            // HUP is reported whatever the interest: a level-triggered loop would spin on it. The socket is now
            // always readable (data or end of stream), so reads follow credit alone (P_RW).
            watch.close();
            watch = null;
            return;
        }
        int want = desiredInterest();
        if (want != interest) {
            interest = want;
            watch.interest(want);
        }
    }

    int desiredInterest() {
        return switch (state) {
            case CONNECTING -> Reactor.OUT;
            case REQUESTING -> 0;
            case ESTABLISHED -> (canRead() && (pending & P_RW) == 0 ? Reactor.IN : 0)
                    | (toHost.isEmpty() ? 0 : Reactor.OUT);
        };
    }

    private boolean canRead() { return !hostEof && !peerNoRecv && peerCredit() > 0; }

    /** The guest's free receive space for this connection (5.10.6.3), 0 when it is full or nonsense. */
    int peerCredit() {
        long inFlight = Integer.toUnsignedLong(txCnt - peerFwdCnt);
        long credit = Integer.toUnsignedLong(peerBufAlloc) - inFlight;
        return (int) Math.max(0, Math.min(credit, Integer.MAX_VALUE));
    }

    private void peerCredit(VsockHeader h) {
        peerBufAlloc = h.bufAlloc();
        peerFwdCnt = h.fwdCnt();
        if (peerCredit() > 0) {
            creditRequested = false;
            if (state == State.ESTABLISHED && hostHup && canRead()) {
                pending |= P_RW;
            }
        }
    }

    // ---- from the guest ---------------------------------------------------------------------------------------

    /** A packet from the guest addressed to this connection. */
    void onGuest(VsockHeader h, byte[] payload) {
        if (end != End.NONE) {
            return;
        }
        if (h.op() == OP_RST) {
            if (state == State.REQUESTING) {
                guestNotListening();
            } else {
                end(End.SILENT);
            }
            return;
        }
        peerCredit(h);
        switch (state) {
            case CONNECTING -> end(End.RESET); // the guest must wait for our RESPONSE
            case REQUESTING -> {
                if (h.op() == OP_RESPONSE) {
                    established();
                } else {
                    end(End.RESET);
                }
            }
            case ESTABLISHED -> {
                switch (h.op()) {
                    case OP_RW -> fromGuest(payload);
                    case OP_CREDIT_UPDATE -> { }
                    case OP_CREDIT_REQUEST -> pending |= P_CREDIT_UPDATE;
                    case OP_SHUTDOWN -> guestShutdown(h.flags());
                    default -> end(End.RESET); // REQUEST or RESPONSE on a live connection, or an unknown op
                }
            }
        }
    }

    private void established() {
        state = State.ESTABLISHED;
        pending &= ~P_REQUEST;
        cancelTimers();
        if (onEstablished != null) {
            onEstablished.run();
        }
        if (hostHup && canRead()) {
            pending |= P_RW;
        }
    }

    /**
     * RST to our REQUEST: the guest does not listen on the port (yet). Ask again after a short, growing delay
     * (until the deadline timer gives up) instead of making the host client wait seconds.
     */
    private void guestNotListening() {
        requestDelivered = false;
        if ((pending & P_REQUEST) != 0 || retryTimer != null) {
            return; // a retry is already on its way
        }
        long delay = retryDelay;
        retryDelay = Math.min(retryDelay * 2, RETRY_MAX_MILLIS);
        retryTimer = reactor.schedule(delay, () -> {
            retryTimer = null;
            if (state == State.REQUESTING && end == End.NONE) {
                pending |= P_REQUEST;
            }
            changed.accept(this);
        });
    }

    /** The retry window passed without a RESPONSE: give up (with RST when the guest may hold our REQUEST). */
    private void deadlinePassed() {
        if (state == State.REQUESTING && end == End.NONE) {
            end(requestDelivered ? End.RESET : End.SILENT);
        }
    }

    private void fromGuest(byte[] payload) {
        if (payload.length == 0) {
            return;
        }
        // 5.10.6.3: the guest may have at most buf_alloc bytes beyond the fwd_cnt it was last told.
        long inFlight = Integer.toUnsignedLong(rxCnt + payload.length - lastFwdCntSent);
        if (peerNoSend || hostOutputShut || inFlight > bufAlloc) {
            end(End.RESET);
            return;
        }
        rxCnt += payload.length;
        ByteBuffer b = ByteBuffer.wrap(payload);
        if (toHost.isEmpty()) {
            try {
                fwdCnt += stream.write(b);
            } catch (IOException e) {
                end(End.RESET);
                return;
            }
        }
        if (b.hasRemaining()) {
            queueToHost(payload, b.position());
        }
        creditUpdateIfDue();
    }

    /**
     * Keeps {@code payload[off..]} for the host socket. Small payloads are copied into {@link #TO_HOST_CHUNK}-byte
     * chunks, so what is held stays within about twice the bytes buffered however small the guest's packets: a
     * buffer object per one-byte packet would hold some 80 bytes of heap per byte of our credit.
     */
    private void queueToHost(byte[] payload, int off) {
        int n = payload.length - off;
        ByteBuffer tail = toHost.peekLast();
        if (tail != null && tail.capacity() - tail.limit() >= n) {
            System.arraycopy(payload, off, tail.array(), tail.arrayOffset() + tail.limit(), n);
            tail.limit(tail.limit() + n);
        } else if (n >= TO_HOST_CHUNK) {
            toHost.add(ByteBuffer.wrap(payload, off, n)); // as large as a chunk: kept as it is
        } else {
            toHost.add(ByteBuffer.allocate(TO_HOST_CHUNK).put(payload, off, n).flip());
        }
    }

    private void guestShutdown(int flags) {
        if ((flags & SHUTDOWN_RCV) != 0 && !peerNoRecv) {
            peerNoRecv = true;
            pending &= ~(P_RW | P_CREDIT_REQUEST);
            try {
                stream.shutdownInput();
            } catch (IOException ignored) {
                // the host socket is gone already: reads end anyway
            }
        }
        if ((flags & SHUTDOWN_SEND) != 0) {
            peerNoSend = true;
        }
        afterFlush();
    }

    /** Once guest data is all with the host: pass on the guest's SEND shutdown; both shut down ends it (RST). */
    private void afterFlush() {
        if (!toHost.isEmpty()) {
            return;
        }
        if (peerNoSend && peerNoRecv) {
            end(End.RESET);
        } else if (peerNoSend && !hostOutputShut) {
            hostOutputShut = true;
            try {
                stream.shutdownOutput();
            } catch (IOException ignored) {
                // the host peer is gone: it sees the end of stream either way
            }
        }
    }

    private void creditUpdateIfDue() {
        if (Integer.toUnsignedLong(fwdCnt - lastFwdCntSent) >= creditThreshold) {
            pending |= P_CREDIT_UPDATE;
        }
    }

    // ---- from the host ----------------------------------------------------------------------------------------

    void onHost(int events) {
        if (end != End.NONE) {
            return;
        }
        if (state == State.CONNECTING) {
            if ((events & (Reactor.OUT | Reactor.ERR | Reactor.HUP)) != 0) {
                try {
                    stream.finishConnect();
                    state = State.ESTABLISHED;
                    pending |= P_RESPONSE;
                } catch (IOException e) {
                    end(End.RESET);
                }
            }
            return;
        }
        if ((events & Reactor.ERR) != 0) {
            end(state == State.REQUESTING && !requestDelivered ? End.SILENT : End.RESET);
            return;
        }
        if ((events & Reactor.OUT) != 0 || ((events & Reactor.HUP) != 0 && !toHost.isEmpty())) {
            flush();
            if (end != End.NONE) {
                return;
            }
        }
        if ((events & Reactor.IN) != 0 && state == State.ESTABLISHED && canRead()) {
            pending |= P_RW;
        }
        if ((events & Reactor.HUP) != 0) {
            hostHup = true;
            if (state == State.ESTABLISHED && canRead()) {
                pending |= P_RW;
            }
        }
    }

    private void flush() {
        while (!toHost.isEmpty()) {
            ByteBuffer b = toHost.peek();
            int n;
            try {
                n = stream.write(b);
            } catch (IOException e) {
                end(End.RESET);
                return;
            }
            fwdCnt += n;
            if (b.hasRemaining()) {
                break;
            }
            toHost.poll();
        }
        creditUpdateIfDue();
        afterFlush();
    }

    // ---- to the guest -----------------------------------------------------------------------------------------

    /**
     * The next packet this connection owes the guest, with at most {@code maxPayload} bytes of data read into
     * {@code payload}; null when it owes nothing now.
     */
    VsockHeader nextRx(byte[] payload, int maxPayload) {
        if (end != End.NONE) {
            return null;
        }
        if ((pending & P_REQUEST) != 0) {
            pending &= ~P_REQUEST;
            requestDelivered = true;
            return header(OP_REQUEST, 0, 0);
        }
        if ((pending & P_RESPONSE) != 0) {
            pending &= ~P_RESPONSE;
            return header(OP_RESPONSE, 0, 0);
        }
        if ((pending & P_RW) != 0 && maxPayload > 0) {
            VsockHeader rw = readHost(payload, maxPayload);
            if (rw != null || end != End.NONE) {
                return rw;
            }
        }
        if ((pending & P_CREDIT_UPDATE) != 0) {
            return header(OP_CREDIT_UPDATE, 0, 0);
        }
        if ((pending & P_CREDIT_REQUEST) != 0) {
            pending &= ~P_CREDIT_REQUEST;
            return header(OP_CREDIT_REQUEST, 0, 0);
        }
        if ((pending & P_SHUTDOWN) != 0) {
            pending &= ~P_SHUTDOWN;
            return header(OP_SHUTDOWN, shutdownFlags, 0);
        }
        return null;
    }

    private VsockHeader readHost(byte[] payload, int maxPayload) {
        int credit = peerCredit();
        if (credit == 0 || !canRead()) {
            pending &= ~P_RW;
            askForCredit();
            return null;
        }
        int want = Math.min(Math.min(maxPayload, credit), payload.length);
        int n;
        try {
            n = stream.read(ByteBuffer.wrap(payload, 0, want));
        } catch (IOException e) {
            end(End.RESET);
            return null;
        }
        if (n > 0) {
            txCnt += n;
            if (peerCredit() == 0) {
                pending &= ~P_RW;
                askForCredit();
            }
            return header(OP_RW, 0, n);
        }
        pending &= ~P_RW;
        if (n < 0) {
            // The host peer will send no more; after a hang-up it takes nothing either.
            hostEof = true;
            shutdownFlags = SHUTDOWN_SEND | (hostHup ? SHUTDOWN_RCV : 0);
            pending |= P_SHUTDOWN;
        }
        return null;
    }

    /** 5.10.6.3: a sender out of credit may ask for an update; once per exhausted window. */
    private void askForCredit() {
        if (peerCredit() == 0 && !creditRequested && !peerNoRecv && !hostEof) {
            creditRequested = true;
            pending |= P_CREDIT_REQUEST;
        }
    }

    /** Every packet to the guest carries our buf_alloc and fwd_cnt, so it is a credit update too. */
    private VsockHeader header(int op, int flags, int len) {
        lastFwdCntSent = fwdCnt;
        pending &= ~P_CREDIT_UPDATE;
        return VsockHeader.toGuest(localPort, peerPort, op, flags, len, bufAlloc, fwdCnt);
    }

    VsockHeader resetHeader() { return VsockHeader.toGuest(localPort, peerPort, OP_RST, 0, 0, 0, 0); }

    // ---- the end ----------------------------------------------------------------------------------------------

    /** Ends the connection: the muxer removes it, and sends RST for {@link End#RESET}. */
    private void end(End how) {
        if (end == End.NONE) {
            end = how;
            pending = 0;
        }
    }

    /** Kills the connection from outside (a malformed packet on it, device reset). */
    void reset() { end(End.RESET); }

    private void cancelTimers() {
        if (retryTimer != null) {
            retryTimer.cancel();
            retryTimer = null;
        }
        if (deadlineTimer != null) {
            deadlineTimer.cancel();
            deadlineTimer = null;
        }
    }

    /** Releases the host side: timers, the watch (before the descriptor), the socket. */
    void release() {
        cancelTimers();
        if (watch != null) {
            watch.close();
            watch = null;
        }
        toHost.clear();
        stream.close();
        if (onReleased != null) {
            Runnable r = onReleased;
            onReleased = null;
            r.run();
        }
    }

    /** Everything that decides what this connection does next, for a diagnostic dump. */
    String describe() {
        return this + " end=" + end + " pending=0x" + Integer.toHexString(pending) + " interest=" + interest
                + (watch == null ? " unwatched" : "") + " rxCnt=" + Integer.toUnsignedString(rxCnt)
                + " fwdCnt=" + Integer.toUnsignedString(fwdCnt) + " fwdSent=" + Integer.toUnsignedString(lastFwdCntSent)
                + " toHost=" + bufferedToHost() + " txCnt=" + Integer.toUnsignedString(txCnt) + " peerBuf="
                + Integer.toUnsignedString(peerBufAlloc) + " peerFwd=" + Integer.toUnsignedString(peerFwdCnt)
                + " credit=" + peerCredit() + (creditRequested ? " creditRequested" : "") + (queued ? " queued" : "")
                + (peerNoRecv ? " peerNoRecv" : "") + (peerNoSend ? " peerNoSend" : "")
                + (hostOutputShut ? " hostOutputShut" : "") + (hostEof ? " hostEof" : "") + (hostHup ? " hostHup" : "");
    }

    @Override
    public String toString() {
        return "vsock " + Integer.toUnsignedString(localPort) + "<->" + Integer.toUnsignedString(peerPort) + " " + state;
    }
}
