package dev.jkrun.devices.virtio.vsock;

import static dev.jkrun.devices.virtio.vsock.VsockHeader.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.devices.virtio.vsock.FakeSockets.FakeListener;
import dev.jkrun.devices.virtio.vsock.FakeSockets.FakeStream;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The muxer and its connections, one rule at a time, against fake host sockets, a hand-driven reactor and clock. */
class VsockMuxerTest {
    static final Path OUT = Path.of("/run/test/out.sock"), IN = Path.of("/run/test/in.sock");
    static final int OUT_PORT = 1234, IN_PORT = 5678;
    static final int BUF = VsockConfig.DEFAULT_BUF_ALLOC;

    final FakeSockets host = new FakeSockets();
    final TestReactor reactor = new TestReactor(false);
    VsockMuxer mux;
    TestGuest guest;

    VsockMuxer start(VsockConfig config) {
        host.serve(OUT);
        mux = new VsockMuxer(config, host, reactor);
        mux.start();
        guest = TestGuest.of(mux, MAX_PAYLOAD);
        return mux;
    }

    VsockMuxer start() {
        return start(VsockConfig.of(List.of(new VsockPort(OUT_PORT, OUT, false), new VsockPort(IN_PORT, IN, true))));
    }

    @AfterEach
    void close() {
        if (mux != null) {
            mux.close();
            assertEquals(0, host.openStreams(), "every host socket closed");
            assertEquals(0, reactor.watchCount(), "every watch closed");
        }
    }

    static VsockHeader g(int op, int src, int dst) { return TestGuest.hdr(op, src, dst, 0, 0, BUF, 0); }

    VsockPacket only() {
        List<VsockPacket> got = guest.poll();
        assertEquals(1, got.size(), "one packet expected: " + got);
        return got.get(0);
    }

    void assertRst(VsockPacket p, int local, int peer) {
        VsockHeader h = p.header();
        assertEquals(OP_RST, h.op(), h.toString());
        assertEquals(HOST_CID, h.srcCid());
        assertEquals(GUEST_CID, h.dstCid());
        assertEquals(local, h.srcPort());
        assertEquals(peer, h.dstPort());
    }

    FakeStream connected(TestGuest.Socket s) {
        guest.poll();
        assertTrue(s.established, "established");
        List<FakeStream> conns = host.servers.get(OUT);
        return conns.get(conns.size() - 1);
    }

    // ---- addressing and unknown packets -----------------------------------------------------------------------

    @Test
    void aRequestToABridgedPortConnectsTheHostSocketAndIsAnswered() {
        start();
        guest.send(g(OP_REQUEST, 777, OUT_PORT));
        VsockHeader h = only().header();
        assertEquals(OP_RESPONSE, h.op());
        assertEquals(OUT_PORT, h.srcPort());
        assertEquals(777, h.dstPort());
        assertEquals(TYPE_STREAM, h.type());
        assertEquals(BUF, h.bufAlloc());
        assertEquals(0, h.fwdCnt());
        assertEquals(1, host.servers.get(OUT).size());
        assertEquals(1, mux.connectionCount());
    }

    @Test
    void requestsNobodyServesAreReset() {
        start();
        guest.send(g(OP_REQUEST, 1, 999));               // no bridge
        assertRst(only(), 999, 1);
        guest.send(g(OP_REQUEST, 2, IN_PORT));           // a listening bridge is not a connect target
        assertRst(only(), IN_PORT, 2);
        host.servers.remove(OUT);                        // the host server is gone
        guest.send(g(OP_REQUEST, 3, OUT_PORT));
        assertRst(only(), OUT_PORT, 3);
        assertEquals(0, mux.connectionCount());
    }

