package dev.jkrun.devices.virtio.vsock;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jkrun.devices.testing.DriverQueue;
import dev.jkrun.devices.virtio.queue.DescriptorChain;
import dev.jkrun.devices.virtio.queue.InvalidChainException;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.HeapGuestMemory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A hostile guest's tx packets and a fickle host, in sequences: each step is a tx chain (fuzzed header fields biased
 * toward the bridged ports and live connections, fuzzed len against the chain's real bytes, fuzzed layouts over one to
 * four descriptors) parsed and handed to the muxer as the device does, or a host event (a peer sends, stops taking
 * data, hangs up, a client connects to the listening bridge, time passes), or the guest taking rx packets into
 * buffers of fuzzed size. Oracle: nothing throws; every packet to the guest is a well-formed host-to-guest stream
 * packet that fits its buffer; data to a connection never exceeds the credit the guest gave it; connections stay
 * within the cap, and only live ones wait in the rx queue; closing the muxer releases every host socket, watch and
 * timer. Replayed from the committed inputs by every test run; fuzzed with {@code fuzz/run VsockTxFuzzTest}.
 */
class VsockTxFuzzTest {
    static final int MEM_BYTES = 1 << 20, RING = 0, QUEUE_SIZE = 8, BUFFERS = 0x10000;
    static final int OUT_PORT = 1234, IN_PORT = 5678, MAX_CONNECTIONS = 4;
    static final Path OUT = Path.of("/fuzz/out.sock"), IN = Path.of("/fuzz/in.sock");
    static final int[] OPS = {0, 1, 2, 3, 4, 5, 6, 7, 8, 0xffff};
    private static final HeapGuestMemory MEM = HeapGuestMemory.of(0, MEM_BYTES);

    /** What the guest advertised and what it got, per connection key (local << 32 | peer). */
    private static final class Window {
        long bufAlloc;
        int fwdCnt;
        long received;
    }

    @FuzzTest(maxDuration = "1h")
    void hostileTxPacketsNeverBreakTheMuxer(FuzzedDataProvider data) {
        FakeSockets host = new FakeSockets();
        host.serve(OUT);
        TestReactor reactor = new TestReactor(false);
        VsockConfig config = VsockConfig.of(List.of(new VsockPort(OUT_PORT, OUT, false), new VsockPort(IN_PORT, IN, true)))
                .withMaxConnections(MAX_CONNECTIONS).withBufAlloc(64 * 1024).withRxBacklog(4).withListenRetryMillis(500);
        VsockMuxer mux = new VsockMuxer(config, host, reactor);
        mux.start();
        Map<Long, Window> windows = new HashMap<>();
        List<Integer> guestPorts = new ArrayList<>(List.of(1, 2));
        List<Integer> hostPorts = new ArrayList<>(List.of(OUT_PORT));
        byte[] rxBuf = new byte[VsockHeader.MAX_PAYLOAD];
        try {
            int steps = data.consumeInt(1, 24);
            for (int step = 0; step < steps && data.remainingBytes() > 0; step++) {
                switch (data.consumeInt(0, 5)) {
                    case 0, 1 -> tx(data, mux, windows, guestPorts, hostPorts);
                    case 2 -> hostEvent(data, host, reactor);
                    case 3 -> reactor.advance(data.consumeInt(0, 300));
                    default -> rx(data, mux, windows, guestPorts, hostPorts, rxBuf);
                }
                assertTrue(mux.connectionCount() <= MAX_CONNECTIONS, "connections " + mux.connectionCount());
                // Only live connections wait for rx buffers: ended ones must not pile up while the guest posts none.
                assertTrue(mux.queuedConnections() <= mux.connectionCount(),
                        "rx queue " + mux.queuedConnections() + " for " + mux.connectionCount() + " connections");
            }
            rx(data, mux, windows, guestPorts, hostPorts, rxBuf);
        } catch (Throwable t) {
            throw new AssertionError("the muxer threw", t);
        } finally {
            mux.close();
        }
        assertEquals(0, host.openStreams(), "host sockets left open");
        assertEquals(0, reactor.watchCount(), "watches left");
        assertEquals(0, reactor.liveTimers(), "timers left");
    }

