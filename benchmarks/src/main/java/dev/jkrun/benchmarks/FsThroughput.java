package dev.jkrun.benchmarks;

import dev.jkrun.guests.TestGuests;
import dev.jkrun.vmm.ConsoleConfig;
import dev.jkrun.devices.fs.passthrough.PassthroughFs;
import dev.jkrun.devices.fs.passthrough.PassthroughOptions;
import dev.jkrun.vmm.FsShare;
import dev.jkrun.vmm.KernelConfig;
import dev.jkrun.vmm.MachineConfig;
import dev.jkrun.vmm.StopReason;
import dev.jkrun.vmm.VirtualMachine;
import dev.jkrun.vmm.VmConfig;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * virtio-fs / FUSE server throughput: the {@code fsbench} test guest drives the share's FUSE server through real KVM
 * (descriptor chains on the request queue, up to {@code depth} in flight, completions by interrupt), and the same
 * operations are then done directly on a host directory by this JVM, with the same sizes, in the same run.
 *
 * <p>Phases: seq-write (CREATE + WRITE {@code mib} MiB in chunks of the negotiated max_write + FSYNC(fdatasync) +
 * RELEASE vs FileChannel writes of the same chunk size + force(false)), seq-read (OPEN + READ in the same chunks vs
 * FileChannel reads), create (MKDIR + CREATE/RELEASE of {@code files} files vs Files.createFile), stat (one LOOKUP
 * per file, whose reply carries the attributes, vs Files.readAttributes = stat(2)), unlink (UNLINK vs Files.delete).
 * Guest phases are timed on the host from the guest's {@code PHASE <name> start|done} lines on the debug port
 * (System.nanoTime when each line arrives). Both sides hit the page cache: nothing drops it; sync(1) runs (untimed)
 * before each side so that neither inherits the other's dirty pages, and the sides alternate which goes first.
 *
 * <p>Arguments ({@code key=value}): {@code mib} (1024), {@code files} (10000), {@code depth} (4, 1..5 requests in
 * flight), {@code chunk_kib} (0: the server's max_write), {@code dir} (java.io.tmpdir: where the share and the host
 * directory are made, then deleted), {@code rounds} (3: medians over rounds), {@code warmup} (1: rounds with small
 * sizes first, not reported), {@code mem} (MiB, 64), {@code timeout_s} (900 per guest run). Prints the table;
 * asserts nothing. {@code files} is bounded by the fd limit (ulimit -n): the server holds one O_PATH descriptor per
 * file until the guest forgets it, which fsbench does after the unlink phase.
 */
public final class FsThroughput {
    private static final String[] PHASES = {"seq-write", "seq-read", "create", "stat", "unlink"};
    private static final long STAMP = 0x4653424E00000000L, PAGE_PAT = 0x5041474500000000L;
    private static final int PAGE = 4096;

    private FsThroughput() {}

    /** One phase's measurement: wall time, operations (requests / files), bytes moved, of which fsync (or 0). */
    record Phase(long nanos, long ops, long bytes, long fsyncNanos) {
        Phase(long nanos, long ops, long bytes) { this(nanos, ops, bytes, 0); }

        double seconds() { return nanos / 1e9; }

        double fsyncSeconds() { return fsyncNanos / 1e9; }

        double rate() { return bytes > 0 ? bytes / (1024.0 * 1024.0) / seconds() : ops / seconds(); }
    }

    /** One guest run: its phases, the chunk size it used, the whole VM's time and what it printed. */
    record GuestResult(Map<String, Phase> phases, int chunk, String fuseLine, long vmNanos, List<String> lines) {}


