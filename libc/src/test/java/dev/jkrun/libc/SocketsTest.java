package dev.jkrun.libc;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link Sockets} over real AF_UNIX stream sockets: waiting is a value, failures carry their errno. */
class SocketsTest {
    @TempDir
    Path dir;

    private record Pair(FileDescriptor listener, FileDescriptor client, FileDescriptor server) implements AutoCloseable {
        @Override
        public void close() {
            client.close();
            server.close();
            listener.close();
        }
    }

    private Pair pair() {
        Path p = dir.resolve("s.sock");
        FileDescriptor l = Sockets.listenUnix(p, 4);
        assertNull(Sockets.accept(l), "nothing pending yet");
        Sockets.Connecting c = Sockets.connectUnix(p);
        assertTrue(c.connected(), "a unix connect to a listener completes at once");
        FileDescriptor s = Sockets.accept(l);
        assertNotNull(s);
        return new Pair(l, c.fd(), s);
    }

    @Test
    void bytesFlowBothWaysAndWaitingIsZero() {
        try (Pair p = pair()) {
            ByteBuffer in = ByteBuffer.allocate(16);
            assertEquals(0, Sockets.read(p.server(), in), "would block");
            assertEquals(5, Sockets.write(p.client(), ByteBuffer.wrap("hello".getBytes())));
            assertEquals(5, Sockets.read(p.server(), in));
            assertEquals(5, in.position());
            assertArrayEquals("hello".getBytes(), java.util.Arrays.copyOf(in.array(), 5));
            ByteBuffer direct = ByteBuffer.allocateDirect(8);
            Sockets.write(p.server(), ByteBuffer.wrap("xy".getBytes()));
            assertEquals(2, Sockets.read(p.client(), direct));
            assertEquals('x', direct.get(0));
        }
    }

    @Test
    void heapBuffersAreReadAndWrittenAtTheirPosition() {
        try (Pair p = pair()) {
            ByteBuffer src = ByteBuffer.wrap("0123456789".getBytes());
            src.position(3).limit(7);
            assertEquals(4, Sockets.write(p.client(), src));
            assertEquals(7, src.position());
            byte[] dst = new byte[10];
            ByteBuffer d = ByteBuffer.wrap(dst);
            d.position(5);
            assertEquals(4, Sockets.read(p.server(), d));
            assertEquals("3456", new String(dst, 5, 4));
            assertEquals(0, dst[4]);
        }
    }

    @Test
    void endOfStreamShutdownAndBrokenPipe() {
        try (Pair p = pair()) {
            Sockets.shutdown(p.client(), Sockets.SHUT_WR);
            assertEquals(-1, Sockets.read(p.server(), ByteBuffer.allocate(4)), "EOF after the peer's SHUT_WR");
            assertEquals(3, Sockets.write(p.server(), ByteBuffer.wrap("abc".getBytes())), "the other direction still works");
            assertEquals(3, Sockets.read(p.client(), ByteBuffer.allocate(4)));
            p.client().close();
            NativeCallException e = assertThrows(NativeCallException.class,
                    () -> Sockets.write(p.server(), ByteBuffer.wrap("x".getBytes())));
            assertEquals(Sockets.EPIPE, e.errno(), "EPIPE, and no SIGPIPE killed us");
            assertEquals(0, Sockets.soError(p.server()));
        }
    }

    @Test
    void aFullSocketSaysZero() {
        try (Pair p = pair()) {
            ByteBuffer chunk = ByteBuffer.allocate(64 << 10);
            long total = 0;
            int n;
            while ((n = Sockets.write(p.client(), chunk.clear())) > 0) {
                total += n;
            }
            assertEquals(0, n);
            assertTrue(total > 0);
        }
    }

    @Test
    void connectFailuresCarryTheirErrno() throws Exception {
        NativeCallException e = assertThrows(NativeCallException.class, () -> Sockets.connectUnix(dir.resolve("none")));
        assertEquals(Errno.ENOENT, e.errno());
        Path notListening = dir.resolve("bound");
        try (FileDescriptor fd = Sockets.socket(SockAddr.AF_UNIX, Sockets.SOCK_STREAM)) {
            Sockets.bind(fd, SockAddr.unix(notListening));
            e = assertThrows(NativeCallException.class, () -> Sockets.connectUnix(notListening));
            assertEquals(Sockets.ECONNREFUSED, e.errno());
        }
        Path exists = Files.createFile(dir.resolve("file"));
        e = assertThrows(NativeCallException.class, () -> Sockets.listenUnix(exists, 1));
        assertEquals(Sockets.EADDRINUSE, e.errno());
    }