    private static int pickPort(FuzzedDataProvider data, List<Integer> known) {
        return data.consumeInt(0, 3) == 0 ? data.consumeInt() : known.get(data.consumeInt(0, known.size() - 1));
    }

    private static void tx(FuzzedDataProvider data, VsockMuxer mux, Map<Long, Window> windows, List<Integer> guestPorts,
                           List<Integer> hostPorts) {
        int op = data.consumeBoolean() ? data.pickValue(OPS) : data.consumeInt(0, 0xffff);
        int src = pickPort(data, guestPorts);
        int dst = pickPort(data, hostPorts);
        long srcCid = data.consumeInt(0, 15) == 0 ? data.consumeLong() : VsockHeader.GUEST_CID;
        long dstCid = data.consumeInt(0, 15) == 0 ? data.consumeLong() : VsockHeader.HOST_CID;
        int type = data.consumeInt(0, 7) == 0 ? data.consumeInt(0, 0xffff) : VsockHeader.TYPE_STREAM;
        int payloadLen = data.consumeInt(0, 3) == 0 ? data.consumeInt(0, 70_000) : data.consumeInt(0, 512);
        int len = data.consumeBoolean() ? payloadLen
                : data.pickValue(new int[] {payloadLen + 1, payloadLen - 1, -1, Integer.MIN_VALUE, 65536, 65537, data.consumeInt()});
        int flags = data.consumeInt(0, 3) == 0 ? data.consumeInt() : data.consumeInt(0, 3);
        int bufAlloc = data.consumeBoolean() ? data.consumeInt(0, 128 * 1024) : data.consumeInt();
        int fwdCnt = data.consumeBoolean() ? data.consumeInt(0, 128 * 1024) : data.consumeInt();
        byte[] hdr = ByteBuffer.allocate(VsockHeader.SIZE).order(ByteOrder.LITTLE_ENDIAN).putLong(srcCid).putLong(dstCid)
                .putInt(src).putInt(dst).putInt(len).putShort((short) type).putShort((short) op).putInt(flags)
                .putInt(bufAlloc).putInt(fwdCnt).array();
        byte[] bytes = Arrays.copyOf(hdr, VsockHeader.SIZE + Math.max(0, payloadLen));
        // Header cut short, or packets spread over up to four descriptors (some writable, which tx ignores).
        int total = data.consumeInt(0, 15) == 0 ? data.consumeInt(0, VsockHeader.SIZE) : bytes.length;
        int parts = data.consumeInt(1, 4);
        DriverQueue dq = new DriverQueue(MEM, QUEUE_SIZE, RING, BUFFERS, MEM_BYTES - BUFFERS, () -> { });
        long at = BUFFERS;
        int off = 0;
        for (int i = 0; i < parts; i++) {
            int n = i == parts - 1 ? total - off : data.consumeInt(0, total - off);
            boolean writable = i > 0 && data.consumeInt(0, 7) == 0;
            MEM.write(GuestAddress.of(at), bytes, off, n);
            int flagsD = (writable ? Queue.VRING_DESC_F_WRITE : 0) | (i + 1 < parts ? Queue.VRING_DESC_F_NEXT : 0);
            dq.writeDescriptor(i, at, n, flagsD, i + 1);
            at = (at + n + 7) & ~7L;
            off += n;
        }
        dq.publish(0);
        Queue q = dq.deviceQueue(QUEUE_SIZE);
        Optional<DescriptorChain> chain;
        try {
            chain = q.pop(MEM);
        } catch (InvalidChainException e) {
            return;
        }
        if (chain.isEmpty()) {
            return;
        }
        try {
            VsockPacket p = VsockPacket.readTx(chain.get());
            assertTrue(p.header().lenUnsigned() <= VsockHeader.MAX_PAYLOAD && p.payload().length == p.header().len());
            assertTrue(VsockHeader.SIZE + p.payload().length <= chain.get().readableLength(), "payload within the chain");
            VsockHeader h = p.header();
            if (h.srcCid() == VsockHeader.GUEST_CID && h.dstCid() == VsockHeader.HOST_CID
                    && h.type() == VsockHeader.TYPE_STREAM) {
                long key = VsockConnection.key(h.dstPort(), h.srcPort());
                Window w = windows.computeIfAbsent(key, k -> new Window());
                if (h.op() != VsockHeader.OP_RST) {
                    // The muxer takes the guest's window from every packet it routes to a connection.
                    w.bufAlloc = Integer.toUnsignedLong(h.bufAlloc());
                    w.fwdCnt = h.fwdCnt();
                }
                if (h.op() == VsockHeader.OP_REQUEST) {
                    w.received = 0;
                }
            }
            mux.send(p);
        } catch (MalformedPacketException e) {
            mux.malformed(e);
        }
        if (!guestPorts.contains(src) && guestPorts.size() < 8) {
            guestPorts.add(src);
        }
    }

