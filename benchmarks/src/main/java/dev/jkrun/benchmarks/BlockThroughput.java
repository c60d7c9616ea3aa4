package dev.jkrun.benchmarks;

import dev.jkrun.devices.block.DiskImage;
import dev.jkrun.devices.block.DiskImages;
import dev.jkrun.devices.block.ImageFormat;
import dev.jkrun.devices.block.SyncMode;
import dev.jkrun.guests.TestGuests;
import dev.jkrun.vmm.ConsoleConfig;
import dev.jkrun.vmm.DiskConfig;
import dev.jkrun.vmm.KernelConfig;
import dev.jkrun.vmm.MachineConfig;
import dev.jkrun.vmm.StopReason;
import dev.jkrun.vmm.VirtualMachine;
import dev.jkrun.vmm.VmConfig;
import java.io.IOException;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * virtio-blk throughput through real KVM: the {@code blk} test guest in bench mode drives a disk image (raw, qcow2)
 * with {@code qd} requests in flight on one queue (each one ring descriptor pointing at an indirect table, all
 * sharing one data buffer, completions by interrupt), and the same I/O pattern is then run in this JVM on a host
 * file (FileChannel positional reads/writes: the baseline) and through jkrun's own image code with no VM
 * ({@link DiskImage}: how much of the difference is the format rather than the VM), in the same run. The image runs
 * twice: each request in one buffer, and each request in {@code seg}-byte buffers ("pages"), as virtio-blk hands the
 * image a Linux guest's requests (a segment per page-cache page, or per run of adjacent ones).
 *
 * <p>Phases, in this order on one image of {@code seq_mib} MiB: seq-write ({@code seq_mib} requests of 1 MiB from
 * sector 0, then one FLUSH), seq-read (the same, reading), rand-write ({@code rand_ops} requests of 4 KiB at
 * 4 KiB-aligned offsets from a 64-bit LCG seeded with {@code seed}, then one FLUSH), rand-read (the same offsets).
 * The host side does the same sizes and offsets, and after each write phase a {@code force(false)} (fdatasync), as
 * the guest's FLUSH does with the default sync mode FULL. Guest phases are timed on the host from the guest's
 * {@code PHASE <name> start|done} lines on the debug port (System.nanoTime as each line arrives). Everything goes
 * through the host page cache; nothing drops it. Images are created sparse (raw) or empty (qcow2, qemu-img), so
 * seq-write allocates and the later phases find the data in place.
 *
 * <p>Arguments ({@code key=value}): {@code seq_mib} (256), {@code rand_ops} (20000), {@code qd} (16, 1..16),
 * {@code formats} (raw,qcow2; qcow2 needs qemu-img), {@code seed} (1), {@code rounds} (3: guest, host file and
 * image in turn, medians reported), {@code seg} (0: the guest puts each request's data in one descriptor, the image's
 * "pages" column uses 4 KiB buffers; else both use buffers of this size: a power of two of 512 to 1 MiB, at most 128
 * a MiB, qd at most 16, the guest's out of order in memory), {@code dir} (java.io.tmpdir: images are made there and
 * deleted), {@code warmup}
 * (1: small rounds first, not reported), {@code mem} (MiB, 64), {@code timeout_s} (600 per guest run). Prints the
 * table; asserts nothing.
 */
public final class BlockThroughput {
    static final int SEQ_BS = 1 << 20, RAND_BS = 4096;

    /** One I/O pattern: direction, sequential or random, request count and size. */
    record Pattern(String name, boolean write, boolean random, long count, int bs) {
        long bytes() { return count * bs; }
    }

    /** One phase's measurement. */
    record Phase(long nanos, long requests, long bytes) {
        double mibPerSecond() { return bytes / (1024.0 * 1024.0) / (nanos / 1e9); }

        double requestsPerSecond() { return requests / (nanos / 1e9); }
    }


    private BlockThroughput() {}

    static List<Pattern> patterns(int seqMib, int randOps) {
        return List.of(new Pattern("seq-write", true, false, seqMib, SEQ_BS),
                new Pattern("seq-read", false, false, seqMib, SEQ_BS),
                new Pattern("rand-write", true, true, randOps, RAND_BS),
                new Pattern("rand-read", false, true, randOps, RAND_BS));
    }