    @Test
    void wronglyAddressedPacketsAreDropped() {
        start();
        guest.send(new VsockHeader(4, HOST_CID, 1, OUT_PORT, 0, TYPE_STREAM, OP_REQUEST, 0, BUF, 0), new byte[0]);
        guest.send(new VsockHeader(GUEST_CID, 7, 1, OUT_PORT, 0, TYPE_STREAM, OP_REQUEST, 0, BUF, 0), new byte[0]);
        guest.send(new VsockHeader(GUEST_CID, HOST_CID, 1, OUT_PORT, 0, 2, OP_RST, 0, BUF, 0), new byte[0]);
        assertEquals(List.of(), guest.poll());
        assertEquals(2, mux.droppedPackets());
        assertEquals(0, mux.connectionCount());
    }

    @Test
    void unknownTypesOpsAndConnectionsAreResetButAnRstNeverIs() {
        start();
        guest.send(new VsockHeader(GUEST_CID, HOST_CID, 1, OUT_PORT, 0, 3, OP_REQUEST, 0, BUF, 0), new byte[0]);
        assertRst(only(), OUT_PORT, 1);
        guest.send(g(99, 2, OUT_PORT));
        assertRst(only(), OUT_PORT, 2);
        for (int op : new int[] {OP_RESPONSE, OP_RW, OP_SHUTDOWN, OP_CREDIT_UPDATE, OP_CREDIT_REQUEST}) {
            guest.send(g(op, 3, OUT_PORT));
            assertRst(only(), OUT_PORT, 3);
        }
        guest.send(g(OP_RST, 4, OUT_PORT));
        assertEquals(List.of(), guest.poll());
    }

    @Test
    void anUnknownOpOnALiveConnectionResetsIt() {
        start();
        TestGuest.Socket s = guest.connect(OUT_PORT);
        FakeStream hs = connected(s);
        guest.send(s.header(42, 0, 0));
        guest.poll();
        assertTrue(s.reset);
        assertTrue(hs.closed);
        assertEquals(0, mux.connectionCount());
    }

    // ---- data and credit ---------------------------------------------------------------------------------------

    @Test
    void guestDataReachesTheHostAndFwdCntCountsIt() {
        start();
        TestGuest.Socket s = guest.connect(OUT_PORT);
        FakeStream hs = connected(s);
        s.write("hello host".getBytes());
        assertArrayEquals("hello host".getBytes(), hs.toPeer.toByteArray());
        hs.peerSends("hello guest".getBytes());
        reactor.pump();
        guest.poll();
        assertArrayEquals("hello guest".getBytes(), s.received.toByteArray());
        assertEquals(10, s.peerFwdCnt, "every packet to the guest carries fwd_cnt");
    }

    @Test
    void aNewConnectionsResponseGoesBeforeTheDataOfBusyOnes() {
        start();
        for (int i = 0; i < 3; i++) {
            connected(guest.connect(OUT_PORT)).peerSends(new byte[3 * MAX_PAYLOAD]);
        }
        reactor.pump();
        TestGuest.Socket late = guest.connect(OUT_PORT);
        VsockHeader first = mux.nextRx(new byte[MAX_PAYLOAD], MAX_PAYLOAD);
        assertEquals(OP_RESPONSE, first.op(), "the guest's connect times out after 2 s: its answer goes first");
        assertEquals(late.local, first.dstPort());
        VsockHeader next = mux.nextRx(new byte[MAX_PAYLOAD], MAX_PAYLOAD);
        assertEquals(OP_RW, next.op(), "then the data, in turns");
    }

    @Test
    void theDiagnosticDumpShowsEachConnectionsCounters() {
        start();
        TestGuest.Socket s = guest.connect(OUT_PORT);
        connected(s);
        s.write("hello host".getBytes());
        String d = mux.describe();
        assertTrue(d.startsWith("1 connections"), d);
        assertTrue(d.contains("ESTABLISHED") && d.contains("rxCnt=10") && d.contains("fwdCnt=10"), d);
    }

