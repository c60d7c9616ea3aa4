package dev.jkrun.devices.virtio.vsock;

import static dev.jkrun.devices.virtio.vsock.VsockHeader.*;

import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The guest's side of vsock at packet level, as Linux's virtio transport behaves: it sends packets to the muxer (or,
 * through {@link #sink}, to a device's tx queue) and takes what the host owes it. {@link Socket}s model connected
 * guest sockets with both credit windows, for data tests.
 */
final class TestGuest {
    static final int GUEST_BUF_ALLOC = 256 * 1024;

    /** Where packets go: the muxer directly, or a device's tx queue. */
    private final Consumer<VsockPacket> sink;
    /** Where packets for the guest come from (the muxer, or a device's rx queue). */
    private final java.util.function.Supplier<VsockPacket> source;
    final Map<Long, Socket> sockets = new HashMap<>();
    /** Packets received that no socket took. */
    final List<VsockPacket> unclaimed = new ArrayList<>();
    /** Ports on which the guest listens (accepting host REQUESTs). */
    final java.util.Set<Integer> listening = new java.util.HashSet<>();
    final List<Socket> accepted = new ArrayList<>();
    int requestsRefused;
    private int nextPort = 50000;

    TestGuest(Consumer<VsockPacket> sink, java.util.function.Supplier<VsockPacket> source) {
        this.sink = sink;
        this.source = source;
    }

    /** A guest talking to {@code mux} directly, with rx buffers of {@code rxBuffer} payload bytes. */
    static TestGuest of(VsockMuxer mux, int rxBuffer) {
        byte[] buf = new byte[MAX_PAYLOAD];
        return new TestGuest(mux::send, () -> {
            VsockHeader h = mux.nextRx(buf, rxBuffer);
            return h == null ? null : new VsockPacket(h, Arrays.copyOf(buf, h.len()));
        });
    }

    static VsockHeader hdr(int op, int srcPort, int dstPort, int len, int flags, int bufAlloc, int fwdCnt) {
        return new VsockHeader(GUEST_CID, HOST_CID, srcPort, dstPort, len, TYPE_STREAM, op, flags, bufAlloc, fwdCnt);
    }

    void send(VsockHeader h, byte[] payload) { sink.accept(new VsockPacket(h, payload)); }

    /** Where raw tx bytes go (a queue guest's tx queue), for malformed packets. */
    Consumer<byte[]> raw = b -> {
        throw new UnsupportedOperationException("no raw tx here");
    };

    void sendRawForTest(byte[] bytes) { raw.accept(bytes); }

    void send(VsockHeader h) { send(h, new byte[h.len()]); }

    /** Everything the host owes now, dispatched to sockets; returns what no socket claimed. */
    List<VsockPacket> poll() {
        List<VsockPacket> got = new ArrayList<>();
        VsockPacket p;
        while ((p = source.get()) != null) {
            if (!dispatch(p)) {
                got.add(p);
                unclaimed.add(p);
            }
        }
        return got;
    }

    private boolean dispatch(VsockPacket p) {
        VsockHeader h = p.header();
        Socket s = sockets.get(key(h.dstPort(), h.srcPort()));
        if (s == null && h.op() == OP_REQUEST) {
            if (!listening.contains(h.dstPort())) {
                requestsRefused++;
                send(hdr(OP_RST, h.dstPort(), h.srcPort(), 0, 0, 0, 0));
                return true;
            }
            s = new Socket(h.dstPort(), h.srcPort());
            s.established = true;
            s.credit(h);
            sockets.put(key(s.local, s.remote), s);
            accepted.add(s);
            send(s.header(OP_RESPONSE, 0, 0));
            return true;
        }
        if (s == null) {
            return false;
        }
        s.receive(p);
        return true;
    }

    static long key(int local, int remote) { return ((long) local << 32) | Integer.toUnsignedLong(remote); }

    /** connect(CID 2, port): sends REQUEST; {@link Socket#established} once the RESPONSE came. */
    Socket connect(int port) {
        Socket s = new Socket(nextPort++, port);
        sockets.put(key(s.local, s.remote), s);
        send(s.header(OP_REQUEST, 0, 0));
        return s;
    }

    /** One guest stream socket. */
    final class Socket {
        final int local;
        final int remote;
        boolean established;
        boolean reset;
        int peerShutdown;
        final ByteArrayOutputStream received = new ByteArrayOutputStream();
        /** Data the application wrote; what is past {@code unsentPos} waits for credit. */
        private byte[] out = new byte[0];
        private int unsentPos;
        int rxCnt;
        int fwdCnt;
        int lastFwdCntSent;
        int txCnt;
        int peerBufAlloc;
        int peerFwdCnt;
        /** When false the application does not read: fwd_cnt stands still and credit runs out. */
        boolean consuming = true;
        int creditRequestsSeen;
        /** The last packet header the host sent to this socket. */
        VsockHeader last;

        Socket(int local, int remote) {
            this.local = local;
            this.remote = remote;
        }

        VsockHeader header(int op, int flags, int len) {
            lastFwdCntSent = fwdCnt;
            return hdr(op, local, remote, len, flags, GUEST_BUF_ALLOC, fwdCnt);
        }

        void credit(VsockHeader h) {
            peerBufAlloc = h.bufAlloc();
            peerFwdCnt = h.fwdCnt();
        }

        int peerCredit() { return (int) Math.max(0, Integer.toUnsignedLong(peerBufAlloc) - Integer.toUnsignedLong(txCnt - peerFwdCnt)); }

        void receive(VsockPacket p) {
            VsockHeader h = p.header();
            last = h;
            credit(h);
            switch (h.op()) {
                case OP_RESPONSE -> established = true;
                case OP_RW -> {
                    received.writeBytes(p.payload());
                    rxCnt += h.len();
                    if (consuming) {
                        consume();
                    }
                }
                case OP_CREDIT_REQUEST -> {
                    creditRequestsSeen++;
                    send(header(OP_CREDIT_UPDATE, 0, 0));
                }
                case OP_SHUTDOWN -> peerShutdown |= h.flags();
                case OP_RST -> {
                    reset = true;
                    sockets.remove(key(local, remote));
                }
                default -> { }
            }
            flush();
        }

        /** The application read everything: fwd_cnt catches up, and the host hears when half the window freed. */
        void consume() {
            fwdCnt = rxCnt;
            if (Integer.toUnsignedLong(fwdCnt - lastFwdCntSent) >= GUEST_BUF_ALLOC / 2) {
                send(header(OP_CREDIT_UPDATE, 0, 0));
            }
        }

        void write(byte[] data) {
            int at = out.length;
            out = Arrays.copyOf(out, at + data.length);
            System.arraycopy(data, 0, out, at, data.length);
            flush();
        }

        /** Sends what credit allows, in packets of at most 4 KiB (Linux's default rx buffer). */
        void flush() {
            if (!established || reset) {
                return;
            }
            while (unsentPos < out.length) {
                int n = Math.min(Math.min(4096, out.length - unsentPos), peerCredit());
                if (n == 0) {
                    return;
                }
                send(header(OP_RW, 0, n), Arrays.copyOfRange(out, unsentPos, unsentPos + n));
                unsentPos += n;
                txCnt += n;
            }
        }

        boolean allSent() { return unsentPos == out.length; }

        void shutdown(int flags) { send(header(OP_SHUTDOWN, flags, 0)); }
    }
}
