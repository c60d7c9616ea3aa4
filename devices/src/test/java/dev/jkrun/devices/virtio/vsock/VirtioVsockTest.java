package dev.jkrun.devices.virtio.vsock;

import static dev.jkrun.devices.virtio.vsock.VsockHeader.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.devices.testing.CountingTrigger;
import dev.jkrun.devices.testing.MockDriver;
import dev.jkrun.devices.virtio.MmioTransport;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.memory.HeapGuestMemory;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.BooleanSupplier;
import java.util.zip.CRC32;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole device on its event loop, driven through virtio-mmio by a guest that speaks vsock packets, bridged to
 * real unix sockets in a temporary directory: both bridge directions, a guest that listens late, credit running out
 * and coming back, malformed packets beside a working connection, the connection cap, 50 connections at once.
 */
class VirtioVsockTest {
    static final long TIMEOUT_MS = 20_000;
    static final int OUT_PORT = 1234, IN_PORT = 5678;

    @TempDir
    Path dir;
    final HeapGuestMemory mem = HeapGuestMemory.of(0, 32 << 20);
    final CountingTrigger irq = new CountingTrigger();
    final List<AutoCloseable> closeLater = new ArrayList<>();
    VirtioVsock dev;
    MmioTransport transport;
    TestGuest guest;
    int fdsBefore = FileDescriptor.openCount();

    Path out() { return dir.resolve("out.sock"); }

    Path in() { return dir.resolve("in.sock"); }

    VsockConfig config() {
        return VsockConfig.of(List.of(new VsockPort(OUT_PORT, out(), false), new VsockPort(IN_PORT, in(), true)));
    }

    void start(VsockConfig config) {
        dev = new VirtioVsock(config);
        transport = new MmioTransport(dev, mem, irq);
        MockDriver drv = new MockDriver(transport, mem, 0x10000, 0x100000, 0x500000);
        drv.init(0);
        assertTrue(dev.isActivated());
        guest = new QueueGuest(drv).guest();
    }

    @AfterEach
    void tearDown() throws Exception {
        if (transport != null) {
            transport.close();
            assertFalse(Files.exists(in()), "the listening socket's node is removed");
        }
        for (AutoCloseable c : closeLater) {
            c.close();
        }
        assertTrue(CountingTrigger.await(() -> FileDescriptor.openCount() == fdsBefore, TIMEOUT_MS),
                "host descriptors left: " + (FileDescriptor.openCount() - fdsBefore));
    }

    /** Polls the guest until {@code cond} holds. */
    void until(String what, BooleanSupplier cond) {
        long deadline = System.nanoTime() + TIMEOUT_MS * 1_000_000;
        while (true) {
            guest.poll();
            if (cond.getAsBoolean()) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        }
    }

    /** A host server at {@code path}: each connection runs {@code session} on its own thread. */
    interface Session {
        void run(SocketChannel c) throws IOException;
    }