    @Test
    void aSlowHostSocketBuffersUpToOurCreditAndTheGuestGetsMoreOnceItDrains() {
        start();
        TestGuest.Socket s = guest.connect(OUT_PORT);
        FakeStream hs = connected(s);
        hs.room = 0;
        byte[] data = new byte[3 * BUF];
        new Random(1).nextBytes(data);
        s.write(data);
        assertEquals(BUF, s.txCnt, "the guest's credit is our buf_alloc");
        assertEquals(0, s.peerCredit());
        assertEquals(Reactor.OUT, reactor.interest(hs.fd) & Reactor.OUT, "waits for room");
        reactor.pump();
        assertEquals(List.of(), guest.poll(), "nothing moved, nothing to tell");
        hs.room = Integer.MAX_VALUE;
        for (int i = 0; i < 10 && !s.allSent(); i++) {
            reactor.pump();
            guest.poll(); // CREDIT_UPDATEs let the guest go on
        }
        reactor.pump();
        assertTrue(s.allSent());
        assertArrayEquals(data, hs.toPeer.toByteArray());
        assertFalse(s.reset);
    }

    @Test
    void aGuestThatSendsBeyondItsCreditIsReset() {
        start();
        TestGuest.Socket s = guest.connect(OUT_PORT);
        FakeStream hs = connected(s);
        hs.room = 0;
        for (int i = 0; i < BUF / MAX_PAYLOAD; i++) {
            guest.send(s.header(OP_RW, 0, MAX_PAYLOAD), new byte[MAX_PAYLOAD]);
        }
        assertEquals(List.of(), guest.poll(), "exactly the credit is fine");
        assertEquals(1, mux.connectionCount());
        guest.send(s.header(OP_RW, 0, 1), new byte[1]);
        guest.poll();
        assertTrue(s.reset);
        assertTrue(hs.closed);
        assertEquals(0, mux.connectionCount());
    }

    @Test
    void hostDataStopsAtTheGuestsCreditAsksForMoreAndResumes() {
        start();
        TestGuest.Socket s = guest.connect(OUT_PORT);
        FakeStream hs = connected(s);
        s.consuming = false;
        byte[] data = new byte[TestGuest.GUEST_BUF_ALLOC + 100_000];
        new Random(2).nextBytes(data);
        hs.peerSends(data);
        for (int i = 0; i < 20; i++) {
            reactor.pump();
            guest.poll();
        }
        assertEquals(TestGuest.GUEST_BUF_ALLOC, s.received.size(), "never beyond the guest's buf_alloc");
        assertEquals(1, s.creditRequestsSeen, "asked once per exhausted window");
        assertEquals(0, reactor.interest(hs.fd) & Reactor.IN, "no reading without credit");
        s.consuming = true;
        s.consume();
        guest.send(s.header(OP_CREDIT_UPDATE, 0, 0));
        for (int i = 0; i < 20; i++) {
            reactor.pump();
            guest.poll();
        }
        assertArrayEquals(data, s.received.toByteArray());
    }

    @Test
    void nonsenseCreditFromTheGuestMeansNoCredit() {
        start();
        TestGuest.Socket s = guest.connect(OUT_PORT);
        FakeStream hs = connected(s);
        guest.send(TestGuest.hdr(OP_CREDIT_UPDATE, s.local, OUT_PORT, 0, 0, 100, 1_000_000)); // fwd_cnt > tx_cnt
        hs.peerSends(new byte[1000]);
        reactor.pump();
        List<VsockPacket> got = guest.poll();
        assertEquals(0, s.received.size(), "nothing sent into a window that makes no sense: " + got);
    }

    @Test
    void aCreditRequestIsAnsweredWithAnUpdate() {
        start();
        TestGuest.Socket s = guest.connect(OUT_PORT);
        connected(s);
        s.write(new byte[100]);
        guest.send(s.header(OP_CREDIT_REQUEST, 0, 0));
        assertEquals(List.of(), guest.poll());
        VsockHeader h = s.last;
        assertEquals(OP_CREDIT_UPDATE, h.op());
        assertEquals(100, h.fwdCnt());
        assertEquals(BUF, h.bufAlloc());
    }

