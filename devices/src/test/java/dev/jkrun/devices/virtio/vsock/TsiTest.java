package dev.jkrun.devices.virtio.vsock;

import static dev.jkrun.devices.virtio.vsock.VsockHeader.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.devices.virtio.vsock.host.UnixHostSockets;
import dev.jkrun.devices.virtio.vsock.tsi.OutboundPolicy;
import dev.jkrun.devices.virtio.vsock.tsi.PortMapping;
import dev.jkrun.devices.virtio.vsock.tsi.TsiConfig;
import dev.jkrun.devices.virtio.vsock.tsi.TsiMessages;
import dev.jkrun.libc.Errno;
import dev.jkrun.libc.SockAddr;
import dev.jkrun.libc.Sockets;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * TSI's host side against a fake guest (raw control DGRAMs and vsock stream packets) and real host sockets on
 * 127.0.0.1 and ::1 only: the control protocol message by message, the stream and datagram paths, and the policy
 * rules (scope, port map, loopback, no shared ports, port 0, outbound policy, caps) one at a time.
 */
class TsiTest {
    static final InetAddress LO4 = InetAddress.getLoopbackAddress(), LO6 = addr("::1"),
            ANY4 = addr("0.0.0.0"), TEST_NET = addr("192.0.2.1");
    static final int CTL = 7000, P = 7001, VM_PORT = 7100;

    final List<VsockMuxer> muxers = new ArrayList<>();
    final List<AutoCloseable> hostSide = new ArrayList<>();
    TsiGuest guest;