    void serve(Path path, Session session) throws IOException {
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(path));
        closeLater.add(server);
        Thread t = new Thread(() -> {
            while (server.isOpen()) {
                try {
                    SocketChannel c = server.accept();
                    Thread s = new Thread(() -> {
                        try (c) {
                            session.run(c);
                        } catch (IOException ignored) {
                            // the VMM reset the connection
                        }
                    }, "vsock-test-host-session");
                    s.setDaemon(true);
                    s.start();
                } catch (IOException e) {
                    return;
                }
            }
        }, "vsock-test-host-server");
        t.setDaemon(true);
        t.start();
    }

    static void echo(SocketChannel c) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(32 << 10);
        while (c.read(b) >= 0) {
            b.flip();
            while (b.hasRemaining()) {
                c.write(b);
            }
            b.clear();
        }
    }

    static long crc(byte[] b) {
        CRC32 c = new CRC32();
        c.update(b);
        return c.getValue();
    }

    // ---- the device ---------------------------------------------------------------------------------------------

    @Test
    void deviceIdQueuesAndGuestCidIn32And64BitReads() {
        VirtioVsock d = new VirtioVsock(VsockConfig.of(List.of()));
        assertEquals(19, d.deviceType());
        assertArrayEquals(new int[] {256, 256, 256}, d.queueMaxSizes());
        assertEquals(0, d.availableFeatures());
        byte[] b8 = new byte[8];
        d.readConfig(0, b8);
        assertEquals(3, ByteBuffer.wrap(b8).order(ByteOrder.LITTLE_ENDIAN).getLong());
        byte[] lo = new byte[4], hi = new byte[4];
        d.readConfig(0, lo);
        d.readConfig(4, hi);
        assertEquals(3, ByteBuffer.wrap(lo).order(ByteOrder.LITTLE_ENDIAN).getInt());
        assertEquals(0, ByteBuffer.wrap(hi).order(ByteOrder.LITTLE_ENDIAN).getInt());
        d.close();
    }

    @Test
    void anExistingListenPathIsRefusedNamingTheField() throws IOException {
        Files.createFile(in());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new VirtioVsock(config()));
        assertTrue(e.getMessage().startsWith("vsock.ports[1].path"), e.getMessage());
        Files.delete(in());
    }

    @Test
    void listeningSocketsAreBoundForTheDevicesLifeNotPerActivation() throws IOException {
        try (VirtioVsock d = new VirtioVsock(VsockConfig.of(List.of(new VsockPort(IN_PORT, in(), true))))) {
            assertTrue(Files.exists(in()), "bound at construction, before any driver");
            d.reset();
            assertTrue(Files.exists(in()), "a driver reset keeps it");
        }
        assertFalse(Files.exists(in()), "removed at close");
        VsockConfig unbindable = VsockConfig.of(List.of(new VsockPort(IN_PORT, dir.resolve("no-such-dir/in.sock"), true)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new VirtioVsock(unbindable));
        assertTrue(e.getMessage().startsWith("vsock.ports[0].path: cannot listen"), e.getMessage());
    }

    // ---- guest connects to the host ---------------------------------------------------------------------------

    @Test
    void fiftyConnectionsToAHostServerMoveDataIntact() throws IOException {
        serve(out(), VirtioVsockTest::echo);
        start(config());
        Random rnd = new Random(7);
        List<TestGuest.Socket> socks = new ArrayList<>();
        List<byte[]> sent = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            socks.add(guest.connect(OUT_PORT));
            byte[] data = new byte[256 * 1024 + rnd.nextInt(4096)];
            rnd.nextBytes(data);
            sent.add(data);
        }
        until("50 connections", () -> socks.stream().allMatch(s -> s.established));
        for (int i = 0; i < 50; i++) {
            socks.get(i).write(sent.get(i));
        }
        until("all data sent", () -> socks.stream().allMatch(TestGuest.Socket::allSent));
        socks.forEach(s -> s.shutdown(SHUTDOWN_SEND));
        until("all echoes back", () -> {
            for (int i = 0; i < 50; i++) {
                if (socks.get(i).received.size() < sent.get(i).length || (socks.get(i).peerShutdown & SHUTDOWN_SEND) == 0) {
                    return false;
                }
            }
            return true;
        });
        for (int i = 0; i < 50; i++) {
            assertEquals(crc(sent.get(i)), crc(socks.get(i).received.toByteArray()), "connection " + i);
            assertFalse(socks.get(i).reset);
            socks.get(i).shutdown(SHUTDOWN_RCV | SHUTDOWN_SEND);
        }
        until("RST for every closed connection", () -> socks.stream().allMatch(s -> s.reset));
    }

    @Test
    void aPortWithoutABridgeOrServerIsReset() {
        start(config());
        TestGuest.Socket nobridge = guest.connect(4321);
        TestGuest.Socket noserver = guest.connect(OUT_PORT);
        until("both reset", () -> nobridge.reset && noserver.reset);
    }

    @Test
    void creditRunsOutAndComesBack() throws IOException {
        byte[] data = new byte[TestGuest.GUEST_BUF_ALLOC * 3];
        new Random(3).nextBytes(data);
        java.io.ByteArrayOutputStream hostGot = new java.io.ByteArrayOutputStream();
        serve(out(), c -> {
            c.write(ByteBuffer.wrap(data));
            c.shutdownOutput();
            ByteBuffer b = ByteBuffer.allocate(4096);
            while (c.read(b) >= 0) {
                synchronized (hostGot) {
                    hostGot.write(b.array(), 0, b.position());
                }
                b.clear();
            }
        });
        start(config());
        TestGuest.Socket s = guest.connect(OUT_PORT);
        s.consuming = false;
        until("the guest's window is full", () -> s.received.size() == TestGuest.GUEST_BUF_ALLOC && s.creditRequestsSeen == 1);
        guest.poll();
        assertEquals(TestGuest.GUEST_BUF_ALLOC, s.received.size(), "never beyond the guest's buf_alloc");
        s.consuming = true;
        s.consume();
        s.shutdown(0); // any packet carries the new fwd_cnt; SHUTDOWN with no flags says nothing else
        until("everything", () -> s.received.size() == data.length && (s.peerShutdown & SHUTDOWN_SEND) != 0);
        assertArrayEquals(data, s.received.toByteArray());
        // The other way, more than our buf_alloc: the guest waits for our credit updates.
        byte[] up = new byte[1 << 20];
        new Random(4).nextBytes(up);
        s.write(up);
        until("the host got it", () -> {
            synchronized (hostGot) {
                return hostGot.size() == up.length;
            }
        });
        synchronized (hostGot) {
            assertArrayEquals(up, hostGot.toByteArray());
        }
    }

    @Test
    void malformedPacketsLeaveAnotherConnectionWorking() throws IOException {
        serve(out(), VirtioVsockTest::echo);
        start(config());
        TestGuest.Socket good = guest.connect(OUT_PORT);
        until("connected", () -> good.established);
        good.write("before".getBytes());
        until("echo", () -> good.received.size() == 6);
        List<byte[]> junk = List.of(new byte[0], new byte[10],
                TestGuest.hdr(OP_RW, 9, OUT_PORT, -1, 0, 0, 0).encode(),
                TestGuest.hdr(OP_RW, 9, OUT_PORT, 65537, 0, 0, 0).encode(),
                new VsockHeader(GUEST_CID, 77, 9, OUT_PORT, 0, TYPE_STREAM, OP_REQUEST, 0, 0, 0).encode(),
                TestGuest.hdr(999, 9, OUT_PORT, 0, 0, 0, 0).encode());
        TestGuest.Socket victim = guest.connect(OUT_PORT);
        until("victim connected", () -> victim.established);
        byte[] victimHdr = TestGuest.hdr(OP_RW, victim.local, OUT_PORT, 100, 0, TestGuest.GUEST_BUF_ALLOC, 0).encode();
        for (byte[] j : junk) {
            guest.sendRawForTest(j);
        }
        guest.sendRawForTest(Arrays.copyOf(victimHdr, 44 + 99)); // len beyond the chain: the victim is reset
        until("victim reset", () -> victim.reset);
        good.write("after".getBytes());
        until("echo after", () -> good.received.size() == 11);
        assertEquals("beforeafter", good.received.toString());
        assertFalse(good.reset);
    }

    @Test
    void theConnectionCapAnswersRst() throws IOException {
        serve(out(), VirtioVsockTest::echo);
        start(config().withMaxConnections(3));
        List<TestGuest.Socket> socks = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            socks.add(guest.connect(OUT_PORT));
        }
        until("three in, one out", () -> socks.stream().filter(s -> s.established).count() == 3
                && socks.stream().filter(s -> s.reset).count() == 1);
    }

    // ---- host connects to the guest ---------------------------------------------------------------------------

    SocketChannel hostClient() throws IOException {
        SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
        c.connect(UnixDomainSocketAddress.of(in()));
        closeLater.add(c);
        return c;
    }

    @Test
    void aHostClientThatSendsAndHalfClosesBeforeTheGuestListensLosesNothing() throws IOException {
        // socat's "echo ping | socat - UNIX-CONNECT:..." against a guest still booting (tier 3 saw only EOF)
        start(config());
        SocketChannel c = hostClient();
        c.write(ByteBuffer.wrap("ping".getBytes()));
        c.shutdownOutput();
        until("refused a few times", () -> guest.requestsRefused >= 3);
        guest.listening.add(IN_PORT);
        until("accepted with the data, then the host's half-close",
                () -> guest.accepted.size() == 1 && (guest.accepted.get(0).peerShutdown & SHUTDOWN_SEND) != 0);
        TestGuest.Socket s = guest.accepted.get(0);
        assertEquals("ping", s.received.toString());
        s.write("pong".getBytes());
        ByteBuffer b = ByteBuffer.allocate(4);
        while (b.hasRemaining() && c.read(b) >= 0) {
            // the guest's reply after our half-close
        }
        assertEquals("pong", new String(b.array(), 0, b.position()));
        c.close();
    }

    @Test
    void hostDataInPiecesThenEofAllArrives() throws IOException {
        // a server that writes a reply in pieces and closes at once (tier 3: only the first piece arrived)
        start(config());
        guest.listening.add(IN_PORT);
        SocketChannel c = hostClient();
        until("accepted", () -> guest.accepted.size() == 1);
        TestGuest.Socket s = guest.accepted.get(0);
        for (String piece : new String[] {"HTTP/1.0", " 200 OK\r\n", "\r\n", "page\n"}) {
            c.write(ByteBuffer.wrap(piece.getBytes()));
        }
        c.close();
        until("everything, then the end", () -> (s.peerShutdown & SHUTDOWN_SEND) != 0 || s.reset);
        assertEquals("HTTP/1.0 200 OK\r\n\r\npage\n", s.received.toString());
    }

    @Test
    void aHostClientThatHalfClosesStillGetsTheGuestsReply() throws IOException {
        // socat's way: send, shutdown(SHUT_WR), then wait for the answer
        start(config());
        guest.listening.add(IN_PORT);
        SocketChannel c = hostClient();
        c.write(ByteBuffer.wrap("ping".getBytes()));
        c.shutdownOutput();
        until("accepted with data", () -> guest.accepted.size() == 1 && guest.accepted.get(0).received.size() == 4);
        TestGuest.Socket s = guest.accepted.get(0);
        until("the host's half-close reaches the guest", () -> (s.peerShutdown & SHUTDOWN_SEND) != 0);
        assertEquals(0, s.peerShutdown & VsockHeader.SHUTDOWN_RCV, "the host still receives");
        assertFalse(s.reset, "not reset");
        s.write("pong".getBytes());
        ByteBuffer b = ByteBuffer.allocate(4);
        while (b.hasRemaining() && c.read(b) >= 0) {
            // the guest's reply after our half-close
        }
        assertEquals("pong", new String(b.array(), 0, b.position()));
        c.close();
    }

    @Test
    void aHostClientReachesTheGuestsListener() throws IOException {
        start(config());
        guest.listening.add(IN_PORT);
        SocketChannel c = hostClient();
        c.write(ByteBuffer.wrap("ping".getBytes()));
        until("accepted with data", () -> guest.accepted.size() == 1 && guest.accepted.get(0).received.size() == 4);
        TestGuest.Socket s = guest.accepted.get(0);
        assertEquals("ping", s.received.toString());
        s.write("pong".getBytes());
        ByteBuffer b = ByteBuffer.allocate(4);
        while (b.hasRemaining()) {
            c.read(b);
        }
        assertEquals("pong", new String(b.array()));
        c.close();
        until("host close reaches the guest", () -> (s.peerShutdown & SHUTDOWN_SEND) != 0);
    }

    @Test
    void aGuestThatListensLateGetsTheConnectionWithoutAStall() throws IOException {
        start(config());
        SocketChannel c = hostClient();
        c.write(ByteBuffer.wrap("early bird".getBytes()));
        until("refused a few times", () -> guest.requestsRefused >= 3);
        guest.listening.add(IN_PORT);
        until("accepted", () -> guest.accepted.size() == 1 && guest.accepted.get(0).received.size() == 10);
        assertEquals("early bird", guest.accepted.get(0).received.toString());
    }

    @Test
    void manyHostClientsAtOnce() throws IOException {
        start(config());
        guest.listening.add(IN_PORT);
        List<SocketChannel> clients = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            SocketChannel c = hostClient();
            c.write(ByteBuffer.wrap(("client " + i).getBytes()));
            clients.add(c);
        }
        until("20 accepted", () -> guest.accepted.size() == 20
                && guest.accepted.stream().allMatch(s -> s.received.size() >= 8));
        assertEquals(20, guest.accepted.stream().map(s -> s.remote).distinct().count(), "a port each");
    }
}
