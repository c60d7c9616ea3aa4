package dev.jkrun.benchmarks;

import dev.jkrun.devices.block.ImageFormat;
import dev.jkrun.guests.TestGuests;
import dev.jkrun.vmm.ConsoleConfig;
import dev.jkrun.vmm.DiskConfig;
import dev.jkrun.vmm.FsShare;
import dev.jkrun.vmm.KernelConfig;
import dev.jkrun.vmm.MachineConfig;
import dev.jkrun.vmm.StopReason;
import dev.jkrun.vmm.VirtualMachine;
import dev.jkrun.vmm.VmConfig;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Many VM lifecycles in one JVM (the hostile-guest issue's "one JVM can safely hold many VMs"): {@code n}
 * create → start → the guest's own exit → close cycles of small VMs with devices whose threads and host fds come and
 * go, then whether the process kept anything: open fds ({@code /proc/self/fd}), live threads (Java's and the
 * kernel's count), resident memory ({@code VmRSS}) and mappings ({@code /proc/self/maps} lines) at checkpoints.
 *
 * <p>The cycles rotate through three VMs (64 MiB, 1 vCPU), each with a virtio-blk disk (a 1 MiB raw image,
 * read-only): the {@code console} guest with a virtio-console (input "ping\n", echoed back uppercased; its rx and tx
 * threads run) and a virtio-fs share attached; the {@code blk} guest in {@code ro} mode with a console attached (the
 * disk's queue worker runs); the {@code virtiofs} guest on the share (FUSE requests open and close host fds).
 * Every cycle should end in SHUTDOWN with status 0; one that does not is counted, its guest's FAIL lines printed,
 * and the run goes on (a leak check should not stop at a guest's own flaky check).
 *
 * <p>Flat means, from the first checkpoint after warm-up ({@code warmup}) to the last: the same open fds and Java
 * threads, kernel threads within {@link #THREAD_SLACK}, mappings within {@link #MAPS_SLACK} lines, and RSS growing by
 * at most {@link #RSS_SLOPE_KIB} KiB a cycle: the least-squares slope of RSS sampled every {@link #SAMPLE_EVERY}
 * cycles from warm-up on (RSS moves by megabytes either way as malloc arenas grow and trim and the JIT settles; a
 * buffer left behind per cycle makes a steady slope). Run it with a fixed, pre-touched heap
 * ({@code -Xms128m -Xmx128m -XX:+AlwaysPreTouch}, as {@code benchmarks/run lifecycles} does): otherwise RSS follows
 * how much of a large heap the collector has touched so far, not what the VMs kept. Arguments ({@code key=value}): {@code n} (1000), {@code checkpoints}
 * (1,100,500,1000), {@code warmup} (100), {@code verbose} (false: true prints every cycle's time). Prints; exits 1
 * when something is not flat or a cycle failed.
 */
public final class Lifecycles {
    /** Kernel threads may differ by this much (the JIT starts and retires compiler threads on its own). */
    static final int THREAD_SLACK = 4;
    /** /proc/self/maps lines may differ by this much (malloc arenas, code cache segments). */
    static final int MAPS_SLACK = 32;
    /** RSS may grow by this much per cycle (least-squares slope after warm-up). */
    static final int RSS_SLOPE_KIB = 16;
    /** RSS is sampled this often (besides the checkpoints) for the slope. */
    static final int SAMPLE_EVERY = 50;
    private static final long DISK_SECTORS = 2048;
    private static final int DISK_SEED = 0x33;
    private static final String SERIAL = "jkrun-lifecycles";
    private static final String[] KINDS = {"virtiofs", "console", "blk"};

    private Lifecycles() {}

    /** What the process holds at one checkpoint. */
    record Sample(int cycle, long fds, int javaThreads, int kernelThreads, double rssMib, long maps, double heapMib) {}

    public static void main(String[] args) throws Exception {
        Bench.Opts o = new Bench.Opts(args);
        int n = o.integer("n", 1000), warmup = o.integer("warmup", 100);
        boolean verbose = Boolean.parseBoolean(o.string("verbose", "false"));
        List<Integer> checkpoints = Arrays.stream(o.string("checkpoints", "1,100,500,1000").split(","))
                .map(String::trim).map(Integer::parseInt).filter(c -> c <= n).toList();
        PrintStream out = System.out;
        Path dir = Files.createTempDirectory("jkrun-lifecycles-");
        try {
            Path disk = dir.resolve("disk.raw");
            Files.write(disk, pattern());
            Path share = Files.createDirectory(dir.resolve("share"));
            Files.writeString(share.resolve("in.txt"), "hello from the host\n");
            out.printf("== Lifecycles: %d create -> run -> close cycles in one JVM (console+disk+share / blk+console / "
                    + "virtiofs+disk, 64 MiB, 1 vCPU)%n", n);
            Bench.line(out, "", "cycle", "fds", "threads", "os threads", "RSS MiB", "maps", "heap MiB");
            List<Sample> samples = new ArrayList<>();
            List<String> failed = new ArrayList<>();
            List<Sample> rssSamples = new ArrayList<>();
            long t0 = System.nanoTime();
            for (int i = 1; i <= n; i++) {
                long c0 = System.nanoTime();
                String failure = cycle(i, disk, share);
                if (failure != null) {
                    failed.add(failure);
                    out.println("  " + failure);
                }
                if (verbose) {
                    out.printf("  cycle %d (%s): %.0f ms%n", i, KINDS[i % 3], (System.nanoTime() - c0) / 1e6);
                }
                if (i >= warmup && i % SAMPLE_EVERY == 0 && !checkpoints.contains(i)) {
                    rssSamples.add(sample(i));
                }
                if (checkpoints.contains(i)) {
                    Sample s = sample(i);
                    samples.add(s);
                    if (i >= warmup) {
                        rssSamples.add(s);
                    }
                    Bench.line(out, String.format("after %d cycles (%.0f s)", i, (System.nanoTime() - t0) / 1e9),
                            String.valueOf(i), String.valueOf(s.fds()), String.valueOf(s.javaThreads()),
                            String.valueOf(s.kernelThreads()), Bench.fmt(s.rssMib()), String.valueOf(s.maps()),
                            Bench.fmt(s.heapMib()));
                    out.flush();
                }
            }
            double perCycleMs = (System.nanoTime() - t0) / 1e6 / n;
            Sample base = samples.stream().filter(s -> s.cycle() >= warmup).findFirst().orElse(samples.get(0));
            Sample last = samples.get(samples.size() - 1);
            double slopeKib = slope(rssSamples) * 1024;
            List<String> grown = new ArrayList<>();
            if (last.fds() != base.fds()) {
                grown.add("fds " + base.fds() + " -> " + last.fds());
            }
            if (last.javaThreads() != base.javaThreads()) {
                grown.add("threads " + base.javaThreads() + " -> " + last.javaThreads());
            }
            if (Math.abs(last.kernelThreads() - base.kernelThreads()) > THREAD_SLACK) {
                grown.add("os threads " + base.kernelThreads() + " -> " + last.kernelThreads());
            }
            if (Math.abs(last.maps() - base.maps()) > MAPS_SLACK) {
                grown.add("maps " + base.maps() + " -> " + last.maps());
            }
            if (slopeKib > RSS_SLOPE_KIB) {
                grown.add(String.format("RSS %.1f -> %.1f MiB, %.1f KiB a cycle", base.rssMib(), last.rssMib(), slopeKib));
            }
            boolean flat = grown.isEmpty();
            out.printf("  %s from cycle %d to %d (RSS slope %.1f KiB a cycle over %d samples; %.0f ms per cycle)%s; %d of %d"
                    + " cycles failed%n", flat ? "FLAT" : "NOT FLAT", base.cycle(), last.cycle(), slopeKib, rssSamples.size(),
                    perCycleMs, flat ? "" : ": " + String.join(", ", grown), failed.size(), n);
            out.printf("RESULT lifecycles n=%d flat=%b failed=%d fds=%d->%d threads=%d->%d os_threads=%d->%d rss_mib=%s->%s"
                            + " rss_kib_per_cycle=%s maps=%d->%d heap_mib=%s->%s ms_per_cycle=%s%n", n, flat, failed.size(),
                    base.fds(), last.fds(), base.javaThreads(), last.javaThreads(), base.kernelThreads(), last.kernelThreads(),
                    Bench.fmt(base.rssMib()), Bench.fmt(last.rssMib()), Bench.fmt(slopeKib), base.maps(), last.maps(),
                    Bench.fmt(base.heapMib()), Bench.fmt(last.heapMib()), Bench.fmt(perCycleMs));
            out.flush();
            System.exit(flat && failed.isEmpty() ? 0 : 1);
        } finally {
            try (Stream<Path> s = Files.walk(dir)) {
                s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    /** Least-squares slope of RSS (MiB) over cycles; 0 with fewer than two samples. */
    private static double slope(List<Sample> samples) {
        int k = samples.size();
        if (k < 2) {
            return 0;
        }
        double mx = samples.stream().mapToDouble(Sample::cycle).average().orElse(0);
        double my = samples.stream().mapToDouble(Sample::rssMib).average().orElse(0);
        double num = 0, den = 0;
        for (Sample s : samples) {
            num += (s.cycle() - mx) * (s.rssMib() - my);
            den += (s.cycle() - mx) * (s.cycle() - mx);
        }
        return den == 0 ? 0 : num / den;
    }

    /** One create → run → close; null when the guest ended as it should, else what went wrong. */
    private static String cycle(int i, Path disk, Path share) throws InterruptedException {
        DiskConfig d = DiskConfig.of(SERIAL, disk, true, ImageFormat.RAW);
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        VmConfig config;
        String expectOut = null;
        switch (i % 3) {
            case 1 -> {
                config = new VmConfig(MachineConfig.of(1, 64), KernelConfig.elf(TestGuests.path("console"), "jkrun.test.timeout_ms=20000"),
                        new ConsoleConfig.Streams(new ByteArrayInputStream("ping\n".getBytes(StandardCharsets.US_ASCII)), console),
                        List.of(new FsShare("lifecycles", share, true)), List.of(d), Optional.empty(), true);
                expectOut = "hello from guest\nPING\n";
            }
            case 2 -> config = new VmConfig(MachineConfig.of(1, 64), KernelConfig.elf(TestGuests.path("blk"),
                    "jkrun.test.timeout_ms=20000 jkrun.blk.mode=ro jkrun.blk.serial=" + SERIAL + " jkrun.blk.capacity="
                            + DISK_SECTORS + " jkrun.blk.seed=" + DISK_SEED),
                    new ConsoleConfig.Streams(new ByteArrayInputStream(new byte[0]), console), List.of(), List.of(d),
                    Optional.empty(), true);
            default -> config = new VmConfig(MachineConfig.of(1, 64), KernelConfig.elf(TestGuests.path("virtiofs"),
                    "jkrun.test.timeout_ms=20000"), new ConsoleConfig.None(),
                    List.of(new FsShare("lifecycles", share, false)), List.of(d), Optional.empty(), true);
        }
        List<String> debug = java.util.Collections.synchronizedList(new ArrayList<>());
        Optional<StopReason> r;
        try (VirtualMachine vm = VirtualMachine.create(config, System.err, debug::add)) {
            vm.start();
            r = vm.waitForStop(Duration.ofSeconds(120));
        }
        String text = console.toString(StandardCharsets.US_ASCII);
        if (r.isPresent() && r.get().kind() == StopReason.Kind.SHUTDOWN && r.get().exitStatus().orElse(-1) == 0
                && (expectOut == null || expectOut.equals(text))) {
            return null;
        }
        List<String> fails;
        synchronized (debug) {
            fails = debug.stream().filter(l -> l.contains("FAIL") || l.startsWith("IRQS")).toList();
        }
        return "cycle " + i + " (" + KINDS[i % 3] + ") FAILED: " + r.map(StopReason::toString).orElse("no stop within 120 s (killed)")
                + " " + fails + (expectOut != null && !expectOut.equals(text) ? " console " + text.replace("\n", "\\n") : "");
    }

    /** The blk guest's pattern: byte i of sector s is seed + 7s + i + 0x80 * (i >> 8). */
    private static byte[] pattern() {
        byte[] b = new byte[(int) (DISK_SECTORS * 512)];
        for (int s = 0; s < DISK_SECTORS; s++) {
            for (int i = 0; i < 512; i++) {
                b[s * 512 + i] = (byte) (DISK_SEED + 7 * s + i + 0x80 * (i >> 8));
            }
        }
        return b;
    }

    /** Counts after the VM's threads have gone and a GC. */
    private static Sample sample(int cycle) throws IOException, InterruptedException {
        for (int i = 0; i < 200 && vmThreadsAlive(); i++) {
            Thread.sleep(10);
        }
        System.gc();
        Thread.sleep(300);
        long fds;
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            fds = s.count() - 1; // the listing's own descriptor
        }
        int kernelThreads = 0;
        double rss = 0;
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("Threads:")) {
                kernelThreads = Integer.parseInt(line.substring(8).trim());
            } else if (line.startsWith("VmRSS:")) {
                rss = Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024.0;
            }
        }
        long maps;
        try (Stream<String> s = Files.lines(Path.of("/proc/self/maps"))) {
            maps = s.count();
        }
        Runtime rt = Runtime.getRuntime();
        double heap = (rt.totalMemory() - rt.freeMemory()) / (1024.0 * 1024.0); // live objects, just after the GC
        return new Sample(cycle, fds, Thread.getAllStackTraces().size(), kernelThreads, rss, maps, heap);
    }

    private static boolean vmThreadsAlive() {
        return Thread.getAllStackTraces().keySet().stream()
                .anyMatch(t -> t.getName().startsWith("jkrun-vm") || t.getName().startsWith("virtio-"));
    }
}