    public static void main(String[] args) throws Exception {
        Bench.Opts o = new Bench.Opts(args);
        int mib = o.integer("mib", 1024), files = o.integer("files", 10000), depth = o.integer("depth", 4);
        int chunkKib = o.integer("chunk_kib", 0), rounds = o.integer("rounds", 3), warmup = o.integer("warmup", 1);
        int mem = o.integer("mem", 64), timeoutS = o.integer("timeout_s", 900);
        Path base = Path.of(o.string("dir", System.getProperty("java.io.tmpdir"))).toAbsolutePath();
        if (mib < 1 || files < 1 || rounds < 1 || depth < 1 || depth > 5) {
            throw new IllegalArgumentException("need mib >= 1, files >= 1, rounds >= 1, 1 <= depth <= 5");
        }
        PrintStream out = System.out;
        Path elf = TestGuests.path("fsbench");

        out.printf("== FsThroughput: virtio-fs FUSE server driven by the fsbench guest (1 vCPU, %d MiB, %d in flight) vs"
                + " the same operations on a host directory%n", mem, depth);
        out.printf("   sizes: %d MiB sequential write + read, %d files created / stat'ed / unlinked; dir %s; %d round(s)%n",
                mib, files, base, rounds);
        for (int i = 0; i < warmup; i++) {
            int wm = Math.min(mib, 64), wf = Math.min(files, 500);
            GuestResult g = runGuest(elf, base, wm, wf, depth, chunkKib, mem, timeoutS);
            runHost(base, wm, wf, g.chunk());
        }
        Map<String, List<Phase>> guest = new LinkedHashMap<>(), host = new LinkedHashMap<>();
        List<Double> vm = new ArrayList<>();
        GuestResult last = null;
        int chunk = -1;
        for (int r = 0; r < rounds; r++) {
            // Alternate which side goes first, so that neither always inherits the other's writeback.
            Map<String, Phase> h = null;
            if (r % 2 == 1) {
                h = runHost(base, mib, files, chunk);
            }
            last = runGuest(elf, base, mib, files, depth, chunkKib, mem, timeoutS);
            chunk = last.chunk();
            vm.add(last.vmNanos() / 1e9);
            if (h == null) {
                h = runHost(base, mib, files, chunk);
            }
            for (String p : PHASES) {
                guest.computeIfAbsent(p, k -> new ArrayList<>()).add(last.phases().get(p));
                host.computeIfAbsent(p, k -> new ArrayList<>()).add(h.get(p));
            }
        }
        out.printf("   guest: %s; whole VM (create..stopped) %.2f s%n", last.fuseLine(), Bench.median(vm));
        out.printf("   chunk %d KiB = %d requests per direction%n", last.chunk() / 1024,
                ((long) mib << 20) / last.chunk());
        Bench.line(out, "phase (unit)", "guest", "host", "guest/host", "guest s", "host s");
        for (String p : PHASES) {
            List<Phase> g = guest.get(p), h = host.get(p);
            double gr = Bench.median(g.stream().map(Phase::rate).toList());
            double hr = Bench.median(h.stream().map(Phase::rate).toList());
            double gs = Bench.median(g.stream().map(Phase::seconds).toList());
            double hs = Bench.median(h.stream().map(Phase::seconds).toList());
            String unit = g.get(0).bytes() > 0 ? "MiB/s" : "files/s";
            Bench.line(out, p + " (" + unit + ")", Bench.fmt(gr), Bench.fmt(hr), Bench.fmt(gr / hr), Bench.fmt(gs),
                    Bench.fmt(hs));
            if (p.equals("seq-write")) {
                double gf = Bench.median(g.stream().map(Phase::fsyncSeconds).toList());
                double hf = Bench.median(h.stream().map(Phase::fsyncSeconds).toList());
                Bench.line(out, "  of which FSYNC / force(false) (s)", "", "", "", Bench.fmt(gf), Bench.fmt(hf));
            }
        }
        StringBuilder res = new StringBuilder("RESULT fs_throughput mib=" + mib + " files=" + files + " chunk="
                + last.chunk() + " depth=" + depth);
        for (String p : PHASES) {
            double gr = Bench.median(guest.get(p).stream().map(Phase::rate).toList());
            double hr = Bench.median(host.get(p).stream().map(Phase::rate).toList());
            String k = p.replace('-', '_');
            res.append(String.format(" %s_guest=%.1f %s_host=%.1f %s_ratio=%.3f", k, gr, k, hr, k, gr / hr));
        }
        out.println(res);
        out.flush();
        System.exit(0);
    }

