package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.devices.virtio.vsock.VsockConfig;
import dev.jkrun.devices.virtio.vsock.tsi.OutboundPolicy;
import dev.jkrun.devices.virtio.vsock.tsi.PortMapping;
import dev.jkrun.devices.virtio.vsock.tsi.TsiConfig;
import dev.jkrun.kvm.testing.KvmAvailable;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.ConnectException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * A hostile TSI guest on real KVM (guests/src/tsi.c): it speaks libkrunfw's TSI control protocol by hand as vsock
 * DGRAMs and sends malformed messages (short, lying lengths and addr_len, unknown families, types, ops and CIDs),
 * abuses proxy state (messages for proxies never created, double create, double release, CONNECT on a connected,
 * connecting or listening proxy, RELEASE while connecting, LISTEN where the config does not publish), tries destinations the outbound policy denies, runs
 * into the proxy and host-socket caps and floods replies past the rx backlog; between every group a real TCP stream
 * and a UDP datagram through TSI proxies to echo servers on 127.0.0.1 must still work.
 *
 * <p>Here: every named check ok, exit status 0, no FAIL line; the host's open descriptors are as many after the VM
 * as before it (every proxy socket, stream, listener and the device's own fds closed); the published port is closed
 * again; the echo servers saw exactly the guest's legitimate traffic; and the VMM logged no failure (a control
 * message that threw, a tx or rx packet that failed). Only loopback is ever contacted: the addresses the policy
 * denies (192.0.2.0/24, 203.0.113.0/24, 127.0.0.1 on another port) are refused before any socket exists.
 */