    public static void main(String[] args) throws Exception {
        Bench.Opts o = new Bench.Opts(args);
        int seqMib = o.integer("seq_mib", 256), randOps = o.integer("rand_ops", 20000), qd = o.integer("qd", 16);
        int seed = o.integer("seed", 1), warmup = o.integer("warmup", 1), mem = o.integer("mem", 64);
        int timeoutS = o.integer("timeout_s", 600), rounds = o.integer("rounds", 3), seg = o.integer("seg", 0);
        List<String> formats = List.of(o.string("formats", "raw,qcow2").split(","));
        Path base = Path.of(o.string("dir", System.getProperty("java.io.tmpdir"))).toAbsolutePath();
        if (seqMib < 1 || randOps < 1 || qd < 1 || qd > 16 || rounds < 1) {
            throw new IllegalArgumentException("need seq_mib >= 1, rand_ops >= 1, 1 <= qd <= 16, rounds >= 1");
        }
        if (seg != 0 && (Integer.bitCount(seg) != 1 || seg < 512 || SEQ_BS / seg > 128)) {
            throw new IllegalArgumentException("seg is 0 or a power of two of 512 to 1 MiB, at most 128 a MiB: " + seg);
        }
        int pages = seg == 0 ? 4096 : seg;
        PrintStream out = System.out;
        Path elf = TestGuests.path("blk");
        boolean qemuImg = onPath("qemu-img");

        out.printf("== BlockThroughput: virtio-blk driven by the blk guest through real KVM (1 vCPU, %d MiB, %d in flight)"
                + " vs the same I/O on a host file%n", mem, qd);
        out.printf("   %d MiB image: seq %d x 1 MiB, random %d x 4 KiB (LCG seed %d); FLUSH / fdatasync after writes;"
                + " dir %s; median of %d round(s)%n", seqMib, seqMib, randOps, seed, base, rounds);
        out.printf("   guest data: %s; image pages: %d-byte buffers%n",
                seg == 0 ? "one descriptor a request" : seg + "-byte descriptors, out of order in memory", pages);
        out.println("   columns: guest = in the VM; host = FileChannel on a raw host file; image = jkrun's DiskImage of"
                + " the same format in this JVM, no VM; guest/host = ratio of MiB/s");
        List<Pattern> patterns = patterns(seqMib, randOps);
        for (String format : formats) {
            ImageFormat f = ImageFormat.valueOf(format.trim().toUpperCase());
            if (f == ImageFormat.QCOW2 && !qemuImg) {
                out.println("   " + format + ": skipped, qemu-img not found on PATH (apt-get install qemu-utils)");
                continue;
            }
            if (f != ImageFormat.RAW && f != ImageFormat.QCOW2) {
                throw new IllegalArgumentException("formats are raw and qcow2, got " + format);
            }
            for (int i = 0; i < warmup; i++) {
                List<Pattern> small = patterns(Math.min(seqMib, 32), Math.min(randOps, 2000));
                runGuest(elf, base, f, small, qd, seed, mem, timeoutS, seg);
                runHostFile(base, small, seed);
                runHostImage(base, f, small, seed, 0);
                runHostImage(base, f, small, seed, pages);
            }
            // Guest, host file and image in turn each round, so that they share the machine's noise; the order
            // flips every round (write-back of one run's dirty pages can still be going on during the next).
            Map<String, List<Double>> g = new LinkedHashMap<>(), h = new LinkedHashMap<>(), im = new LinkedHashMap<>(),
                    ip = new LinkedHashMap<>();
            List<Double> vm = new ArrayList<>();
            GuestResult last = null;
            for (int r = 0; r < rounds; r++) {
                Map<String, Phase> hf = null, hi = null, hp = null;
                if (r % 2 == 1) {
                    hp = runHostImage(base, f, patterns, seed, pages);
                    hi = runHostImage(base, f, patterns, seed, 0);
                    hf = runHostFile(base, patterns, seed);
                }
                last = runGuest(elf, base, f, patterns, qd, seed, mem, timeoutS, seg);
                vm.add(last.vmNanos() / 1e9);
                if (r % 2 == 0) {
                    hf = runHostFile(base, patterns, seed);
                    hi = runHostImage(base, f, patterns, seed, 0);
                    hp = runHostImage(base, f, patterns, seed, pages);
                }
                for (Pattern p : patterns) {
                    g.computeIfAbsent(p.name(), k -> new ArrayList<>()).add(last.phases().get(p.name()).mibPerSecond());
                    h.computeIfAbsent(p.name(), k -> new ArrayList<>()).add(hf.get(p.name()).mibPerSecond());
                    im.computeIfAbsent(p.name(), k -> new ArrayList<>()).add(hi.get(p.name()).mibPerSecond());
                    ip.computeIfAbsent(p.name(), k -> new ArrayList<>()).add(hp.get(p.name()).mibPerSecond());
                }
            }

            out.println();
            out.printf("   %s: whole VM run (create..stopped) %.2f s (median)%n", format, Bench.median(vm));
            Bench.line(out, format + " phase", "guest MiB/s", "guest req/s", "host MiB/s", "host req/s", "image MiB/s",
                    "image pages", "guest/host");
            StringBuilder res = new StringBuilder("RESULT block_throughput format=" + format + " seq_mib=" + seqMib
                    + " rand_ops=" + randOps + " qd=" + qd + " seg=" + seg + " pages=" + pages);
            StringBuilder per = new StringBuilder("   guest kicks/irqs per request (last round):");
            for (Pattern p : patterns) {
                double gm = Bench.median(g.get(p.name())), hm = Bench.median(h.get(p.name()));
                double imm = Bench.median(im.get(p.name())), ipm = Bench.median(ip.get(p.name()));
                double perReq = (double) p.bs() / (1 << 20);
                String label = p.name() + (p.random() ? " 4 KiB" : " 1 MiB") + (p.write() ? " + flush" : "");
                Bench.line(out, label, Bench.fmt(gm), Bench.fmt(gm / perReq), Bench.fmt(hm), Bench.fmt(hm / perReq),
                        Bench.fmt(imm), Bench.fmt(ipm), Bench.fmt(gm / hm));
                String k = p.name().replace('-', '_');
                res.append(String.format(" %s_guest_mibs=%.1f %s_guest_iops=%.0f %s_host_mibs=%.1f %s_image_mibs=%.1f"
                        + " %s_image_pages_mibs=%.1f %s_ratio=%.3f", k, gm, k, gm / perReq, k, hm, k, imm, k, ipm, k, gm / hm));
                long[] st = last.stats().get(p.name());
                if (st != null) {
                    per.append(String.format(" %s %.2f/%.2f", p.name(), (double) st[0] / p.count(), (double) st[1] / p.count()));
                }
            }
            out.println(per);
            out.println(res);
        }
        out.flush();
        System.exit(0);
    }