    /**
     * The share's options: fsbench keeps every file it creates looked up (it sends no FORGET), so the inode cap must
     * hold them all, whatever share of this host's descriptor limit the default cap is (5,000 at a limit of 20,000).
     */
    static PassthroughOptions options(int files) {
        return PassthroughOptions.builder().descriptorCaps(Math.max(PassthroughOptions.DEFAULT_MAX_INODES, files + 1024),
                PassthroughOptions.DEFAULT_MAX_HANDLES).build();
    }

    /** Boots fsbench on a fresh share under {@code base}, times its phases from its report lines, deletes the share. */
    static GuestResult runGuest(Path elf, Path base, int mib, int files, int depth, int chunkKib, int mem, int timeoutS)
            throws IOException, InterruptedException {
        Path share = Files.createTempDirectory(base, "jkrun-fsbench-share-");
        try {
            syncHost();
            String cmdline = "jkrun.test.timeout_ms=60000 jkrun.fsbench.mib=" + mib + " jkrun.fsbench.files=" + files
                    + " jkrun.fsbench.depth=" + depth + " jkrun.fsbench.chunk_kib=" + chunkKib;
            VmConfig config = new VmConfig(MachineConfig.of(1, mem), KernelConfig.elf(elf, cmdline), new ConsoleConfig.None(),
                    List.of(FsShare.custom("fsbench", () -> new PassthroughFs(share, options(files)), false)), List.of(),
                    Optional.empty(), true);
            Bench.TimedRun run = Bench.runTimed(config, timeoutS, "fsbench");
            StopReason r = run.reason();
            long vmNanos = run.vmNanos();
            List<Bench.Timed> got = run.lines();
            List<String> text = run.text();
            if (r.kind() != StopReason.Kind.SHUTDOWN || r.exitStatus().orElse(-1) != 0 || !text.contains("FSBENCH ok")) {
                throw new IllegalStateException("fsbench (" + cmdline + ") failed: " + r + "\n" + String.join("\n", text));
            }
            Map<String, Long> starts = new LinkedHashMap<>();
            long fsyncAt = -1;
            Map<String, Phase> phases = new LinkedHashMap<>();
            int chunk = -1;
            String fuse = "";
            for (Bench.Timed t : got) {
                String[] w = t.line().split(" ");
                if (w.length == 3 && w[0].equals("PHASE") && w[2].equals("start")) {
                    starts.put(w[1], t.nanos());
                } else if (w.length == 3 && w[0].equals("PHASE") && w[1].equals("seq-write") && w[2].equals("fsync")) {
                    fsyncAt = t.nanos();
                } else if (w.length == 5 && w[0].equals("PHASE") && w[2].equals("done")) {
                    Long s = starts.get(w[1]);
                    if (s == null) {
                        throw new IllegalStateException("PHASE " + w[1] + " done without start:\n" + String.join("\n", text));
                    }
                    long fsync = w[1].equals("seq-write") && fsyncAt > 0 ? t.nanos() - fsyncAt : 0;
                    phases.put(w[1], new Phase(t.nanos() - s, Long.parseLong(w[3]), Long.parseLong(w[4]), fsync));
                } else if (w[0].equals("FUSE")) {
                    fuse = t.line();
                    for (int i = 0; i + 1 < w.length; i++) {
                        if (w[i].equals("chunk")) {
                            chunk = Integer.parseInt(w[i + 1]);
                        }
                    }
                }
            }
            for (String p : PHASES) {
                if (!phases.containsKey(p)) {
                    throw new IllegalStateException("fsbench did not report phase " + p + ":\n" + String.join("\n", text));
                }
            }
            if (chunk <= 0) {
                throw new IllegalStateException("fsbench did not report its chunk size:\n" + String.join("\n", text));
            }
            return new GuestResult(phases, chunk, fuse, vmNanos, text);
        } finally {
            deleteTree(share);
        }
    }