    @Test
    void packetsToTheGuestUseOnlyItsRxBufferRoom() {
        start();
        guest = TestGuest.of(mux, 0); // rx buffers with room for a header only
        TestGuest.Socket s = guest.connect(OUT_PORT);
        FakeStream hs = connected(s);
        hs.peerSends(new byte[10]);
        reactor.pump();
        assertEquals(List.of(), guest.poll());
        assertEquals(0, s.received.size());
        assertTrue(mux.hasRx(), "the data still waits");
    }

    // ---- shutdown and reset ------------------------------------------------------------------------------------

    @Test
    void guestShutdownSendShutsTheHostSocketsOutputAfterItsData() {
        start();
        TestGuest.Socket s = guest.connect(OUT_PORT);
        FakeStream hs = connected(s);
        hs.room = 3;
        s.write("abcdef".getBytes());
        s.shutdown(SHUTDOWN_SEND);
        assertFalse(hs.outputShut, "data first");
        hs.room = 100;
        reactor.pump();
        assertEquals("abcdef", hs.toPeer.toString());
        assertTrue(hs.outputShut);
        hs.peerSends("reply".getBytes());
        reactor.pump();
        guest.poll();
        assertEquals("reply", s.received.toString(), "the other direction still flows");
    }

    @Test
    void guestShutdownOfBothDirectionsIsAnsweredWithRst() {
        start();
        TestGuest.Socket s = guest.connect(OUT_PORT);
        FakeStream hs = connected(s);
        s.shutdown(SHUTDOWN_RCV | SHUTDOWN_SEND);
        guest.poll();
        assertTrue(s.reset);
        assertTrue(hs.closed);
        assertEquals(0, mux.connectionCount());
    }

    @Test
    void guestRstClosesTheHostSocketWithoutReply() {
        start();
        TestGuest.Socket s = guest.connect(OUT_PORT);
        FakeStream hs = connected(s);
        guest.send(s.header(OP_RST, 0, 0));
        assertEquals(List.of(), guest.poll());
        assertTrue(hs.closed);
        assertFalse(reactor.watched(hs.fd));
        assertEquals(0, mux.connectionCount());
    }

    @Test
    void hostEndOfStreamIsAShutdownSendAfterTheData() {
        start();
        TestGuest.Socket s = guest.connect(OUT_PORT);
        FakeStream hs = connected(s);
        hs.peerSends("last words".getBytes());
        hs.peerEof = true;
        reactor.pump();
        guest.poll();
        assertEquals("last words", s.received.toString());
        assertEquals(SHUTDOWN_SEND, s.peerShutdown);
        s.write("still heard".getBytes());
        assertEquals("still heard", hs.toPeer.toString());
        s.shutdown(SHUTDOWN_RCV | SHUTDOWN_SEND);
        guest.poll();
        assertTrue(s.reset);
        assertEquals(0, mux.connectionCount());
    }

    @Test
    void aHostHangUpStopsTheWatchDeliversTheRestAndShutsBothWays() {
        start();
        TestGuest.Socket s = guest.connect(OUT_PORT);
        FakeStream hs = connected(s);
        s.consuming = false;
        byte[] data = new byte[TestGuest.GUEST_BUF_ALLOC + 5000];
        hs.peerSends(data);
        hs.peerGone = true;
        reactor.fire(hs.fd, Reactor.IN | Reactor.HUP);
        assertFalse(reactor.watched(hs.fd), "HUP would make a level-triggered loop spin");
        guest.poll();
        assertEquals(TestGuest.GUEST_BUF_ALLOC, s.received.size());
        s.consume();
        guest.send(s.header(OP_CREDIT_UPDATE, 0, 0));
        guest.poll();
        assertEquals(data.length, s.received.size());
        assertEquals(SHUTDOWN_RCV | SHUTDOWN_SEND, s.peerShutdown);
        s.write("x".getBytes());
        guest.poll();
        assertTrue(s.reset, "writing to a hung-up host socket resets");
    }