class TsiGuestTest {
    static final InetAddress LO4 = InetAddress.getLoopbackAddress();
    static final int MAX_PROXIES = 8, MAX_FDS = 6, BACKLOG = 16, LEGIT_RUNS = 5;
    static final List<String> CHECKS = List.of(
            "features: VIRTIO_VSOCK_F_DGRAM is offered and negotiated",
            "config: guest_cid is 3",
            "legit first: stream through a TSI proxy echoes",
            "legit first: datagram through a TSI proxy echoes",
            "malformed: CONNECT of 2 bytes gets -EINVAL",
            "malformed: CONNECT of 6 bytes naming a proxy gets -EINVAL",
            "malformed: CONNECT with addr_len 129 gets -EINVAL",
            "malformed: CONNECT with addr_len 2^32-1 gets -EINVAL",
            "malformed: CONNECT with addr_len beyond the payload gets -EINVAL",
            "malformed: CONNECT of AF_INET with addr_len 4 gets -EINVAL",
            "malformed: CONNECT with addr_len 1 (no family) gets -EINVAL",
            "malformed: CONNECT of unknown family 99 gets -EAFNOSUPPORT",
            "malformed: CONNECT of family 0xffff gets -EAFNOSUPPORT",
            "malformed: CONNECT of AF_INET6 on an AF_INET proxy gets -EINVAL",
            "malformed: GETNAME of 3 bytes gets -EINVAL",
            "malformed: LISTEN of 3 bytes gets -EINVAL",
            "malformed: LISTEN of 12 bytes naming a proxy gets -EINVAL",
            "malformed: LISTEN with addr_len 200 gets -EINVAL",
            "malformed: ACCEPT of 1 byte gets -EINVAL",
            "malformed: a CONNECT whose len stops after svm_port gets -EINVAL",
            "layout: a CONNECT split over three descriptors is answered (-EPERM: denied)",
            "layout: a CONNECT of 64 KiB is answered (-EPERM: denied)",
            "malformed: messages without a reply (short, unknown family or type) get none",
            "malformed: unknown message types (1023, 1032, 1100, 2^32-1, 620, 0, src==dst) are dropped",
            "malformed: DGRAMs with an op other than RW are dropped",
            "malformed: DGRAMs from or to foreign CIDs are dropped",
            "malformed: DGRAMs whose len lies or whose header is unreadable are dropped",
            "malformed: a stream REQUEST to a control port gets RST",
            "malformed: nothing else arrives",
            "malformed: every tx chain comes back",
            "legit after malformed: stream echoes",
            "legit after malformed: datagram echoes",
            "state: CONNECT on a proxy never created gets -ECONNREFUSED",
            "state: LISTEN on a proxy never created gets -EPERM",
            "state: ACCEPT on a proxy never created gets -EINVAL",
            "state: GETNAME of a proxy never created gets -EINVAL",
            "state: REQUEST to 620 from no proxy gets RST",
            "state: GETNAME peer of an idle proxy gets -ENOTCONN",
            "state: GETNAME local of an idle proxy gets -EOPNOTSUPP",
            "state: ACCEPT on a proxy that is not listening gets -EINVAL",
            "state: REQUEST to 620 from an unconnected proxy gets RST",
            "state: CONNECT to the echo server answers 0",
            "state: a second PROXY_CREATE replaces a connected proxy (its REQUEST gets RST)",
            "state: the replacing proxy connects anew",
            "state: CONNECT answers 0",
            "state: CONNECT on a connected proxy gets -EISCONN",
            "connecting: CONNECT again gets -EALREADY",
            "connecting: GETNAME peer gets -ENOTCONN",
            "connecting: REQUEST to 620 gets RST",
            "connecting: RELEASE of a connecting proxy: its CONNECT is never answered",
            "state: RELEASE of unknown proxies, twice, with a wrong peer port gets no answer",
            "policy: CONNECT to 203.0.113.7:80 gets -EPERM",
            "policy: CONNECT to 192.0.2.1:443 gets -EPERM",
            "policy: CONNECT to 127.0.0.1 on a port the policy denies gets -EPERM",
            "policy: datagram CONNECT to 192.0.2.1:53 gets -EPERM",
            "policy: datagrams to denied destinations are dropped without an answer",
            "state: LISTEN on a datagram proxy gets -EOPNOTSUPP",
            "scope: AF_UNIX is not proxied with the unix scope off (CONNECT -ECONNREFUSED)",
            "scope: LISTEN on AF_UNIX with the unix scope off gets -EPERM",
            "listen: LISTEN on an unpublished port gets -EPERM",
            "listen: LISTEN on 127.0.0.1 gets -EADDRNOTAVAIL",
            "listen: LISTEN on port 0 gets -EPERM (ephemeral ports not exposed)",
            "listen: LISTEN on the published port answers 0",
            "listen: LISTEN again on the listening proxy answers 0",
            "listen: CONNECT on a listening proxy gets -EINVAL",
            "listen: ACCEPT with O_NONBLOCK and no client gets -EAGAIN",
            "listen: GETNAME local reports 127.0.0.1:<host port>",
            "listen: a second listener on the published port gets -EADDRINUSE",
            "state: a blocking ACCEPT released before any client gets no answer; nothing else arrives",
            "state: every tx chain comes back",
            "legit after state abuse: stream echoes",
            "legit after state abuse: datagram echoes",
            "caps: CONNECTs past the host-socket cap get -EMFILE",
            "caps: CONNECT on a PROXY_CREATE past the proxy cap gets -ENOBUFS",
            "caps: LISTEN on a PROXY_CREATE past the proxy cap gets -ENOBUFS",
            "caps: 500 more PROXY_CREATEs past the cap get no answer",
            "caps: RELEASE of every proxy gets no answer",
            "caps: after RELEASE every proxy and host socket is free again",
            "caps: a port refused at the cap gets a proxy once there is room",
            "caps: nothing else arrives",
            "caps: every tx chain comes back",
            "legit after caps: stream echoes",
            "legit after caps: datagram echoes",
            "flood: the device stops taking tx while backlog replies wait",
            "flood: every request is answered once, in order",
            "flood: nothing else arrives",
            "flood: every tx chain comes back",
            "legit after flood: stream echoes",
            "legit after flood: datagram echoes",
            "end: nothing else arrives",
            "end: every tx chain comes back");