    /** The same operations on a fresh host directory under {@code base}, timed the same way, then deleted. */
    static Map<String, Phase> runHost(Path base, int mib, int files, int chunk) throws IOException {
        Path dir = Files.createTempDirectory(base, "jkrun-fsbench-host-");
        try {
            syncHost();
            Map<String, Phase> m = new LinkedHashMap<>();
            long total = (long) mib << 20, chunks = (total + chunk - 1) / chunk;
            // The same bytes the guest writes: a stamp per chunk, a pattern word per 4 KiB page, zeros elsewhere.
            ByteBuffer buf = ByteBuffer.allocateDirect(chunk).order(ByteOrder.LITTLE_ENDIAN);
            for (int p = 1; p < chunk / PAGE; p++) {
                buf.putLong(p * PAGE, PAGE_PAT | p);
            }
            Path dat = dir.resolve("fsbench.dat");

            long t0 = System.nanoTime(), tf;
            try (FileChannel ch = FileChannel.open(dat, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                for (long k = 0; k < chunks; k++) {
                    long off = k * chunk;
                    int len = (int) Math.min(chunk, total - off);
                    buf.putLong(0, STAMP | k);
                    buf.position(0).limit(len);
                    while (buf.hasRemaining()) {
                        ch.write(buf, off + buf.position());
                    }
                }
                tf = System.nanoTime();
                ch.force(false);
            }
            long t1 = System.nanoTime();
            m.put("seq-write", new Phase(t1 - t0, chunks, total, t1 - tf));

            t0 = System.nanoTime();
            try (FileChannel ch = FileChannel.open(dat, StandardOpenOption.READ)) {
                for (long k = 0; k < chunks; k++) {
                    long off = k * chunk;
                    int len = (int) Math.min(chunk, total - off);
                    buf.position(0).limit(len);
                    while (buf.hasRemaining()) {
                        if (ch.read(buf, off + buf.position()) < 0) {
                            throw new IOException("short file at " + (off + buf.position()));
                        }
                    }
                    if (buf.getLong(0) != (STAMP | k)) {
                        throw new IOException("wrong data in chunk " + k);
                    }
                }
            }
            m.put("seq-read", new Phase(System.nanoTime() - t0, chunks, total));
            Files.delete(dat);

            Path fdir = dir.resolve("files");
            Path[] paths = new Path[files];
            for (int i = 0; i < files; i++) {
                paths[i] = fdir.resolve("f" + i);
            }
            t0 = System.nanoTime();
            Files.createDirectory(fdir);
            for (Path p : paths) {
                Files.createFile(p);
            }
            m.put("create", new Phase(System.nanoTime() - t0, files, 0));

            t0 = System.nanoTime();
            for (Path p : paths) {
                BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class);
                if (!a.isRegularFile() || a.size() != 0) {
                    throw new IOException("unexpected attributes of " + p);
                }
            }
            m.put("stat", new Phase(System.nanoTime() - t0, files, 0));

            t0 = System.nanoTime();
            for (Path p : paths) {
                Files.delete(p);
            }
            m.put("unlink", new Phase(System.nanoTime() - t0, files, 0));
            Files.delete(fdir);
            return m;
        } finally {
            deleteTree(dir);
        }
    }

    /**
     * sync(1), untimed, before each side's run: the previous run's dirty pages are written back (or dropped with
     * its deleted files) instead of throttling the next run's writes.
     */
    static void syncHost() {
        try {
            Process p = new ProcessBuilder("sync").inheritIO().start();
            p.waitFor();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }
}