    @Test
    void aHostSocketErrorResetsTheConnection() {
        start();
        TestGuest.Socket s = guest.connect(OUT_PORT);
        FakeStream hs = connected(s);
        reactor.fire(hs.fd, Reactor.ERR);
        guest.poll();
        assertTrue(s.reset);
        assertTrue(hs.closed);
    }

    @Test
    void aConnectInProgressIsAnsweredWhenItCompletesOrFails() {
        start();
        host.connectsInProgress = true;
        TestGuest.Socket ok = guest.connect(OUT_PORT);
        TestGuest.Socket bad = guest.connect(OUT_PORT);
        assertEquals(List.of(), guest.poll());
        FakeStream okStream = host.servers.get(OUT).get(0);
        FakeStream badStream = host.servers.get(OUT).get(1);
        assertEquals(Reactor.OUT, reactor.interest(okStream.fd));
        guest.send(bad.header(OP_RW, 0, 1), new byte[1]); // before the RESPONSE: a protocol error
        guest.poll();
        assertTrue(bad.reset);
        assertTrue(badStream.closed);
        reactor.pump();
        guest.poll();
        assertTrue(ok.established);
        TestGuest.Socket late = guest.connect(OUT_PORT);
        host.servers.get(OUT).get(2).connectError = new IOException("ECONNREFUSED");
        reactor.pump();
        guest.poll();
        assertTrue(late.reset);
    }

    // ---- listening bridges -------------------------------------------------------------------------------------

    @Test
    void aHostClientOfAListeningBridgeBecomesAGuestConnection() {
        start();
        FakeListener l = host.listeners.get(IN);
        guest.listening.add(IN_PORT);
        FakeStream client = l.clientConnects();
        reactor.pump();
        guest.poll();
        assertEquals(1, guest.accepted.size());
        TestGuest.Socket s = guest.accepted.get(0);
        assertEquals(IN_PORT, s.local);
        assertTrue(Integer.compareUnsigned(s.remote, 1024) >= 0, "a fresh host port");
        client.peerSends("ping".getBytes());
        reactor.pump();
        guest.poll();
        assertEquals("ping", s.received.toString());
        s.write("pong".getBytes());
        assertEquals("pong", client.toPeer.toString());
        FakeStream second = l.clientConnects();
        reactor.pump();
        guest.poll();
        assertEquals(2, guest.accepted.size());
        assertTrue(guest.accepted.get(1).remote != s.remote, "each host connection its own port");
        assertFalse(second.closed);
    }

    @Test
    void aGuestThatListensLateIsAskedAgainSoonWithGrowingDelays() {
        start();
        FakeListener l = host.listeners.get(IN);
        FakeStream client = l.clientConnects();
        reactor.pump();
        guest.poll();
        assertEquals(1, guest.requestsRefused);
        long[] delays = {10, 20, 40, 80, 160, 200, 200};
        for (int i = 0; i < delays.length; i++) {
            reactor.advance(delays[i] - 1);
            guest.poll();
            assertEquals(i + 1, guest.requestsRefused, "not before " + delays[i] + " ms");
            reactor.advance(1);
            guest.poll();
            assertEquals(i + 2, guest.requestsRefused, "retried after " + delays[i] + " ms");
        }
        guest.listening.add(IN_PORT);
        reactor.advance(200);
        guest.poll();
        assertEquals(1, guest.accepted.size());
        assertFalse(client.closed);
        reactor.advance(VsockConfig.DEFAULT_LISTEN_RETRY_MILLIS);
        assertFalse(client.closed, "an established connection has no deadline");
        assertEquals(0, reactor.liveTimers());
    }