    // ---- guest ---------------------------------------------------------------------------------------------------

    /** stats: per phase {kicks, interrupts} as the guest counted them (its STATS lines). */
    record GuestResult(Map<String, Phase> phases, Map<String, long[]> stats, long vmNanos, List<String> lines) {}

    /** Boots the blk guest in bench mode on a fresh image under {@code base}; times its phases; deletes the image. */
    static GuestResult runGuest(Path elf, Path base, ImageFormat format, List<Pattern> patterns, int qd, int seed, int mem,
                                int timeoutS, int seg) throws IOException, InterruptedException {
        long seqMib = patterns.stream().filter(p -> !p.random()).mapToLong(Pattern::count).max().orElse(1);
        Path img = newImage(base, format, seqMib << 20);
        try {
            long randOps = patterns.stream().filter(Pattern::random).mapToLong(Pattern::count).max().orElse(1);
            String cmdline = "jkrun.test.timeout_ms=60000 jkrun.blk.mode=bench jkrun.blk.bench="
                    + String.join(",", patterns.stream().map(Pattern::name).toList()) + " jkrun.blk.seq_mib=" + seqMib
                    + " jkrun.blk.rand_ops=" + randOps + " jkrun.blk.qd=" + qd + " jkrun.blk.seed=" + seed
                    + " jkrun.blk.seg=" + seg;
            VmConfig config = new VmConfig(MachineConfig.of(1, mem), KernelConfig.elf(elf, cmdline), new ConsoleConfig.None(),
                    List.of(), List.of(DiskConfig.of("bench", img, false, format)), Optional.empty(), true);
            Bench.TimedRun run = Bench.runTimed(config, timeoutS, "blk bench");
            StopReason r = run.reason();
            long vmNanos = run.vmNanos();
            List<Bench.Timed> got = run.lines();
            List<String> text = run.text();
            if (r.kind() != StopReason.Kind.SHUTDOWN || r.exitStatus().orElse(-1) != 0 || !text.contains("BENCH ok")) {
                throw new IllegalStateException("blk bench (" + cmdline + ") failed: " + r + "\n" + String.join("\n", text));
            }
            Map<String, Long> starts = new LinkedHashMap<>();
            Map<String, Phase> phases = new LinkedHashMap<>();
            Map<String, long[]> stats = new LinkedHashMap<>();
            for (Bench.Timed t : got) {
                String[] w = t.line().split(" ");
                if (w.length == 3 && w[0].equals("PHASE") && w[2].equals("start")) {
                    starts.put(w[1], t.nanos());
                } else if (w.length == 4 && w[0].equals("PHASE") && w[2].equals("done")) {
                    Long s = starts.get(w[1]);
                    Pattern p = patterns.stream().filter(x -> x.name().equals(w[1])).findFirst().orElse(null);
                    if (s == null || p == null || Long.parseLong(w[3]) != p.count()) {
                        throw new IllegalStateException("unexpected " + t.line() + ":\n" + String.join("\n", text));
                    }
                    phases.put(w[1], new Phase(t.nanos() - s, p.count(), p.bytes()));
                } else if (w.length == 6 && w[0].equals("STATS") && w[2].equals("kicks") && w[4].equals("irqs")) {
                    stats.put(w[1], new long[] {Long.parseLong(w[3]), Long.parseLong(w[5])});
                }
            }
            for (Pattern p : patterns) {
                if (!phases.containsKey(p.name())) {
                    throw new IllegalStateException("blk bench did not report phase " + p.name() + ":\n" + String.join("\n", text));
                }
            }
            return new GuestResult(phases, stats, vmNanos, text);
        } finally {
            Files.deleteIfExists(img);
        }
    }

