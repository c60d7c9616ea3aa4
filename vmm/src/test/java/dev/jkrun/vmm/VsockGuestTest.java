package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.devices.virtio.vsock.VsockConfig;
import dev.jkrun.devices.virtio.vsock.VsockPort;
import dev.jkrun.kvm.testing.KvmAvailable;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * virtio-vsock through real KVM: the vsock test guest speaks raw packets over virtio-mmio to unix-socket bridges in
 * both directions — a REQUEST to an unmapped port, malformed packets, an echo and a bulk transfer paced by the
 * credit the guest grants through a bridge to a host server, and a host client of a listening bridge whose first
 * REQUEST the guest refuses (a guest that listens late) — each completion taken through its interrupt.
 */
class VsockGuestTest {
    private static final int CONNECT_PORT = 5000, LISTEN_PORT = 5001, UNMAPPED_PORT = 9999, BULK = 12288;
    private static final List<String> CHECKS = List.of(
            "config: guest_cid is 3",
            "unmapped: REQUEST to an unconfigured port gets RST",
            "malformed: every tx chain comes back",
            "malformed: RW without a connection gets RST",
            "malformed: nothing but RSTs answers them",
            "connect: REQUEST gets RESPONSE",
            "connect: the host advertises credit",
            "connect: echo through the host unix socket",
            "credit: the bulk data arrived whole and in order",
            "credit: never more than granted",
            "connect: SHUTDOWN gets RST",
            "listen: the host's connection arrives as REQUEST",
            "listen: a refused REQUEST comes again",
            "listen: data from the host connection",
            "listen: the host's close arrives");

    @BeforeAll
    static void kvm() { KvmAvailable.assumeKvm(); }

    @Test
    void rawPacketsThroughBothBridges(@TempDir Path tmp) throws Exception {
        Path echo = tmp.resolve("echo.sock"), in = tmp.resolve("in.sock");
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(echo));
            // Threads of their own: the common pool has one worker on a 2-CPU host, and both block for the VM's life.
            CompletableFuture<String> served = onThread("vsock-test-echo", () -> serveEcho(server));
            CompletableFuture<String> client = onThread("vsock-test-ping", () -> pingThroughListener(in));

            VmConfig config = GuestRun.config("vsock", 1, 64, "jkrun.test.timeout_ms=20000 jkrun.vsock.connect_port="
                    + CONNECT_PORT + " jkrun.vsock.listen_port=" + LISTEN_PORT + " jkrun.vsock.unmapped_port=" + UNMAPPED_PORT)
                    .withDevice(new VsockDeviceConfig(VsockConfig.of(List.of(new VsockPort(CONNECT_PORT, echo, false),
                            new VsockPort(LISTEN_PORT, in, true)))));
            GuestRun r = GuestRun.run(config, Duration.ofSeconds(90));

            String out = r.output();
            assertEquals(OptionalInt.of(0), r.reason().exitStatus(), out + r.reason());
            for (String c : CHECKS) {
                assertTrue(r.lines().contains("CHECK " + c + " ok"), "CHECK " + c + ": " + out);
            }
            assertTrue(r.lines().stream().noneMatch(l -> l.contains("FAIL")), out);
            assertTrue(r.lines().stream().anyMatch(l -> l.startsWith("VSOCK ok")), out);
            assertEquals("echoed 11, sent " + BULK, served.get(10, TimeUnit.SECONDS));
            assertEquals("pong", client.get(10, TimeUnit.SECONDS));
            assertFalse(Files.exists(in), "the listening bridge's socket is removed when the VM stops");
        }
    }

    private static CompletableFuture<String> onThread(String name, java.util.function.Supplier<String> body) {
        CompletableFuture<String> f = new CompletableFuture<>();
        Thread t = new Thread(() -> f.complete(body.get()), name);
        t.setDaemon(true);
        t.start();
        return f;
    }

    /**
     * One connection: echoes the first 11 bytes ("hello vsock"), then on the next 4 ("bulk") sends BULK bytes of
     * the guest's pattern, then reads until the guest closes.
     */
    private static String serveEcho(ServerSocketChannel server) {
        try (SocketChannel c = server.accept()) {
            ByteBuffer b = ByteBuffer.allocate(64);
            int echoed = 0, seen = 0;
            while (seen < 15) {
                b.clear().limit(15 - seen);
                int n = c.read(b);
                if (n < 0) {
                    return "closed after " + seen;
                }
                b.flip();
                if (seen < 11) {
                    ByteBuffer e = b.duplicate();
                    e.limit(Math.min(n, 11 - seen));
                    echoed += e.remaining();
                    while (e.hasRemaining()) {
                        c.write(e);
                    }
                }
                seen += n;
            }
            ByteBuffer bulk = ByteBuffer.allocate(BULK);
            for (int i = 0; i < BULK; i++) {
                bulk.put((byte) (i * 31 + 7));
            }
            bulk.flip();
            while (bulk.hasRemaining()) {
                c.write(bulk);
            }
            ByteBuffer rest = ByteBuffer.allocate(256);
            while (c.read(rest.clear()) >= 0) {
                // until the guest's SHUTDOWN closes the connection
            }
            return "echoed " + echoed + ", sent " + BULK;
        } catch (IOException e) {
            return e.toString();
        }
    }

    /** Connects to the listening bridge as soon as it exists, sends "ping", returns what came back before EOF. */
    private static String pingThroughListener(Path in) {
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!Files.exists(in) && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(in))) {
                c.write(ByteBuffer.wrap("ping".getBytes(StandardCharsets.US_ASCII)));
                ByteBuffer got = ByteBuffer.allocate(16);
                while (got.position() < 4 && c.read(got) >= 0) {
                    // the guest's "pong"
                }
                return new String(got.array(), 0, got.position(), StandardCharsets.US_ASCII);
            }
        } catch (IOException | InterruptedException e) {
            return e.toString();
        }
    }
}