    @Test
    void aGuestThatNeverListensIsGivenUpAtTheDeadline() {
        start(VsockConfig.of(List.of(new VsockPort(IN_PORT, IN, true))).withListenRetryMillis(1000));
        FakeStream client = host.listeners.get(IN).clientConnects();
        for (int t = 0; t < 1200; t += 5) {
            reactor.pump();
            guest.poll();
            reactor.advance(5);
        }
        assertTrue(client.closed);
        assertEquals(0, mux.connectionCount());
        assertTrue(guest.requestsRefused > 5 && guest.requestsRefused < 20, "retries " + guest.requestsRefused);
        assertEquals(0, reactor.liveTimers());
    }

    @Test
    void aRequestTheGuestNeverTookIsDroppedAtTheDeadline() {
        start(VsockConfig.of(List.of(new VsockPort(IN_PORT, IN, true))).withListenRetryMillis(1000));
        FakeStream client = host.listeners.get(IN).clientConnects();
        reactor.pump();
        assertTrue(mux.hasRx());
        reactor.advance(1000);
        assertTrue(client.closed);
        assertEquals(List.of(), guest.poll(), "nothing reached the guest, nothing to reset");
    }

    @Test
    void acceptFailuresRestTheListenerInsteadOfSpinning() {
        start();
        FakeListener l = host.listeners.get(IN);
        l.acceptError = new IOException("EMFILE");
        l.clientConnects();
        reactor.pump();
        assertEquals(0, reactor.interest(l.fd));
        l.acceptError = null;
        reactor.advance(VsockMuxer.ACCEPT_PAUSE_MILLIS);
        assertEquals(Reactor.IN, reactor.interest(l.fd));
        guest.listening.add(IN_PORT);
        reactor.pump();
        guest.poll();
        assertEquals(1, guest.accepted.size());
    }

    // ---- limits ------------------------------------------------------------------------------------------------

    @Test
    void theConnectionCapIsAnsweredWithRstAndClosedHostClients() {
        start(VsockConfig.of(List.of(new VsockPort(OUT_PORT, OUT, false), new VsockPort(IN_PORT, IN, true)))
                .withMaxConnections(2));
        TestGuest.Socket a = guest.connect(OUT_PORT);
        TestGuest.Socket b = guest.connect(OUT_PORT);
        TestGuest.Socket c = guest.connect(OUT_PORT);
        guest.poll();
        assertTrue(a.established && b.established);
        assertTrue(c.reset);
        FakeStream client = host.listeners.get(IN).clientConnects();
        reactor.pump();
        assertTrue(client.closed);
        assertEquals(2, mux.refusedConnections());
        guest.send(a.header(OP_RST, 0, 0));
        TestGuest.Socket d = guest.connect(OUT_PORT);
        guest.poll();
        assertTrue(d.established, "room again after one ended");
    }

    @Test
    void connectionsAGuestOpensAndResetsWithoutRxBuffersLeaveNothingQueued() {
        start();
        // The guest posts no rx buffers (nobody calls nextRx) and churns: REQUEST (a RESPONSE is owed), RST (gone
        // silently, no RST owed, so tx never pauses). Nothing may stay behind per round.
        for (int i = 0; i < 10_000; i++) {
            guest.send(g(OP_REQUEST, 777, OUT_PORT));
            guest.send(g(OP_RST, 777, OUT_PORT));
        }
        assertEquals(0, mux.connectionCount());
        assertEquals(0, mux.queuedConnections(), "connections waiting in the rx queue");
        assertFalse(mux.hasRx(), "nothing is owed to the guest");
    }

    @Test
    void tinyGuestPacketsForAStalledHostSocketCostNoMoreThanTheirBytes() {
        start();
        TestGuest.Socket s = guest.connect(OUT_PORT);
        FakeStream hs = connected(s);
        hs.room = 0;
        for (int i = 0; i < BUF; i++) { // exactly our credit, one byte a packet
            guest.send(s.header(OP_RW, 0, 1), new byte[] {(byte) i});
        }
        assertEquals(1, mux.connectionCount(), "within its credit");
        assertEquals(BUF, mux.bufferedToHost());
        // A buffer object per packet would hold ~80 bytes of heap per guest byte: 20 MiB per connection.
        assertTrue(mux.heldToHostBytes() <= 2L * BUF + 4096, "heap held for " + BUF + " buffered bytes: "
                + mux.heldToHostBytes());
        hs.room = Integer.MAX_VALUE;
        reactor.pump();
        byte[] got = hs.toPeer.toByteArray();
        assertEquals(BUF, got.length);
        for (int i = 0; i < BUF; i++) {
            assertEquals((byte) i, got[i], "byte " + i);
        }
        assertEquals(0, mux.bufferedToHost());
    }