    /** Log lines that mean the device failed on something the guest sent, instead of refusing it. */
    static final Pattern HURT = Pattern.compile("tsi: control message to port .* failed|virtio-vsock: (tx|rx) packet "
            + "failed|Exception in thread|OutOfMemoryError|StackOverflowError");

    @BeforeAll
    static void kvm() { KvmAvailable.assumeKvm(); }

    @Test
    void hostileTsiGuestIsRefusedAndTsiKeepsWorking() throws Exception {
        GuestRun.warmUp(); // what the first VM of this JVM opens for good is not TSI's
        long fdsBefore = OpenFds.count();

        int hostPort = freePort(), deniedPort = freePort();
        EchoServers echo = new EchoServers();
        GuestRun r;
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        try (echo; StallServer stall = new StallServer()) {
            int tcp = echo.tcp.getLocalPort(), udp = echo.udp.getLocalPort(), stalled = stall.server.getLocalPort();
            OutboundPolicy policy = (ip, port) -> ip.isLoopbackAddress() && (port == tcp || port == udp
                    || port == stalled);
            TsiConfig tsi = new TsiConfig(TsiConfig.HIJACK_INET, List.of(new PortMapping(hostPort, 8080)), policy,
                    Optional.of(LO4), false, MAX_PROXIES, MAX_FDS);
            VmConfig config = GuestRun.config("tsi", 1, 64, "jkrun.test.timeout_ms=20000 jkrun.tsi.echo_port=" + tcp
                    + " jkrun.tsi.udp_port=" + udp + " jkrun.tsi.stall_port=" + stalled + " jkrun.tsi.denied_port=" + deniedPort + " jkrun.tsi.host_port="
                    + hostPort + " jkrun.tsi.max_proxies=" + MAX_PROXIES + " jkrun.tsi.max_fds=" + MAX_FDS
                    + " jkrun.tsi.backlog=" + BACKLOG)
                    .withDevice(new VsockDeviceConfig(VsockConfig.of(List.of()).withTsi(tsi).withRxBacklog(BACKLOG)));
            PrintStream err = System.err;
            System.setErr(new PrintStream(new Tee(err, log), true)); // slf4j-simple writes to the current System.err
            try {
                r = GuestRun.run(config, Duration.ofSeconds(120));
            } finally {
                System.setErr(err);
            }
        }
        echo.awaitHandlers();
        String out = r.output();
        String vmmLog = log.toString(StandardCharsets.UTF_8);
        System.out.println(out);
        List<Executable> checks = new ArrayList<>();
        checks.add(() -> assertEquals(OptionalInt.of(0), r.reason().exitStatus(), out + r.reason()));
        for (String c : CHECKS) {
            checks.add(() -> assertTrue(r.lines().contains("CHECK " + c + " ok"), "CHECK " + c));
        }
        checks.add(() -> assertEquals(List.of(), r.lines().stream().filter(l -> l.contains("FAIL")).toList()));
        checks.add(() -> assertTrue(r.lines().contains("TSI ok " + CHECKS.size()), "the guest's summary"));
        checks.add(() -> assertEquals(List.of(), vmmLog.lines().filter(l -> HURT.matcher(l).find()).toList(),
                "the VMM failed on what the guest sent"));
        checks.add(() -> assertEquals(LEGIT_RUNS * "hello tsi".length(), echo.tcpBytes.get(),
                "the TCP echo server saw the guest's legitimate streams only"));
        checks.add(() -> assertEquals(List.of(), echo.errors.stream().toList(), "echo server errors"));
        checks.add(() -> assertEquals(LEGIT_RUNS, echo.udpDatagrams.get(), "the UDP echo server saw the legitimate "
                + "datagrams only"));
        checks.add(() -> assertThrows(ConnectException.class, () -> new Socket(LO4, hostPort).close(),
                "the published port is closed again"));
        checks.add(() -> assertEquals(fdsBefore, OpenFds.count(), "host descriptors after the VM: " + OpenFds.list()));
        assertAll(checks);
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, LO4)) {
            return s.getLocalPort();
        }
    }

    /** A TCP echo server (a thread per connection) and a UDP echo server on 127.0.0.1, counting what they echo. */
    static final class EchoServers implements AutoCloseable {
        final ServerSocket tcp = new ServerSocket(0, 64, LO4);
        final DatagramSocket udp = new DatagramSocket(new InetSocketAddress(LO4, 0));
        final AtomicLong tcpBytes = new AtomicLong();
        final AtomicInteger udpDatagrams = new AtomicInteger();
        final ConcurrentLinkedQueue<String> errors = new ConcurrentLinkedQueue<>();
        final ConcurrentLinkedQueue<Thread> handlers = new ConcurrentLinkedQueue<>();
        final Thread tcpAccept = daemon("tsi-echo-accept", this::acceptLoop);
        final Thread udpLoop = daemon("tsi-echo-udp", this::udpLoop);

        EchoServers() throws IOException {}

        static Thread daemon(String name, Runnable r) {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            t.start();
            return t;
        }

        private void acceptLoop() {
            while (!tcp.isClosed()) {
                Socket s;
                try {
                    s = tcp.accept();
                } catch (IOException e) {
                    return; // closed
                }
                handlers.add(daemon("tsi-echo", () -> echo(s)));
            }
        }

        private void echo(Socket s) {
            try (s; InputStream in = s.getInputStream(); OutputStream out = s.getOutputStream()) {
                byte[] b = new byte[4096];
                int n;
                while ((n = in.read(b)) > 0) {
                    out.write(b, 0, n);
                    out.flush();
                    tcpBytes.addAndGet(n);
                }
            } catch (SocketException e) {
                // a connection the VMM reset (a proxy released or replaced): not an echo failure
            } catch (IOException e) {
                errors.add(e.toString());
            }
        }

        private void udpLoop() {
            byte[] b = new byte[2048];
            while (!udp.isClosed()) {
                DatagramPacket p = new DatagramPacket(b, b.length);
                try {
                    udp.receive(p);
                    udp.send(new DatagramPacket(b, p.getLength(), p.getSocketAddress()));
                    udpDatagrams.incrementAndGet();
                } catch (IOException e) {
                    return; // closed
                }
            }
        }

        /** After close: every connection's handler has seen its end (the VMM closed its sockets with the VM). */
        void awaitHandlers() throws InterruptedException {
            tcpAccept.join(10_000);
            udpLoop.join(10_000);
            for (Thread t : handlers) {
                t.join(10_000);
            }
        }

        @Override
        public void close() {
            try {
                tcp.close();
            } catch (IOException e) {
                errors.add(e.toString());
            }
            udp.close();
        }
    }

    /**
     * A listener on 127.0.0.1 that never accepts, its accept queue filled: a connect to it stays in progress (Linux
     * drops the SYN while the queue is full), so a TSI CONNECT there is not answered while the guest looks.
     */
    static final class StallServer implements AutoCloseable {
        final ServerSocket server = new ServerSocket(0, 1, LO4);
        final List<Socket> fillers = new ArrayList<>();

        StallServer() throws IOException {
            for (int i = 0; i < 16; i++) {
                Socket s = new Socket();
                try {
                    s.connect(server.getLocalSocketAddress(), 300);
                } catch (java.net.SocketTimeoutException e) {
                    s.close();
                    return; // full
                }
                fillers.add(s);
            }
            close();
            throw new IllegalStateException("the accept queue of a listener with backlog 1 took 16 connections");
        }

        @Override
        public void close() throws IOException {
            for (Socket s : fillers) {
                s.close();
            }
            server.close();
        }
    }

    /** Copies everything written to two streams. */
    static final class Tee extends OutputStream {
        private final OutputStream a, b;

        Tee(OutputStream a, OutputStream b) {
            this.a = a;
            this.b = b;
        }

        @Override
        public synchronized void write(int c) throws IOException {
            a.write(c);
            b.write(c);
        }

        @Override
        public synchronized void write(byte[] buf, int off, int len) throws IOException {
            a.write(buf, off, len);
            b.write(buf, off, len);
        }

        @Override
        public synchronized void flush() throws IOException {
            a.flush();
            b.flush();
        }
    }
}
