package dev.jkrun.benchmarks;

import dev.jkrun.devices.virtio.vsock.VirtioVsock;
import dev.jkrun.devices.virtio.vsock.VsockConfig;
import dev.jkrun.devices.virtio.vsock.VsockPort;
import java.io.IOException;
import java.io.PrintStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * virtio-vsock's bridges with no VM: a {@link VirtioVsock} on its own event-loop thread, driven by {@link VsockDriver}
 * (a guest driver on this thread, rings in mmap'd guest memory, Linux's buffer sizes) and bridged to real unix
 * sockets served by threads of this JVM; against the same traffic between this JVM's threads over a unix-socket pair
 * (SocketChannel, UNIX), in the same run.
 *
 * <ul>
 *   <li>guest → host: the guest connects to port 5000 (bridged to {@code sink.sock}) and writes {@code mib} MiB in
 *       64 KiB packets as credit allows; timed from the connect until the host's sink thread has read the last byte.
 *       Baseline: a client thread connects to the same sink and writes the same bytes in 64 KiB writes.</li>
 *   <li>host → guest: the guest connects to port 5001 ({@code source.sock}), whose server writes {@code mib} MiB;
 *       timed from the connect until the guest has read them all (rx buffers of {@code rx_buf} bytes, Linux's 4 KiB).
 *       Baseline: a client connects to the same server and reads them.</li>
 *   <li>connections: {@code conns} sequential connect → RESPONSE → close (SHUTDOWN) → RST through port 5002 to a
 *       server that accepts, reads to the end and closes; baseline: connect + close of a SocketChannel to the same
 *       server.</li>
 * </ul>
 * Both sides copy the payload the same number of times at their ends (the guest into and out of guest memory, as a
 * guest kernel copies from and to user space; the client from and to a heap buffer); what the device adds is its
 * queues, packets and the host socket in between. Arguments ({@code key=value}): {@code mib} (256), {@code conns}
 * (2000), {@code rounds} (5; device and baseline alternate, medians reported), {@code rx_buf} (4096), {@code
 * timeout_s} (120 per phase). A small warm-up round runs first. Prints ratios and a RESULT line; asserts nothing.
 */
public final class VsockThroughput {
    static final int SINK_PORT = 5000, SOURCE_PORT = 5001, ACCEPT_PORT = 5002;
    static final int CHUNK = 64 * 1024;

    /** One measurement's goal for the host servers: how many bytes, and when the sink had them all. */
    static final class Job {
        final long bytes;
        final CountDownLatch done = new CountDownLatch(1);
        volatile long doneNanos;
        final Runnable onDone;

        Job(long bytes, Runnable onDone) {
            this.bytes = bytes;
            this.onDone = onDone;
        }
    }

    /** A unix-socket server whose thread serves one connection at a time. */
    static final class Server implements AutoCloseable {
        interface Session {
            void run(SocketChannel c) throws IOException;
        }

        private final ServerSocketChannel ch;
        private final Thread thread;

        Server(Path path, Session session) throws IOException {
            ch = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            ch.bind(UnixDomainSocketAddress.of(path), 1024);
            thread = new Thread(() -> {
                while (ch.isOpen()) {
                    try (SocketChannel c = ch.accept()) {
                        session.run(c);
                    } catch (IOException e) {
                        if (!ch.isOpen()) {
                            return;
                        }
                    }
                }
            }, "vsock-bench-" + path.getFileName());
            thread.setDaemon(true);
            thread.start();
        }

        @Override
        public void close() throws IOException {
            ch.close();
        }
    }

    private volatile Job job;
    private final byte[] data = new byte[CHUNK];
    private final long timeoutMs;

    VsockThroughput(long timeoutMs) {
        this.timeoutMs = timeoutMs;
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) (i * 31 + 7);
        }
    }

    /** Sink: counts what arrives; the job is done when its bytes are in. */
    void sink(SocketChannel c) throws IOException {
        ByteBuffer b = ByteBuffer.allocateDirect(CHUNK);
        Job j = job;
        long got = 0;
        int n;
        while ((n = c.read(b)) >= 0) {
            got += n;
            b.clear();
            if (j != null && got >= j.bytes && j.doneNanos == 0) {
                j.doneNanos = System.nanoTime();
                j.done.countDown();
                j.onDone.run();
            }
        }
    }

    /** Source: writes the job's bytes, then closes. */
    void source(SocketChannel c) throws IOException {
        ByteBuffer b = ByteBuffer.allocateDirect(CHUNK);
        long left = job.bytes;
        while (left > 0) {
            b.clear();
            b.put(data, 0, (int) Math.min(CHUNK, left));
            b.flip();
            while (b.hasRemaining()) {
                left -= c.write(b);
            }
        }
    }

    /** Accept server: reads to the end (the peer's close), closes. */
    static void drain(SocketChannel c) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(256);
        while (c.read(b) >= 0) {
            b.clear();
        }
    }

    // ---- the device --------------------------------------------------------------------------------------------

    double deviceToHost(VsockDriver d, long bytes) throws InterruptedException {
        Job j = new Job(bytes, d::wake);
        job = j;
        long t0 = System.nanoTime();
        VsockDriver.Conn c = d.connect(SINK_PORT, timeoutMs);
        if (!c.established) {
            throw new IllegalStateException("vsock: the guest's connect to the sink was reset");
        }
        d.write(c, bytes, data, timeoutMs);
        d.until(() -> j.done.getCount() == 0, timeoutMs, "the host sink to get " + bytes + " bytes");
        long dt = j.doneNanos - t0;
        d.close(c, timeoutMs);
        return mibPerS(bytes, dt);
    }

    double deviceFromHost(VsockDriver d, long bytes) {
        job = new Job(bytes, () -> { });
        long t0 = System.nanoTime();
        VsockDriver.Conn c = d.connect(SOURCE_PORT, timeoutMs);
        if (!c.established) {
            throw new IllegalStateException("vsock: the guest's connect to the source was reset");
        }
        d.until(() -> c.received >= bytes || c.reset, timeoutMs, "the guest to receive " + bytes + " bytes");
        long dt = System.nanoTime() - t0;
        if (c.received != bytes) {
            throw new IllegalStateException("vsock: the guest received " + c.received + " of " + bytes + " bytes");
        }
        d.close(c, timeoutMs);
        return mibPerS(bytes, dt);
    }

    double deviceConnections(VsockDriver d, int n) {
        long t0 = System.nanoTime();
        for (int i = 0; i < n; i++) {
            VsockDriver.Conn c = d.connect(ACCEPT_PORT, timeoutMs);
            if (!c.established) {
                throw new IllegalStateException("vsock: connection " + i + " was reset");
            }
            d.close(c, timeoutMs);
        }
        return n / ((System.nanoTime() - t0) / 1e9);
    }

    // ---- the baseline: a unix-socket pair in this JVM ------------------------------------------------------------

    static SocketChannel connect(Path p) throws IOException {
        SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
        c.connect(UnixDomainSocketAddress.of(p));
        return c;
    }

    double unixToHost(Path sink, long bytes) throws IOException, InterruptedException {
        Job j = new Job(bytes, () -> { });
        job = j;
        ByteBuffer b = ByteBuffer.wrap(data);
        long t0 = System.nanoTime();
        try (SocketChannel c = connect(sink)) {
            long left = bytes;
            while (left > 0) {
                b.clear().limit((int) Math.min(CHUNK, left));
                while (b.hasRemaining()) {
                    left -= c.write(b);
                }
            }
            if (!j.done.await(timeoutMs, TimeUnit.MILLISECONDS)) {
                throw new IllegalStateException("unix: the sink did not get " + bytes + " bytes");
            }
        }
        return mibPerS(bytes, j.doneNanos - t0);
    }

    double unixFromHost(Path source, long bytes) throws IOException {
        job = new Job(bytes, () -> { });
        ByteBuffer b = ByteBuffer.allocate(CHUNK);
        long t0 = System.nanoTime();
        long got = 0;
        try (SocketChannel c = connect(source)) {
            int n;
            while (got < bytes && (n = c.read(b)) >= 0) {
                got += n;
                b.clear();
            }
        }
        long dt = System.nanoTime() - t0;
        if (got != bytes) {
            throw new IllegalStateException("unix: received " + got + " of " + bytes + " bytes");
        }
        return mibPerS(bytes, dt);
    }

    static double unixConnections(Path server, int n) throws IOException {
        long t0 = System.nanoTime();
        for (int i = 0; i < n; i++) {
            connect(server).close();
        }
        return n / ((System.nanoTime() - t0) / 1e9);
    }

    static double mibPerS(long bytes, long nanos) { return bytes / 1048576.0 / (nanos / 1e9); }

    // ---- main -----------------------------------------------------------------------------------------------------

    public static void main(String[] args) throws Exception {
        Bench.Opts o = new Bench.Opts(args);
        int mib = o.integer("mib", 256);
        int conns = o.integer("conns", 2000);
        int rounds = o.integer("rounds", 5);
        int rxBuf = o.integer("rx_buf", 4096);
        long timeoutMs = o.integer("timeout_s", 120) * 1000L;
        PrintStream out = System.out;
        VsockThroughput b = new VsockThroughput(timeoutMs);
        Path dir = Files.createTempDirectory("jkrun-vsock-bench");
        Path sink = dir.resolve("sink.sock"), source = dir.resolve("source.sock"), accept = dir.resolve("accept.sock");
        List<Double> dG = new ArrayList<>(), uG = new ArrayList<>(), dH = new ArrayList<>(), uH = new ArrayList<>(),
                dC = new ArrayList<>(), uC = new ArrayList<>();
        VsockConfig config = VsockConfig.of(List.of(new VsockPort(SINK_PORT, sink, false),
                new VsockPort(SOURCE_PORT, source, false), new VsockPort(ACCEPT_PORT, accept, false)));
        try (Server s1 = new Server(sink, b::sink); Server s2 = new Server(source, b::source);
             Server s3 = new Server(accept, VsockThroughput::drain);
             VirtioVsock dev = new VirtioVsock(config); VsockDriver d = new VsockDriver(dev, rxBuf)) {
            out.printf("VsockThroughput: virtio-vsock (no VM, device thread + guest driver thread, rx buffers %d B) vs a "
                    + "unix-socket pair in this JVM; %d MiB each way, %d connections, %d rounds after a warm-up%n",
                    rxBuf, mib, conns, rounds);
            for (int r = 0; r <= rounds; r++) {
                boolean warm = r == 0;
                long bytes = (warm ? Math.max(1, mib / 4) : mib) * 1048576L;
                int n = warm ? Math.max(1, conns / 4) : conns;
                long stalls = d.stalls;
                double[] v = {
                    b.deviceToHost(d, bytes), b.unixToHost(sink, bytes),
                    b.deviceFromHost(d, bytes), b.unixFromHost(source, bytes),
                    b.deviceConnections(d, n), unixConnections(accept, n)};
                stalls = d.stalls - stalls;
                if (!warm) {
                    dG.add(v[0]); uG.add(v[1]); dH.add(v[2]); uH.add(v[3]); dC.add(v[4]); uC.add(v[5]);
                }
                out.printf("  %s: guest->host %s vs %s MiB/s, host->guest %s vs %s MiB/s, %s vs %s connections/s%s%n",
                        warm ? "warm-up" : "round " + r, Bench.fmt(v[0]), Bench.fmt(v[1]), Bench.fmt(v[2]),
                        Bench.fmt(v[3]), Bench.fmt(v[4]), Bench.fmt(v[5]),
                        stalls == 0 ? "" : " (" + stalls + " stalls over " + VsockDriver.STALL_MILLIS + " ms)");
            }
            out.println();
            out.printf("  %-28s %18s %18s %12s%n", "median of " + rounds + " rounds", "device", "unix", "device/unix");
            row(out, "guest->host MiB/s", dG, uG);
            row(out, "host->guest MiB/s", dH, uH);
            row(out, "connect+close per s", dC, uC);
            out.printf("  notifications sent by the driver: %d; stalls over %d ms with tx packets in the ring: %d "
                    + "(a slow device thread); lost notifications (nothing for %d ms, device idle): %d%n", d.kicksSent,
                    VsockDriver.STALL_MILLIS, d.stalls, VsockDriver.LOST_MILLIS, d.lostNotifications);
            out.println("  device/unix: 1.0 = the bridge moves data (or sets up connections) as fast as a plain unix "
                    + "socket between two threads; both ends' copies are in both.");
            out.printf("RESULT vsock_device g2h_mibs=%.1f unix_g2h_mibs=%.1f g2h_ratio=%.3f h2g_mibs=%.1f "
                            + "unix_h2g_mibs=%.1f h2g_ratio=%.3f conn_per_s=%.0f unix_conn_per_s=%.0f conn_ratio=%.3f "
                            + "mib=%d conns=%d rx_buf=%d stalls=%d lost_notifications=%d%n",
                    Bench.median(dG), Bench.median(uG), Bench.median(dG) / Bench.median(uG),
                    Bench.median(dH), Bench.median(uH), Bench.median(dH) / Bench.median(uH),
                    Bench.median(dC), Bench.median(uC), Bench.median(dC) / Bench.median(uC),
                    mib, conns, rxBuf, d.stalls, d.lostNotifications);
        } finally {
            try (Stream<Path> w = Files.walk(dir)) {
                w.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    private static void row(PrintStream out, String label, List<Double> device, List<Double> unix) {
        out.printf("  %-28s %18s %18s %12s%n", label, Bench.fmt(Bench.median(device)), Bench.fmt(Bench.median(unix)),
                String.format("%.2f", Bench.median(device) / Bench.median(unix)));
        out.printf("  %-28s %18s %18s%n", "  min..max", Bench.fmt(Bench.min(device)) + ".." + Bench.fmt(Bench.max(device)),
                Bench.fmt(Bench.min(unix)) + ".." + Bench.fmt(Bench.max(unix)));
    }
}