    // ---- host ----------------------------------------------------------------------------------------------------

    /** The guest's LCG (blk.c lcg_next): 4 KiB block numbers below {@code blocks}, the same sequence for every phase. */
    static final class Lcg {
        private long x;

        Lcg(long seed) { x = seed; }

        long next(long blocks) {
            x = x * 6364136223846793005L + 1442695040888963407L;
            return (x >>> 33) % blocks;
        }
    }

    /** Positional I/O with offsets, sizes and flushes as the guest's phases. */
    interface Io {
        void read(long offset, ByteBuffer b) throws IOException;

        void write(long offset, ByteBuffer b) throws IOException;

        void flush() throws IOException;
    }

    static Map<String, Phase> run(Io io, long sizeBytes, List<Pattern> patterns, int seed) throws IOException {
        Map<String, Phase> m = new LinkedHashMap<>();
        // Page-aligned, as the guest pages a VM's requests land in are: the kernel copies into a misaligned buffer
        // at about half the speed here, and allocateDirect's alignment changes from run to run with malloc's.
        ByteBuffer seq = ByteBuffer.allocateDirect(SEQ_BS + 4096).alignedSlice(4096);
        ByteBuffer rnd = ByteBuffer.allocateDirect(RAND_BS + 4096).alignedSlice(4096);
        for (Pattern p : patterns) {
            ByteBuffer b = p.random() ? rnd : seq;
            Lcg lcg = new Lcg(seed);
            long blocks = sizeBytes / p.bs();
            long t0 = System.nanoTime();
            for (long i = 0; i < p.count(); i++) {
                long off = (p.random() ? lcg.next(blocks) : i) * p.bs();
                b.clear();
                if (p.write()) {
                    io.write(off, b);
                } else {
                    io.read(off, b);
                }
            }
            if (p.write()) {
                io.flush();
            }
            m.put(p.name(), new Phase(System.nanoTime() - t0, p.count(), p.bytes()));
        }
        return m;
    }