    @Test
    void unixAddressesAreCheckedAndNamed() {
        Path longest = Path.of("/" + "a".repeat(SockAddr.SUN_PATH_SIZE - 2));
        assertEquals(SockAddr.SUN_PATH_SIZE + 2, SockAddr.unix(longest).bytes().length);
        assertThrows(IllegalArgumentException.class, () -> SockAddr.unix(Path.of("/" + "a".repeat(SockAddr.SUN_PATH_SIZE - 1))));
        assertThrows(IllegalArgumentException.class, () -> SockAddr.unix(Path.of("")));
        SockAddr a = SockAddr.unix(Path.of("/tmp/x.sock"));
        assertEquals(SockAddr.AF_UNIX, a.family());
        assertEquals("unix:/tmp/x.sock", a.toString());
        Path p = dir.resolve("named.sock");
        try (FileDescriptor l = Sockets.listenUnix(p, 1)) {
            assertEquals("unix:" + p, Sockets.localAddress(l).toString());
            assertEquals(0, Sockets.soError(l));
        }
    }

    @Test
    void inetAddressesHaveTheKernelsLayout() throws Exception {
        SockAddr v4 = SockAddr.inet(java.net.InetAddress.getByName("127.0.0.1"), 8080);
        assertEquals(SockAddr.AF_INET, v4.family());
        assertEquals(SockAddr.INET_SIZE, v4.bytes().length);
        assertEquals(8080, v4.port());
        assertEquals("127.0.0.1:8080", v4.toString());
        assertArrayEquals(new byte[] {0x1f, (byte) 0x90, 127, 0, 0, 1}, java.util.Arrays.copyOfRange(v4.bytes(), 2, 8));
        SockAddr v6 = SockAddr.inet(java.net.InetAddress.getByName("::1"), 53);
        assertEquals(SockAddr.AF_INET6, v6.family());
        assertEquals(SockAddr.INET6_SIZE, v6.bytes().length);
        assertEquals(53, v6.port());
        assertEquals(java.net.InetAddress.getByName("::1"), v6.ip());
        assertEquals(-1, SockAddr.unix(Path.of("/x")).port());
        assertThrows(IllegalArgumentException.class, () -> SockAddr.inet(java.net.InetAddress.getByName("::1"), 65536));
    }

    @Test
    void udpDatagramsGoBothWaysOnLoopbackWithTheirSenders() throws Exception {
        for (String lo : new String[] {"127.0.0.1", "::1"}) {
            java.net.InetAddress ip = java.net.InetAddress.getByName(lo);
            int family = lo.contains(":") ? SockAddr.AF_INET6 : SockAddr.AF_INET;
            try (FileDescriptor a = Sockets.socket(family, Sockets.SOCK_DGRAM);
                 FileDescriptor b = Sockets.socket(family, Sockets.SOCK_DGRAM)) {
                Sockets.bind(a, SockAddr.inet(ip, 0));
                Sockets.bind(b, SockAddr.inet(ip, 0));
                SockAddr aName = Sockets.localAddress(a);
                assertNull(Sockets.receiveFrom(b, ByteBuffer.allocate(8)), "nothing queued yet");
                assertEquals(5, Sockets.sendTo(a, ByteBuffer.wrap("hello".getBytes()), Sockets.localAddress(b)));
                ByteBuffer small = ByteBuffer.allocate(3);
                Sockets.Datagram d = null;
                for (int i = 0; i < 1000 && d == null; i++) {
                    d = Sockets.receiveFrom(b, small);
                }
                assertNotNull(d);
                assertEquals(5, d.length(), "the length before truncation");
                assertEquals(3, small.position());
                assertEquals(aName, d.from());
                Sockets.connect(b, aName);
                assertEquals(aName, Sockets.peerAddress(b));
            }
        }
    }
}