    static InetAddress addr(String s) {
        try {
            return InetAddress.getByName(s);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static TsiConfig tsi() {
        return TsiConfig.of(TsiConfig.HIJACK_INET, List.of()).withOutbound(OutboundPolicy.LOOPBACK_ONLY)
                .withListenHost(LO4);
    }

    TsiGuest start(TsiConfig t) {
        TestReactor reactor = new TestReactor(true);
        VsockMuxer mux = new VsockMuxer(VsockConfig.of(List.of()).withTsi(t), UnixHostSockets.INSTANCE, reactor);
        mux.start();
        muxers.add(mux);
        guest = new TsiGuest(mux, reactor);
        return guest;
    }

    @AfterEach
    void close() throws Exception {
        for (VsockMuxer m : muxers) {
            m.close();
            if (m.tsi() != null) {
                assertEquals(0, m.tsi().hostFdCount(), "host sockets left");
            }
        }
        for (AutoCloseable c : hostSide) {
            c.close();
        }
    }

    <T extends AutoCloseable> T host(T c) {
        hostSide.add(c);
        return c;
    }

    static int freePort() throws Exception {
        try (ServerSocket s = new ServerSocket(0, 1, LO4)) {
            return s.getLocalPort();
        }
    }

    /** A connected outbound TSI stream from guest port {@code svm}: CONNECT answered 0, REQUEST answered RESPONSE. */
    void connectStream(TsiGuest g, int svm, InetAddress ip, int port, int family) {
        g.create(CTL, svm, family, TsiMessages.SOCK_STREAM);
        g.connect(CTL, svm, TsiGuest.sockaddr(ip, port));
        assertEquals(0, g.result(CTL, TsiMessages.CONNECT));
        g.stream(OP_REQUEST, svm, TsiMessages.DEFAULT_PORT, new byte[0], 0);
        VsockHeader r = g.take(svm, "RESPONSE").header();
        assertEquals(OP_RESPONSE, r.op());
        assertEquals(TsiMessages.DEFAULT_PORT, r.srcPort());
    }

    byte[] readStream(TsiGuest g, int svm, int bytes) {
        byte[] got = new byte[bytes];
        int[] n = {0};
        g.until(() -> {
            for (VsockPacket p : new ArrayList<>(g.inbox)) {
                if (p.header().dstPort() == svm && p.header().op() == OP_RW) {
                    System.arraycopy(p.payload(), 0, got, n[0], p.payload().length);
                    n[0] += p.payload().length;
                    g.inbox.remove(p);
                }
            }
            return n[0] >= bytes;
        }, bytes + " stream bytes");
        return got;
    }

    // ---- outbound streams ---------------------------------------------------------------------------------------

    @Test
    void outboundStreamCarriesDataBothWaysAndGetnameReportsThePeer() throws Exception {
        ServerSocket server = host(new ServerSocket(0, 8, LO4));
        TsiGuest g = start(tsi());
        connectStream(g, P, LO4, server.getLocalPort(), SockAddr.AF_INET);
        Socket s = host(server.accept());
        g.stream(OP_RW, P, TsiMessages.DEFAULT_PORT, "GET / HTTP/1.0\r\n\r\n".getBytes(StandardCharsets.US_ASCII), 0);
        InputStream in = s.getInputStream();
        byte[] req = in.readNBytes(18);
        assertEquals("GET / HTTP/1.0\r\n\r\n", new String(req, StandardCharsets.US_ASCII));
        OutputStream out = s.getOutputStream();
        out.write("HTTP/1.0 200 OK\r\n".getBytes(StandardCharsets.US_ASCII));
        out.flush();
        assertEquals("HTTP/1.0 200 OK\r\n", new String(readStream(g, P, 17), StandardCharsets.US_ASCII));

        g.getname(CTL, P, TsiMessages.DEFAULT_PORT, true);
        TsiGuest.Name n = g.name(CTL);
        assertEquals(0, n.result());
        assertEquals(SockAddr.inet(LO4, server.getLocalPort()), n.addr());
        assertEquals(SockAddr.INET_SIZE, n.addr().bytes().length, "the guest checks addr_len == sizeof(sockaddr_in)");

        // The host closes: the guest gets SHUTDOWN, the connection ends; RELEASE drops the proxy.
        s.close();
        g.until(() -> g.inbox.stream().anyMatch(p -> p.header().dstPort() == P && p.header().op() == OP_SHUTDOWN),
                "SHUTDOWN");
        g.stream(OP_RST, P, TsiMessages.DEFAULT_PORT, new byte[0], 0);
        g.release(CTL, P, TsiMessages.DEFAULT_PORT);
        assertEquals(0, g.mux.tsi().proxyCount());
        assertEquals(0, g.mux.tsi().hostFdCount());
        assertEquals(0, g.mux.connectionCount());
    }

    @Test
    void outboundStreamOverIpv6Loopback() throws Exception {
        ServerSocket server = host(new ServerSocket(0, 8, LO6));
        TsiGuest g = start(tsi());
        connectStream(g, P, LO6, server.getLocalPort(), SockAddr.AF_INET6);
        Socket s = host(server.accept());
        s.getOutputStream().write(new byte[] {1, 2, 3});
        assertArrayEquals(new byte[] {1, 2, 3}, readStream(g, P, 3));
    }

    @Test
    void connectToAClosedPortIsRefusedWithTheHostErrno() throws Exception {
        TsiGuest g = start(tsi());
        g.create(CTL, P, SockAddr.AF_INET, TsiMessages.SOCK_STREAM);
        g.connect(CTL, P, TsiGuest.sockaddr(LO4, freePort()));
        assertEquals(-Sockets.ECONNREFUSED, g.result(CTL, TsiMessages.CONNECT));
        assertEquals(0, g.mux.tsi().hostFdCount(), "the failed socket is closed");
        // A REQUEST for a proxy that is not connected is reset.
        g.stream(OP_REQUEST, P, TsiMessages.DEFAULT_PORT, new byte[0], 0);
        assertEquals(OP_RST, g.take(P, "RST").header().op());
    }

    @Test
    void connectWithoutAProxyIsRefusedAsLibkrunDoes() {
        TsiGuest g = start(tsi());
        g.connect(CTL, P, TsiGuest.sockaddr(LO4, 80));
        assertEquals(-Sockets.ECONNREFUSED, g.result(CTL, TsiMessages.CONNECT));
    }

    @Test
    void outboundPolicyRefusesWithEpermAndOpensNothing() {
        TsiGuest g = start(tsi());
        g.create(CTL, P, SockAddr.AF_INET, TsiMessages.SOCK_STREAM);
        g.connect(CTL, P, TsiGuest.sockaddr(TEST_NET, 80));
        assertEquals(-Errno.EPERM, g.result(CTL, TsiMessages.CONNECT));
        assertEquals(0, g.mux.tsi().hostFdCount());
    }

    // ---- scope ----------------------------------------------------------------------------------------------------

    @Test
    void scopeWithoutInetRefusesInetProxies() throws Exception {
        TsiGuest g = start(TsiConfig.of(TsiConfig.HIJACK_UNIX, List.of(new PortMapping(freePort(), 8080))));
        g.create(CTL, P, SockAddr.AF_INET, TsiMessages.SOCK_STREAM);
        assertEquals(0, g.mux.tsi().proxyCount());
        g.connect(CTL, P, TsiGuest.sockaddr(LO4, 80));
        assertEquals(-Sockets.ECONNREFUSED, g.result(CTL, TsiMessages.CONNECT));
        g.listen(CTL, P, VM_PORT, 5, TsiGuest.sockaddr(ANY4, 8080));
        assertEquals(-Errno.EPERM, g.result(CTL, TsiMessages.LISTEN), "EPERM: the guest listens inside");
    }

    @Test
    void scopeWithoutUnixRefusesUnixProxies() {
        TsiGuest g = start(tsi());
        g.create(CTL, P, SockAddr.AF_UNIX, TsiMessages.SOCK_STREAM);
        assertEquals(0, g.mux.tsi().proxyCount());
    }

    @Test
    void disabledTsiOffersNoDgramAndResetsDgrams() {
        assertEquals(0, new VirtioVsock(VsockConfig.of(List.of())).availableFeatures());
        assertEquals(1L << 3, new VirtioVsock(VsockConfig.of(List.of()).withTsi(tsi())).availableFeatures());
        TsiGuest g = start(TsiConfig.disabled());
        assertEquals(null, g.mux.tsi());
        g.create(CTL, P, SockAddr.AF_INET, TsiMessages.SOCK_STREAM);
        assertEquals(OP_RST, g.take(CTL, "RST").header().op());
    }

    // ---- listen and the port map -------------------------------------------------------------------------------

    /** A guest listening on guest port {@code guestPort} through proxy {@code svm}; the LISTEN result. */
    int listen(TsiGuest g, int svm, InetAddress ip, int guestPort) {
        g.create(CTL, svm, ip instanceof java.net.Inet6Address ? SockAddr.AF_INET6 : SockAddr.AF_INET,
                TsiMessages.SOCK_STREAM);
        g.listen(CTL, svm, VM_PORT, 16, TsiGuest.sockaddr(ip, guestPort));
        return g.result(CTL, TsiMessages.LISTEN);
    }

    @Test
    void mappedListenerIsReachableAndAcceptsAreCounted() throws Exception {
        int hostPort = freePort();
        TsiGuest g = start(new TsiConfig(TsiConfig.HIJACK_INET, List.of(new PortMapping(hostPort, 8080)),
                OutboundPolicy.DENY_ALL, java.util.Optional.of(LO4), false, 8, 8));
        assertEquals(0, listen(g, P, ANY4, 8080));
        assertEquals(List.of(hostPort), g.mux.tsi().published().stream().map(p -> p.host().port()).toList());

        // Non-blocking accept with nothing pending.
        g.accept(CTL, P, TsiMessages.O_NONBLOCK);
        assertEquals(-Errno.EAGAIN, g.result(CTL, TsiMessages.ACCEPT));
        // A blocking accept waits for a client.
        g.accept(CTL, P, 0);
        Socket client = host(new Socket(LO4, hostPort));
        VsockHeader req = g.take(VM_PORT, "REQUEST to the guest's vsock listener").header();
        assertEquals(OP_REQUEST, req.op());
        assertTrue(g.noneFor(CTL), "no ACCEPT answer before the guest's RESPONSE");
        int local = req.srcPort();
        g.stream(OP_RESPONSE, VM_PORT, local, new byte[0], 0);
        assertEquals(0, g.result(CTL, TsiMessages.ACCEPT));

        client.getOutputStream().write("ping".getBytes(StandardCharsets.US_ASCII));
        assertEquals("ping", new String(readStream(g, VM_PORT, 4), StandardCharsets.US_ASCII));
        g.stream(OP_RW, VM_PORT, local, "pong".getBytes(StandardCharsets.US_ASCII), 0);
        assertEquals("pong", new String(client.getInputStream().readNBytes(4), StandardCharsets.US_ASCII));

        // getpeername() of the accepted socket: the host client.
        g.getname(CTL, VM_PORT, local, true);
        TsiGuest.Name n = g.name(CTL);
        assertEquals(0, n.result());
        assertEquals(SockAddr.inet(LO4, client.getLocalPort()), n.addr());

        // A second client established before the guest asks: counted, then ACCEPT answers at once.
        Socket c2 = host(new Socket(LO4, hostPort));
        VsockHeader req2 = g.take(VM_PORT, "second REQUEST").header();
        g.stream(OP_RESPONSE, VM_PORT, req2.srcPort(), new byte[0], 0);
        g.drain();
        g.accept(CTL, P, TsiMessages.O_NONBLOCK);
        assertEquals(0, g.result(CTL, TsiMessages.ACCEPT));
        assertTrue(c2.isConnected());

        // RELEASE of a listener closes it at once.
        g.release(CTL, P, TsiMessages.DEFAULT_PORT);
        assertEquals(List.of(), g.mux.tsi().published());
        assertThrows(java.net.ConnectException.class, () -> new Socket(LO4, hostPort).close());
    }

    @Test
    void publishAllExposesEveryListenerOnItsOwnPortButNotLoopbackOrPortZero() throws Exception {
        int mapped = freePort(), own = freePort();
        TsiGuest g = start(TsiConfig.of(TsiConfig.HIJACK_INET, List.of(new PortMapping(mapped, 8080)))
                .withListenHost(LO4).withPublishAll(true));
        assertEquals(0, listen(g, P, ANY4, own), "an unmapped port: published on the same number");
        assertEquals(0, listen(g, P + 1, ANY4, 8080), "a mapped port keeps its mapping");
        assertEquals(java.util.Set.of(own, mapped),
                g.mux.tsi().published().stream().map(p -> p.host().port()).collect(java.util.stream.Collectors.toSet()));
        g.accept(CTL, P, 0);
        Socket client = host(new Socket(LO4, own));
        VsockHeader req = g.take(VM_PORT, "REQUEST for the client of the guest's own port").header();
        assertEquals(OP_REQUEST, req.op());
        assertTrue(client.isConnected());
        assertEquals(-Sockets.EADDRNOTAVAIL, listen(g, P + 2, LO4, freePort()), "the guest's loopback stays inside");
        assertEquals(-Errno.EPERM, listen(g, P + 3, ANY4, 0), "port 0 stays inside");
        assertEquals(-1, TsiConfig.of(TsiConfig.HIJACK_INET, List.of()).hostPort(own), "off by default");
        assertEquals(-Errno.EPERM, listen(g, P + 4, ANY4, mapped), "the host port a mapping owns is not another port's");
    }

    @Test
    void unmappedListenStaysInsideTheGuest() throws Exception {
        TsiGuest g = start(TsiConfig.of(TsiConfig.HIJACK_INET, List.of(new PortMapping(freePort(), 8080)))
                .withListenHost(LO4));
        assertEquals(-Errno.EPERM, listen(g, P, ANY4, 9090));
        assertEquals(0, g.mux.tsi().hostFdCount());
    }

    @Test
    void listenOnTheGuestsLoopbackIsNeverExposed() throws Exception {
        TsiGuest g = start(TsiConfig.of(TsiConfig.HIJACK_INET, List.of(new PortMapping(freePort(), 8080))));
        assertEquals(-Sockets.EADDRNOTAVAIL, listen(g, P, LO4, 8080));
        assertEquals(-Sockets.EADDRNOTAVAIL, listen(g, P + 1, LO6, 8080));
        assertEquals(0, g.mux.tsi().hostFdCount());
    }

    @Test
    void twoVmsNeverShareAHostPort() throws Exception {
        int hostPort = freePort();
        TsiConfig t = TsiConfig.of(TsiConfig.HIJACK_INET, List.of(new PortMapping(hostPort, 8080))).withListenHost(LO4);
        TsiGuest a = start(t);
        assertEquals(0, listen(a, P, ANY4, 8080));
        TsiGuest b = start(t);
        assertEquals(-Sockets.EADDRINUSE, listen(b, P, ANY4, 8080));
        assertEquals(0, b.mux.tsi().hostFdCount());
    }

    @Test
    void ephemeralListenIsPublishedOnlyWhenAskedAndItsPortIsReported() throws Exception {
        TsiGuest g = start(tsi());
        assertEquals(-Errno.EPERM, listen(g, P, ANY4, 0));
        TsiGuest e = start(tsi().withExposeEphemeral(true));
        assertEquals(0, listen(e, P, ANY4, 0));
        e.getname(CTL, P, TsiMessages.DEFAULT_PORT, false);
        TsiGuest.Name n = e.name(CTL);
        assertEquals(0, n.result());
        assertNotEquals(0, n.addr().port());
        assertEquals(n.addr(), e.mux.tsi().published().get(0).host());
        host(new Socket(LO4, n.addr().port()));
        assertEquals(OP_REQUEST, e.take(VM_PORT, "REQUEST").header().op());
    }

    @Test
    void portMapValidationNamesTheField() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TsiConfig.of(
                TsiConfig.HIJACK_INET, List.of(new PortMapping(8080, 80), new PortMapping(8081, 80))));
        assertTrue(e.getMessage().startsWith("tsi.ports[1].guestPort"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> TsiConfig.of(
                TsiConfig.HIJACK_INET, List.of(new PortMapping(8080, 80), new PortMapping(8080, 81))));
        assertTrue(e.getMessage().startsWith("tsi.ports[1].hostPort"), e.getMessage());
        assertEquals(new PortMapping(8080, 80), PortMapping.parse("8080:80"));
        assertThrows(IllegalArgumentException.class, () -> PortMapping.parse("8080"));
        assertThrows(IllegalArgumentException.class, () -> PortMapping.parse("0:80"));
        assertThrows(IllegalArgumentException.class, () -> TsiConfig.of(4, List.of()));
    }

    // ---- datagrams ------------------------------------------------------------------------------------------------

    @Test
    void unconnectedUdpRequestAndReply() throws Exception {
        DatagramSocket server = host(new DatagramSocket(new InetSocketAddress(LO4, 0)));
        server.setSoTimeout(5000);
        TsiGuest g = start(tsi());
        g.create(CTL, P, SockAddr.AF_INET, TsiMessages.SOCK_DGRAM);
        g.sendtoAddr(CTL, P, TsiGuest.sockaddr(LO4, server.getLocalPort()));
        g.dgram(P, TsiMessages.SENDTO_DATA, "query".getBytes(StandardCharsets.US_ASCII));
        DatagramPacket got = new DatagramPacket(new byte[100], 100);
        server.receive(got);
        assertEquals("query", new String(got.getData(), 0, got.getLength(), StandardCharsets.US_ASCII));
        server.send(new DatagramPacket("answer".getBytes(StandardCharsets.US_ASCII), 6, got.getSocketAddress()));
        VsockPacket r = g.take(P, "datagram");
        assertEquals(TYPE_DGRAM, r.header().type());
        assertEquals(0, r.header().srcPort());
        assertEquals("answer", new String(r.payload(), StandardCharsets.US_ASCII));
    }

    @Test
    void connectedUdpRequestAndReplyOverIpv6() throws Exception {
        DatagramSocket server = host(new DatagramSocket(new InetSocketAddress(LO6, 0)));
        server.setSoTimeout(5000);
        TsiGuest g = start(tsi());
        g.create(CTL, P, SockAddr.AF_INET6, TsiMessages.SOCK_DGRAM);
        g.connect(CTL, P, TsiGuest.sockaddr(LO6, server.getLocalPort()));
        assertEquals(0, g.result(CTL, TsiMessages.CONNECT));
        g.dgram(P, P, new byte[] {9, 8, 7});
        DatagramPacket got = new DatagramPacket(new byte[100], 100);
        server.receive(got);
        assertArrayEquals(new byte[] {9, 8, 7}, Arrays.copyOf(got.getData(), got.getLength()));
        server.send(new DatagramPacket(new byte[] {1}, 1, got.getSocketAddress()));
        assertArrayEquals(new byte[] {1}, g.take(P, "reply").payload());
        g.getname(CTL, P, TsiMessages.DEFAULT_PORT, true);
        assertEquals(SockAddr.inet(LO6, server.getLocalPort()), g.name(CTL).addr());
    }

    @Test
    void udpToADisallowedDestinationIsDropped() throws Exception {
        TsiGuest g = start(tsi());
        g.create(CTL, P, SockAddr.AF_INET, TsiMessages.SOCK_DGRAM);
        g.sendtoAddr(CTL, P, TsiGuest.sockaddr(TEST_NET, 53));
        g.dgram(P, TsiMessages.SENDTO_DATA, new byte[] {1});
        assertEquals(0, g.mux.tsi().hostFdCount(), "no socket for a refused destination");
        g.connect(CTL, P, TsiGuest.sockaddr(TEST_NET, 53));
        assertEquals(-Errno.EPERM, g.result(CTL, TsiMessages.CONNECT));
    }

    // ---- malformed messages ----------------------------------------------------------------------------------

    @Test
    void malformedControlMessagesGetErrnosWhileAnotherProxyKeepsWorking() throws Exception {
        ServerSocket server = host(new ServerSocket(0, 8, LO4));
        TsiGuest g = start(tsi());
        connectStream(g, P, LO4, server.getLocalPort(), SockAddr.AF_INET);
        Socket s = host(server.accept());
        int other = P + 1;
        g.create(CTL, other, SockAddr.AF_INET, TsiMessages.SOCK_STREAM);

        g.dgram(CTL, TsiMessages.CONNECT, new byte[] {1, 2});
        assertEquals(-Errno.EINVAL, g.result(CTL, TsiMessages.CONNECT), "short");
        byte[] bad = TsiGuest.sockaddr(LO4, 80);
        bad[0] = 99;
        g.connect(CTL, other, bad);
        assertEquals(-Sockets.EAFNOSUPPORT, g.result(CTL, TsiMessages.CONNECT), "unknown family");
        g.connect(CTL, other, TsiGuest.sockaddr(LO6, 80));
        assertEquals(-Errno.EINVAL, g.result(CTL, TsiMessages.CONNECT), "family of another proxy");
        g.dgram(CTL, TsiMessages.CONNECT, TsiGuest.addressed(other, TsiGuest.sockaddr(LO4, 80), 129));
        assertEquals(-Errno.EINVAL, g.result(CTL, TsiMessages.CONNECT), "addr_len > 128");
        g.dgram(CTL, TsiMessages.CONNECT, TsiGuest.addressed(other, TsiGuest.sockaddr(LO4, 80), -1));
        assertEquals(-Errno.EINVAL, g.result(CTL, TsiMessages.CONNECT), "addr_len 2^32-1");
        g.dgram(CTL, TsiMessages.CONNECT, Arrays.copyOf(TsiGuest.addressed(other, TsiGuest.sockaddr(LO4, 80), 16), 12));
        assertEquals(-Errno.EINVAL, g.result(CTL, TsiMessages.CONNECT), "addr_len beyond the message");
        g.dgram(CTL, TsiMessages.CONNECT, Arrays.copyOf(TsiGuest.addressed(other, TsiGuest.sockaddr(LO4, 80), 3), 11));
        assertEquals(-Errno.EINVAL, g.result(CTL, TsiMessages.CONNECT), "addr_len 3: no room for a port (fuzz find)");
        g.getname(CTL, 4242, TsiMessages.DEFAULT_PORT, true);
        assertEquals(-Errno.EINVAL, g.name(CTL).result(), "unknown proxy");
        g.dgram(CTL, TsiMessages.GETNAME, new byte[3]);
        assertEquals(-Errno.EINVAL, g.name(CTL).result(), "short GETNAME");
        g.dgram(CTL, TsiMessages.LISTEN, new byte[5]);
        assertEquals(-Errno.EPERM, g.result(CTL, TsiMessages.LISTEN), "short LISTEN of no proxy");
        g.dgram(CTL, TsiMessages.ACCEPT, new byte[1]);
        assertEquals(-Errno.EINVAL, g.result(CTL, TsiMessages.ACCEPT), "short ACCEPT");
        g.accept(CTL, 4242, 0);
        assertEquals(-Errno.EINVAL, g.result(CTL, TsiMessages.ACCEPT), "ACCEPT on no proxy");
        g.dgram(CTL, TsiMessages.PROXY_CREATE, new byte[7]);
        g.dgram(CTL, TsiMessages.PROXY_RELEASE, new byte[1]);
        g.dgram(CTL, TsiMessages.SENDTO_ADDR, new byte[0]);
        g.dgram(CTL, TsiMessages.SENDTO_DATA, new byte[10]);
        g.create(CTL, 4243, SockAddr.AF_INET, 9);
        g.create(CTL, 4244, 77, TsiMessages.SOCK_STREAM);
        assertTrue(g.noneFor(CTL), "messages without a reply get none");
        assertEquals(2, g.mux.tsi().proxyCount());
        assertEquals(0, g.mux.tsi().internalErrors());

        // The connected proxy still carries data.
        g.stream(OP_RW, P, TsiMessages.DEFAULT_PORT, new byte[] {42}, 0);
        assertEquals(42, s.getInputStream().read());
        s.getOutputStream().write(43);
        assertArrayEquals(new byte[] {43}, readStream(g, P, 1));
    }

    /** A DGRAM whose header len lies (found by the tsi test guest: it got a STREAM RST on its control port). */
    static MalformedPacketException lyingDgram(int src, int dst) {
        return new MalformedPacketException(MalformedPacketException.Reason.PAYLOAD_BEYOND_CHAIN,
                new VsockHeader(GUEST_CID, HOST_CID, src, dst, 64, TYPE_DGRAM, OP_RW, 0, 0, 0), "test");
    }

    @Test
    void aMalformedDgramIsDroppedNotAnsweredWithAStreamRst() {
        TsiGuest g = start(tsi());
        g.mux.malformed(lyingDgram(CTL, TsiMessages.CONNECT));
        g.mux.malformed(new MalformedPacketException(MalformedPacketException.Reason.PAYLOAD_TOO_LARGE,
                new VsockHeader(GUEST_CID, HOST_CID, CTL, TsiMessages.GETNAME, -1, TYPE_DGRAM, OP_RW, 0, 0, 0), "test"));
        assertTrue(g.noneFor(CTL), "TSI's control DGRAMs are never answered with RST: " + g.inbox);
        assertEquals(2, g.mux.droppedPackets());
        // The control port still works.
        g.getname(CTL, 4242, TsiMessages.DEFAULT_PORT, true);
        assertEquals(-Errno.EINVAL, g.name(CTL).result());
    }

    @Test
    void aMalformedDgramNeverResetsAStreamOnTheSamePorts() throws Exception {
        ServerSocket server = host(new ServerSocket(0, 8, LO4));
        TsiGuest g = start(tsi());
        connectStream(g, P, LO4, server.getLocalPort(), SockAddr.AF_INET);
        Socket s = host(server.accept());
        g.mux.malformed(lyingDgram(P, TsiMessages.DEFAULT_PORT));
        assertTrue(g.noneFor(P), "no RST for the stream: " + g.inbox);
        g.stream(OP_RW, P, TsiMessages.DEFAULT_PORT, new byte[] {42}, 0);
        assertEquals(42, s.getInputStream().read());
        assertEquals(1, g.mux.connectionCount());
    }

    // ---- caps -------------------------------------------------------------------------------------------------

    @Test
    void proxyCapAnswersEnobufs() {
        TsiGuest g = start(tsi().withMaxProxies(2));
        g.create(CTL, 1, SockAddr.AF_INET, TsiMessages.SOCK_STREAM);
        g.create(CTL, 2, SockAddr.AF_INET, TsiMessages.SOCK_STREAM);
        g.create(CTL, 3, SockAddr.AF_INET, TsiMessages.SOCK_STREAM);
        assertEquals(2, g.mux.tsi().proxyCount());
        g.connect(CTL, 3, TsiGuest.sockaddr(LO4, 80));
        assertEquals(-Sockets.ENOBUFS, g.result(CTL, TsiMessages.CONNECT));
        g.listen(CTL, 3, VM_PORT, 1, TsiGuest.sockaddr(ANY4, 80));
        assertEquals(-Sockets.ENOBUFS, g.result(CTL, TsiMessages.LISTEN));
        g.release(CTL, 1, TsiMessages.DEFAULT_PORT);
        g.create(CTL, 3, SockAddr.AF_INET, TsiMessages.SOCK_STREAM);
        assertEquals(2, g.mux.tsi().proxyCount());
    }

    @Test
    void hostFdCapAnswersEmfileAndReleaseFreesIt() throws Exception {
        ServerSocket server = host(new ServerSocket(0, 8, LO4));
        TsiGuest g = start(tsi().withMaxHostFds(1));
        connectStream(g, 1, LO4, server.getLocalPort(), SockAddr.AF_INET);
        host(server.accept());
        g.create(CTL, 2, SockAddr.AF_INET, TsiMessages.SOCK_STREAM);
        g.connect(CTL, 2, TsiGuest.sockaddr(LO4, server.getLocalPort()));
        assertEquals(-Sockets.EMFILE, g.result(CTL, TsiMessages.CONNECT));
        // The first stream ends (guest RST): its socket is closed and counted off.
        g.stream(OP_RST, 1, TsiMessages.DEFAULT_PORT, new byte[0], 0);
        assertEquals(0, g.mux.tsi().hostFdCount());
        g.connect(CTL, 2, TsiGuest.sockaddr(LO4, server.getLocalPort()));
        assertEquals(0, g.result(CTL, TsiMessages.CONNECT));
    }
}