    /** The baseline: a sparse raw file of the same size, FileChannel positional I/O, force(false) after writes. */
    static Map<String, Phase> runHostFile(Path base, List<Pattern> patterns, int seed) throws IOException {
        long size = sizeOf(patterns);
        Path f = newImage(base, ImageFormat.RAW, size);
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            return run(new Io() {
                @Override
                public void read(long offset, ByteBuffer b) throws IOException {
                    while (b.hasRemaining()) {
                        if (ch.read(b, offset + b.position()) < 0) {
                            throw new IOException("short read at " + (offset + b.position()));
                        }
                    }
                }

                @Override
                public void write(long offset, ByteBuffer b) throws IOException {
                    while (b.hasRemaining()) {
                        ch.write(b, offset + b.position());
                    }
                }

                @Override
                public void flush() throws IOException { ch.force(false); }
            }, size, patterns, seed);
        } finally {
            Files.deleteIfExists(f);
        }
    }

    /**
     * jkrun's image code for the format, no VM: what the device calls for each request, the request in one buffer
     * ({@code pages} 0) or in views of {@code pages} bytes of it, as virtio-blk passes a Linux guest's page-cache pages.
     */
    static Map<String, Phase> runHostImage(Path base, ImageFormat format, List<Pattern> patterns, int seed, int pages)
            throws IOException {
        long size = sizeOf(patterns);
        Path f = newImage(base, format, size);
        Map<ByteBuffer, ByteBuffer[]> views = new java.util.IdentityHashMap<>();
        try (DiskImage img = DiskImages.open(f, format, false, false)) {
            return run(new Io() {
                @Override
                public void read(long offset, ByteBuffer b) throws IOException {
                    if (pages > 0) {
                        img.read(offset, pagesOf(b));
                    } else {
                        img.read(offset, b);
                    }
                }

                @Override
                public void write(long offset, ByteBuffer b) throws IOException {
                    if (pages > 0) {
                        img.write(offset, pagesOf(b));
                    } else {
                        img.write(offset, b);
                    }
                }

                /** The views of {@code b} of {@code pages} bytes (made once per buffer; a device makes them per request), reset. */
                private ByteBuffer[] pagesOf(ByteBuffer b) {
                    ByteBuffer[] v = views.computeIfAbsent(b, x -> {
                        ByteBuffer[] a = new ByteBuffer[(x.capacity() + pages - 1) / pages];
                        for (int i = 0; i < a.length; i++) {
                            a[i] = x.duplicate().limit(Math.min(x.capacity(), (i + 1) * pages)).position(i * pages).slice();
                        }
                        return a;
                    });
                    for (ByteBuffer p : v) {
                        p.clear();
                    }
                    return v;
                }

                @Override
                public void flush() throws IOException { img.flush(SyncMode.FULL); }
            }, size, patterns, seed);
        } finally {
            Files.deleteIfExists(f);
        }
    }

    private static long sizeOf(List<Pattern> patterns) {
        return patterns.stream().filter(p -> !p.random()).mapToLong(Pattern::count).max().orElse(1) << 20;
    }

    /** A fresh image of {@code bytes}: a sparse raw file, or an empty qcow2 made by qemu-img. */
    static Path newImage(Path base, ImageFormat format, long bytes) throws IOException {
        Path f = Files.createTempFile(base, "jkrun-blkbench-", "." + format.name().toLowerCase());
        if (format == ImageFormat.RAW) {
            try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
                raf.setLength(bytes);
            }
            return f;
        }
        Process p = new ProcessBuilder("qemu-img", "create", "-q", "-f", "qcow2", f.toString(), String.valueOf(bytes))
                .redirectErrorStream(true).start();
        String msg = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        try {
            if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
                p.destroyForcibly();
                throw new IOException("qemu-img create failed: " + msg);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
        return f;
    }

    private static boolean onPath(String tool) {
        for (String d : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":")) {
            if (!d.isEmpty() && Files.isExecutable(Path.of(d, tool))) {
                return true;
            }
        }
        return false;
    }
}
