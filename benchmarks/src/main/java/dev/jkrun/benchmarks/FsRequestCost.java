package dev.jkrun.benchmarks;

import dev.jkrun.devices.fs.fuse.Fuse;
import dev.jkrun.devices.fs.fuse.FuseServer;
import dev.jkrun.devices.fs.passthrough.PassthroughFs;
import dev.jkrun.devices.fs.passthrough.PassthroughOptions;
import dev.jkrun.devices.virtio.fs.VirtioFs;
import dev.jkrun.devices.virtio.queue.Descriptor;
import dev.jkrun.devices.virtio.queue.DescriptorChain;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.memory.MemoryRegion;
import dev.jkrun.memory.MmapGuestMemory;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * The host side of virtio-fs, per request and without a VM (issue 17, item 3): the cost the device itself adds to a
 * guest's 1 MiB READ, 1 MiB WRITE and small-file CREATE, so that kvm-pvm's emulated guest does not hide it.
 *
 * <p>Each request is a FUSE message laid out in mapped guest memory as Linux's virtio-fs driver lays it out (the
 * headers in one buffer, the data in 256 separate 4 KiB pages), served by the device's own request path
 * ({@link VirtioFs.QueueHandler}: gather the request, the FUSE server and {@link PassthroughFs}, scatter the reply)
 * on a share in a temporary directory. Columns: the whole request path ({@code device}); the FUSE server alone on
 * host buffers ({@code server}, so {@code device - server} is what moving bytes between guest memory and the
 * server costs); the same operation done directly with {@link FileChannel}/{@link Files} on a host file ({@code
 * host}). Everything is in the page cache. Medians of {@code rounds} rounds of {@code n} requests each.
 *
 * <p>Arguments: {@code n} (READs/WRITEs per round, default 200), {@code files} (CREATEs per round, 2000),
 * {@code rounds} (7), {@code dir} (where the share is made, default the system's temporary directory).
 */
public final class FsRequestCost {
    private static final int MIB = 1 << 20, PAGE = 4096, PAGES = MIB / PAGE;
    private static final long FILE_BYTES = 64L * MIB;
    /** Guest-memory layout: headers, reply, and data pages every other page (not contiguous, as a guest's are). */
    private static final long REQ = 0x1_0000, REQ_SLOT = 0x100, REPLY = 0x8000, DATA = 0x20_0000, STRIDE = 2 * PAGE;
    /** The file offsets READ and WRITE cycle through (1 MiB apart), each with a chain built once. */
    private static final int OFFSETS = (int) (FILE_BYTES / MIB);
    private static final long ROOT = 1;
    private static final int O_RDWR = 2, O_WRONLY = 1, O_CREAT = 0100, O_EXCL = 0200;

    private final GuestMemory mem;
    private final FuseServer server;
    private final VirtioFs.QueueHandler handler;
    private final ByteBuffer hostReq = ByteBuffer.allocateDirect(MIB + 8192).order(ByteOrder.LITTLE_ENDIAN);
    private final ByteBuffer hostReply = ByteBuffer.allocateDirect(MIB + 8192).order(ByteOrder.LITTLE_ENDIAN);
    private long unique = 1;

    private FsRequestCost(GuestMemory mem, FuseServer server) {
        this.mem = mem;
        this.server = server;
        this.handler = new VirtioFs.QueueHandler(server, false);
    }

    public static void main(String[] args) throws Exception {
        Bench.Opts o = new Bench.Opts(args);
        int n = o.integer("n", 200), files = o.integer("files", 2000), rounds = o.integer("rounds", 7);
        Path base = Path.of(o.string("dir", System.getProperty("java.io.tmpdir")));
        Path dir = Files.createTempDirectory(base, "jkrun-fsreq");
        Path share = Files.createDirectory(dir.resolve("share"));
        Path hostFile = dir.resolve("host-data");
        byte[] chunk = new byte[MIB];
        for (int i = 0; i < chunk.length; i++) {
            chunk[i] = (byte) (i * 31 + 7);
        }
        for (Path p : List.of(share.resolve("data"), hostFile)) {
            try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                for (long off = 0; off < FILE_BYTES; off += MIB) {
                    ch.write(ByteBuffer.wrap(chunk), off);
                }
            }
        }
        MmapGuestMemory mem = MmapGuestMemory.create(List.of(new MemoryRegion(GuestAddress.ZERO, 8L * MIB)));
        PassthroughFs fs = new PassthroughFs(share, PassthroughOptions.defaults());
        try (FileChannel host = FileChannel.open(hostFile, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            FsRequestCost b = new FsRequestCost(mem, new FuseServer(fs));
            b.run(n, files, rounds, host, dir.resolve("host-files"));
        } finally {
            fs.close();
            mem.close();
            try (Stream<Path> s = Files.walk(dir)) {
                s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    private void run(int n, int files, int rounds, FileChannel host, Path hostFiles) throws IOException {
        init();
        long node = lookup("data");
        long fh = open(node);
        Files.createDirectory(hostFiles);
        ByteBuffer hostBuf = ByteBuffer.allocateDirect(MIB + PAGE).alignedSlice(PAGE);
        List<Double> readDev = new ArrayList<>(), readSrv = new ArrayList<>(), readHost = new ArrayList<>();
        List<Double> readHostPages = new ArrayList<>(), writeHostPages = new ArrayList<>();
        List<Double> writeDev = new ArrayList<>(), writeSrv = new ArrayList<>(), writeHost = new ArrayList<>();
        List<Double> createDev = new ArrayList<>(), createSrv = new ArrayList<>(), createHost = new ArrayList<>();
        ByteBuffer hostPageBuf = ByteBuffer.allocateDirect(2 * MIB + PAGE).alignedSlice(PAGE);
        // The chains a guest would post, built once: the device's work starts at the popped chain.
        DescriptorChain[] reads = new DescriptorChain[OFFSETS], writes = new DescriptorChain[OFFSETS];
        for (int k = 0; k < OFFSETS; k++) {
            reads[k] = readChain(k, node, fh, (long) k * MIB);
            writes[k] = writeChain(OFFSETS + k, node, fh, (long) k * MIB);
        }
        for (int round = -1; round < rounds; round++) { // round -1 warms up
            boolean keep = round >= 0;
            add(keep, readDev, time(n, i -> check(handler.handle(reads[slot(i)]), 16 + MIB, "READ")));
            add(keep, readSrv, time(n, i -> check(serve(readRequest(node, fh, offset(i)), MIB + 16), 16 + MIB, "READ")));
            add(keep, readHost, time(n, i -> {
                hostBuf.clear();
                check(host.read(hostBuf, offset(i)), MIB, "pread");
            }));
            add(keep, readHostPages, time(n, i -> check(host.position(offset(i)).read(hostPages(hostPageBuf)), MIB, "readv")));
            add(keep, writeDev, time(n, i -> check(handler.handle(writes[slot(i)]), 24, "WRITE")));
            add(keep, writeSrv, time(n, i -> check(serve(writeRequest(node, fh, offset(i), true), 24), 24, "WRITE")));
            add(keep, writeHost, time(n, i -> {
                hostBuf.clear();
                check(host.write(hostBuf, offset(i)), MIB, "pwrite");
            }));
            add(keep, writeHostPages, time(n, i -> check(host.position(offset(i)).write(hostPages(hostPageBuf)), MIB, "writev")));
            String tag = "r" + (round + 1) + "-";
            add(keep, createDev, time(files, i -> createCycle(tag + "d" + i, true)));
            add(keep, createSrv, time(files, i -> createCycle(tag + "s" + i, false)));
            add(keep, createHost, time(files, i -> {
                Path p = hostFiles.resolve(tag + i);
                Files.newByteChannel(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE).close();
                Files.delete(p);
            }));
        }
        // Several request queues (--fs-queues 2): the same READs served by two handlers on two threads at once, each
        // with chains of its own, against the one FUSE server; wall time per request of both together.
        VirtioFs.QueueHandler second = new VirtioFs.QueueHandler(server, false);
        DescriptorChain[] reads2 = new DescriptorChain[OFFSETS];
        for (int k = 0; k < OFFSETS; k++) {
            reads2[k] = readChain(2 * OFFSETS + k, node, fh, (long) k * MIB);
        }
        List<Double> readOne = new ArrayList<>(), readTwo = new ArrayList<>();
        for (int round = -1; round < rounds; round++) {
            boolean keep = round >= 0;
            add(keep, readOne, time(n, i -> check(handler.handle(reads[slot(i)]), 16 + MIB, "READ")));
            add(keep, readTwo, parallel(n, i -> check(handler.handle(reads[slot(i)]), 16 + MIB, "READ"),
                    i -> check(second.handle(reads2[slot(i + 3)]), 16 + MIB, "READ")));
        }
        System.out.printf("== FsRequestCost: virtio-fs host side per request, no VM (medians of %d rounds; µs per request)%n", rounds);
        System.out.printf("  %-44s %9s %9s %11s %11s %11s %9s%n", "request", "device", "server", "host-pages",
                "host", "dev/pages", "dev/host");
        row("READ 1 MiB into 256 guest pages", readDev, readSrv, readHostPages, readHost);
        row("WRITE 1 MiB from 256 guest pages", writeDev, writeSrv, writeHostPages, writeHost);
        row("CREATE+RELEASE+FORGET+UNLINK, 1 file", createDev, createSrv, null, createHost);
        System.out.printf("  device: the chain served by VirtioFs.QueueHandler; server: the FUSE server alone on host buffers;%n"
                + "  host-pages: FileChannel scatter/gather on 256 separate 4 KiB pages; host: FileChannel on one 1 MiB buffer%n"
                + "  (CREATE row: Files.newByteChannel(CREATE_NEW).close() + Files.delete)%n");
        double one = Bench.median(readOne), two = Bench.median(readTwo);
        System.out.printf("  READ 1 MiB, one request queue (one thread): %.2f µs per request; two queues (two threads at once):"
                + " %.2f µs per request of both together, %.2fx the requests per second (%d host CPUs)%n", one, two, one / two,
                Runtime.getRuntime().availableProcessors());
        System.out.printf("RESULT fsreq_queues read_one_us=%.2f read_two_us=%.2f speedup=%.2f%n", one, two, one / two);
        System.out.printf("RESULT fsreq read_us=%.1f read_server_us=%.1f read_host_pages_us=%.1f read_host_us=%.1f write_us=%.1f"
                        + " write_server_us=%.1f write_host_pages_us=%.1f write_host_us=%.1f create_us=%.2f"
                        + " create_server_us=%.2f create_host_us=%.2f%n",
                Bench.median(readDev), Bench.median(readSrv), Bench.median(readHostPages), Bench.median(readHost),
                Bench.median(writeDev), Bench.median(writeSrv), Bench.median(writeHostPages), Bench.median(writeHost),
                Bench.median(createDev), Bench.median(createSrv), Bench.median(createHost));
    }

    private static void add(boolean keep, List<Double> to, double v) {
        if (keep) {
            to.add(v);
        }
    }

    private static void row(String what, List<Double> dev, List<Double> srv, List<Double> pages, List<Double> host) {
        double d = Bench.median(dev), s = Bench.median(srv), p = pages == null ? Double.NaN : Bench.median(pages);
        double h = Bench.median(host);
        System.out.printf("  %-44s %9.2f %9.2f %11s %11.2f %11s %9.2f%n", what, d, s,
                pages == null ? "-" : String.format("%.2f", p), h, pages == null ? "-" : String.format("%.2f", d / p), d / h);
    }

    private static ByteBuffer[] hostPages(ByteBuffer b) {
        ByteBuffer[] v = new ByteBuffer[PAGES];
        for (int p = 0; p < PAGES; p++) {
            v[p] = b.slice((int) STRIDE * p, PAGE);
        }
        return v;
    }

    private static int slot(int i) { return (int) (i * 7L % OFFSETS); }

    private static long offset(int i) { return (long) slot(i) * MIB; }

    @FunctionalInterface
    private interface Op {
        void run(int i) throws Exception;
    }

    /** µs per op over {@code n} ops. */
    private static double time(int n, Op op) {
        long t0 = System.nanoTime();
        try {
            for (int i = 0; i < n; i++) {
                op.run(i);
            }
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
        return (System.nanoTime() - t0) / 1e3 / n;
    }

    /** Wall µs per op of {@code a} and {@code b} run at once on two threads, {@code n} ops each. */
    private static double parallel(int n, Op a, Op b) {
        java.util.concurrent.CountDownLatch start = new java.util.concurrent.CountDownLatch(1);
        Throwable[] failed = new Throwable[1];
        Thread t = new Thread(() -> {
            try {
                start.await();
                for (int i = 0; i < n; i++) {
                    b.run(i);
                }
            } catch (Throwable e) {
                failed[0] = e;
            }
        }, "fsreq-queue-2");
        t.start();
        long t0 = System.nanoTime();
        start.countDown();
        try {
            for (int i = 0; i < n; i++) {
                a.run(i);
            }
            t.join();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
        if (failed[0] != null) {
            throw new IllegalStateException(failed[0]);
        }
        return (System.nanoTime() - t0) / 1e3 / (2.0 * n);
    }

    private static void check(long got, long want, String what) {
        if (got != want) {
            throw new IllegalStateException(what + ": " + got + " bytes, expected " + want);
        }
    }

    // ---- FUSE messages --------------------------------------------------------------------------------------

    /** A request in {@link #hostReq}: in_header, then {@code body}, which the caller fills after this returns. */
    private ByteBuffer header(int opcode, long node, int bodyLen) {
        ByteBuffer b = hostReq.clear();
        b.putInt(Fuse.IN_HEADER + bodyLen).putInt(opcode).putLong(unique++).putLong(node)
                .putInt(0).putInt(0).putInt(1).putShort((short) 0).putShort((short) 0);
        return b;
    }

    /** Serves what {@link #hostReq} holds with the FUSE server alone; returns the reply length. */
    private int serve(ByteBuffer req, int replyRoom) {
        req.flip();
        hostReply.clear().limit(replyRoom);
        int len = server.handle(req, hostReply);
        int error = hostReply.getInt(4);
        if (error != 0) {
            throw new IllegalStateException("FUSE opcode " + req.getInt(4) + ": errno " + -error);
        }
        return len;
    }

    private void init() {
        ByteBuffer b = header(Fuse.INIT, 0, Fuse.INIT_IN);
        b.putInt(7).putInt(38).putInt(MIB).putInt(0);
        while (b.position() < Fuse.IN_HEADER + Fuse.INIT_IN) {
            b.put((byte) 0);
        }
        serve(b, 16 + Fuse.INIT_OUT);
    }

    private long lookup(String name) {
        byte[] nb = name(name);
        ByteBuffer b = header(Fuse.LOOKUP, ROOT, nb.length);
        b.put(nb);
        serve(b, 16 + Fuse.ENTRY_OUT);
        return hostReply.getLong(16);
    }

    private long open(long node) {
        ByteBuffer b = header(Fuse.OPEN, node, Fuse.OPEN_IN);
        b.putInt(O_RDWR).putInt(0);
        serve(b, 16 + Fuse.OPEN_OUT);
        return hostReply.getLong(16);
    }

    private static byte[] name(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        byte[] z = new byte[b.length + 1];
        System.arraycopy(b, 0, z, 0, b.length);
        return z;
    }

    private ByteBuffer readRequest(long node, long fh, long offset) {
        ByteBuffer b = header(Fuse.READ, node, Fuse.READ_IN);
        b.putLong(fh).putLong(offset).putInt(MIB).putInt(0).putLong(0).putInt(O_RDWR).putInt(0);
        return b;
    }

    /** WRITE's header and write_in; with {@code data}, 1 MiB of payload after them (for the server-only column). */
    private ByteBuffer writeRequest(long node, long fh, long offset, boolean data) {
        ByteBuffer b = header(Fuse.WRITE, node, Fuse.WRITE_IN + MIB);
        b.putLong(fh).putLong(offset).putInt(MIB).putInt(0).putLong(0).putInt(O_RDWR).putInt(0);
        if (data) {
            b.position(b.position() + MIB);
        }
        return b;
    }

    /** Copies the request in {@link #hostReq} into guest memory at request slot {@code k}; returns its descriptor. */
    private Descriptor putRequest(int k, ByteBuffer req) {
        req.flip();
        int len = req.remaining();
        GuestAddress at = GuestAddress.of(REQ + REQ_SLOT * k);
        mem.write(at, req);
        return new Descriptor(at, len, false);
    }

    private static List<Descriptor> pages(boolean writable) {
        List<Descriptor> ds = new ArrayList<>(PAGES);
        for (int p = 0; p < PAGES; p++) {
            ds.add(new Descriptor(GuestAddress.of(DATA + STRIDE * p), PAGE, writable));
        }
        return ds;
    }

    private static final List<Descriptor> READ_PAGES = pages(true), WRITE_PAGES = pages(false);

    private DescriptorChain readChain(int k, long node, long fh, long offset) {
        List<Descriptor> ds = new ArrayList<>(PAGES + 2);
        ds.add(putRequest(k, readRequest(node, fh, offset)));
        ds.add(new Descriptor(GuestAddress.of(REPLY), 16, true));
        ds.addAll(READ_PAGES);
        return DescriptorChain.of(mem, 0, ds);
    }

    private DescriptorChain writeChain(int k, long node, long fh, long offset) {
        List<Descriptor> ds = new ArrayList<>(PAGES + 2);
        ByteBuffer req = writeRequest(node, fh, offset, false);
        ds.add(putRequest(k, req));
        ds.addAll(WRITE_PAGES);
        ds.add(new Descriptor(GuestAddress.of(REPLY), 24, true));
        return DescriptorChain.of(mem, 0, ds);
    }

    /** CREATE, RELEASE, FORGET and UNLINK of one file, through the device path or the FUSE server alone. */
    private void createCycle(String name, boolean device) throws Exception {
        byte[] nb = name(name);
        ByteBuffer b = header(Fuse.CREATE, ROOT, Fuse.CREATE_IN + nb.length);
        b.putInt(O_WRONLY | O_CREAT | O_EXCL).putInt(0100644).putInt(022).putInt(0).put(nb);
        long node, fh;
        int want = 16 + Fuse.ENTRY_OUT + Fuse.OPEN_OUT;
        if (device) {
            List<Descriptor> ds = List.of(putRequest(2 * OFFSETS, b), new Descriptor(GuestAddress.of(REPLY), want, true));
            check(handler.handle(DescriptorChain.of(mem, 0, ds)), want, "CREATE");
            if (mem.readInt(GuestAddress.of(REPLY + 4)) != 0) {
                throw new IllegalStateException("CREATE " + name + ": errno " + -mem.readInt(GuestAddress.of(REPLY + 4)));
            }
            node = mem.readLong(GuestAddress.of(REPLY + 16));
            fh = mem.readLong(GuestAddress.of(REPLY + 16 + Fuse.ENTRY_OUT));
        } else {
            serve(b, want);
            node = hostReply.getLong(16);
            fh = hostReply.getLong(16 + Fuse.ENTRY_OUT);
        }
        ByteBuffer r = header(Fuse.RELEASE, node, Fuse.RELEASE_IN);
        r.putLong(fh).putInt(0).putInt(0).putLong(0);
        small(r, device);
        ByteBuffer f = header(Fuse.FORGET, node, Fuse.FORGET_IN);
        f.putLong(1);
        f.flip();
        hostReply.clear().limit(0);
        server.handle(f, hostReply);
        ByteBuffer u = header(Fuse.UNLINK, ROOT, nb.length);
        u.put(nb);
        small(u, device);
    }

    /** A request answered by a bare header. */
    private void small(ByteBuffer req, boolean device) throws Exception {
        if (device) {
            List<Descriptor> ds = List.of(putRequest(2 * OFFSETS, req), new Descriptor(GuestAddress.of(REPLY), 16, true));
            check(handler.handle(DescriptorChain.of(mem, 0, ds)), 16, "reply");
            if (mem.readInt(GuestAddress.of(REPLY + 4)) != 0) {
                throw new IllegalStateException("errno " + -mem.readInt(GuestAddress.of(REPLY + 4)));
            }
        } else {
            serve(req, 16);
        }
    }
}