    @Test
    void aFullRstBacklogPausesTx() {
        start(VsockConfig.of(List.of(new VsockPort(OUT_PORT, OUT, false))).withRxBacklog(3));
        for (int i = 0; i < 3; i++) {
            assertFalse(mux.txPaused());
            guest.send(g(OP_RW, i, 4444));
        }
        assertTrue(mux.txPaused());
        guest.send(g(OP_RW, 9, 4444)); // a device that ignores the pause: dropped, still bounded
        assertEquals(1, mux.droppedPackets());
        assertEquals(3, guest.poll().size());
        assertFalse(mux.txPaused());
    }

    @Test
    void aMalformedPacketResetsItsConnectionAndNoOther() {
        start();
        TestGuest.Socket victim = guest.connect(OUT_PORT);
        TestGuest.Socket other = guest.connect(OUT_PORT);
        guest.poll();
        FakeStream otherStream = host.servers.get(OUT).get(1);
        mux.malformed(new MalformedPacketException(MalformedPacketException.Reason.PAYLOAD_BEYOND_CHAIN,
                victim.header(OP_RW, 0, 1000), "test"));
        mux.malformed(new MalformedPacketException(MalformedPacketException.Reason.SHORT_HEADER, null, "test"));
        guest.poll();
        assertTrue(victim.reset);
        assertFalse(other.reset);
        other.write("fine".getBytes());
        assertEquals("fine", otherStream.toPeer.toString());
        assertEquals(1, mux.droppedPackets());
    }

    @Test
    void aMalformedPacketOfAnotherTypeNeverEndsTheStreamOnItsPorts() {
        start();
        TestGuest.Socket s = guest.connect(OUT_PORT);
        guest.poll();
        VsockHeader h = s.header(OP_RW, 0, 1000);
        mux.malformed(new MalformedPacketException(MalformedPacketException.Reason.PAYLOAD_BEYOND_CHAIN,
                new VsockHeader(h.srcCid(), h.dstCid(), h.srcPort(), h.dstPort(), h.len(), 7, OP_RW, 0, 0, 0), "test"));
        // As a well-formed packet of that type: answered with RST (5.10.6.5), the stream untouched.
        assertEquals(1, mux.connectionCount());
    }

    @Test
    void listenersAreBoundAtStartAndABusyPathFailsNamingTheField() {
        host.listeners.put(IN, null);
        VsockMuxer m = new VsockMuxer(VsockConfig.of(List.of(new VsockPort(OUT_PORT, OUT, false),
                new VsockPort(IN_PORT, IN, true))), host, reactor);
        IllegalStateException e = assertThrows(IllegalStateException.class, m::start);
        assertTrue(e.getMessage().startsWith("vsock.ports[1].path"), e.getMessage());
        assertEquals(0, reactor.watchCount());
    }

    @Test
    void resetAllTellsTheGuestAndCloseReleasesEverything() {
        start();
        TestGuest.Socket s = guest.connect(OUT_PORT);
        FakeStream hs = connected(s);
        guest.listening.add(IN_PORT);
        host.listeners.get(IN).clientConnects();
        reactor.pump();
        guest.poll();
        mux.resetAll();
        guest.poll();
        assertTrue(s.reset);
        assertTrue(guest.accepted.get(0).reset);
        assertTrue(hs.closed);
        assertNull(mux.nextRx(new byte[16], 16));
        mux.close();
        assertFalse(host.listeners.containsKey(IN), "listener closed");
    }
}