    private static void hostEvent(FuzzedDataProvider data, FakeSockets host, TestReactor reactor) {
        List<FakeSockets.FakeStream> open = host.all.stream().filter(s -> !s.closed).toList();
        int what = data.consumeInt(0, 5);
        if (what == 0 || open.isEmpty()) {
            FakeSockets.FakeListener l = host.listeners.get(IN);
            if (l != null) {
                l.clientConnects();
            }
        } else {
            FakeSockets.FakeStream s = open.get(data.consumeInt(0, open.size() - 1));
            switch (what) {
                case 1 -> s.peerSends(new byte[data.consumeInt(0, 100_000)]);
                case 2 -> s.room = data.consumeInt(0, 100_000);
                case 3 -> s.peerEof = true;
                case 4 -> {
                    s.peerGone = true;
                    if (reactor.watched(s.fd)) {
                        reactor.fire(s.fd, Reactor.HUP | Reactor.IN);
                    }
                }
                default -> {
                    if (reactor.watched(s.fd)) {
                        reactor.fire(s.fd, Reactor.ERR);
                    }
                }
            }
        }
        reactor.pump();
    }

    private static void rx(FuzzedDataProvider data, VsockMuxer mux, Map<Long, Window> windows, List<Integer> guestPorts,
                           List<Integer> hostPorts, byte[] buf) {
        int count = data.consumeInt(0, 16);
        for (int i = 0; i < count; i++) {
            int room = data.consumeBoolean() ? VsockHeader.MAX_PAYLOAD : data.consumeInt(0, VsockHeader.MAX_PAYLOAD);
            VsockHeader h = mux.nextRx(buf, room);
            if (h == null) {
                return;
            }
            assertEquals(VsockHeader.HOST_CID, h.srcCid());
            assertEquals(VsockHeader.GUEST_CID, h.dstCid());
            assertEquals(VsockHeader.TYPE_STREAM, h.type());
            assertTrue(h.op() >= VsockHeader.OP_REQUEST && h.op() <= VsockHeader.OP_CREDIT_REQUEST, h.toString());
            assertTrue(h.lenUnsigned() <= room, "len " + h.lenUnsigned() + " in a buffer for " + room);
            assertTrue(h.op() == VsockHeader.OP_RW || h.len() == 0, h.toString());
            if (h.op() == VsockHeader.OP_RW) {
                Window w = windows.get(VsockConnection.key(h.srcPort(), h.dstPort()));
                assertTrue(w != null, "data for a connection the guest never named: " + h);
                w.received += h.lenUnsigned();
                long inFlight = Integer.toUnsignedLong((int) w.received - w.fwdCnt);
                assertTrue(inFlight <= w.bufAlloc, "sent " + inFlight + " bytes into a window of " + w.bufAlloc);
            }
            if (!hostPorts.contains(h.srcPort()) && hostPorts.size() < 8) {
                hostPorts.add(h.srcPort());
            }
            if (!guestPorts.contains(h.dstPort()) && guestPorts.size() < 8) {
                guestPorts.add(h.dstPort());
            }
        }
    }
}
