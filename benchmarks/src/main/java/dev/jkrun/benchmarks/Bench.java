package dev.jkrun.benchmarks;

import dev.jkrun.vmm.ConsoleConfig;
import dev.jkrun.vmm.KernelConfig;
import dev.jkrun.vmm.MachineConfig;
import dev.jkrun.vmm.StopReason;
import dev.jkrun.vmm.VirtualMachine;
import dev.jkrun.vmm.VmConfig;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/** Shared helpers of the benchmark mains: options, medians, running a guest in-process or as a process. */
final class Bench {
    private Bench() {}

    /** {@code key=value} arguments, with defaults. */
    static final class Opts {
        private final Map<String, String> values = new HashMap<>();

        Opts(String[] args) {
            for (String a : args) {
                String s = a.startsWith("--") ? a.substring(2) : a;
                int eq = s.indexOf('=');
                if (eq <= 0) {
                    throw new IllegalArgumentException("arguments are key=value, got '" + a + "'");
                }
                values.put(s.substring(0, eq), s.substring(eq + 1));
            }
        }

        int integer(String key, int dflt) { return values.containsKey(key) ? Integer.parseInt(values.get(key)) : dflt; }

        String string(String key, String dflt) { return values.getOrDefault(key, dflt); }
    }

    static double median(List<Double> xs) {
        double[] a = xs.stream().mapToDouble(Double::doubleValue).toArray();
        Arrays.sort(a);
        int n = a.length;
        return n % 2 == 1 ? a[n / 2] : (a[n / 2 - 1] + a[n / 2]) / 2;
    }

    static double min(List<Double> xs) { return xs.stream().mapToDouble(Double::doubleValue).min().orElse(Double.NaN); }

    static double max(List<Double> xs) { return xs.stream().mapToDouble(Double::doubleValue).max().orElse(Double.NaN); }

    /** The repository root: {@code -Djkrun.root}, else the nearest ancestor of the working directory with {@code jkrun}. */
    static Path root() {
        String p = System.getProperty("jkrun.root");
        if (p != null) {
            return Path.of(p).toAbsolutePath();
        }
        for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
            if (Files.isRegularFile(d.resolve("jkrun")) && Files.isDirectory(d.resolve("guests"))) {
                return d;
            }
        }
        throw new IllegalStateException("cannot find the jkrun checkout: run from it or pass -Djkrun.root=DIR");
    }

    /** The C baseline VMM: {@code -Djkrun.cvmm}, else {@code guests/target/cvmm} of the checkout. */
    static Path cvmm() {
        String p = System.getProperty("jkrun.cvmm");
        Path c = p != null ? Path.of(p) : root().resolve("guests/target/cvmm");
        if (!Files.isExecutable(c)) {
            throw new IllegalStateException(c + " is missing: build it with make -C guests");
        }
        return c;
    }

    /** One in-process run's result. */
    record JavaRun(long nanos, StopReason reason, List<String> debug) {}

    /** create → start → waitForStop → close of a test guest in this JVM, timed as a whole. */
    static JavaRun runJava(Path elf, String cmdline, long memMib) throws InterruptedException {
        VmConfig config = new VmConfig(MachineConfig.of(1, memMib), KernelConfig.elf(elf, cmdline), new ConsoleConfig.None(), true);
        List<String> debug = new ArrayList<>();
        long t0 = System.nanoTime();
        StopReason r;
        try (VirtualMachine vm = VirtualMachine.create(config, System.err, debug::add)) {
            vm.start();
            Optional<StopReason> o = vm.waitForStop(Duration.ofSeconds(300));
            if (o.isEmpty()) {
                throw new IllegalStateException("guest " + elf.getFileName() + " did not stop within 300 s");
            }
            r = o.get();
        }
        long dt = System.nanoTime() - t0;
        if (r.kind() != StopReason.Kind.SHUTDOWN || r.exitStatus().orElse(-1) != 0) {
            throw new IllegalStateException("guest " + elf.getFileName() + " (" + cmdline + ") stopped unexpectedly: " + r
                    + "\n" + String.join("\n", debug));
        }
        return new JavaRun(dt, r, debug);
    }

    /** One process run's result. */
    record ProcRun(long nanos, int exit, String stdout, String stderr) {}

    /** Runs a command to completion, timed from spawn to reaped exit; a non-zero status is an error. */
    static ProcRun runProcess(List<String> cmd, Map<String, String> env) {
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd);
            pb.environment().putAll(env);
            Path out = Files.createTempFile("jkrun-bench-", ".out");
            Path err = Files.createTempFile("jkrun-bench-", ".err");
            try {
                pb.redirectOutput(out.toFile()).redirectError(err.toFile()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
                long t0 = System.nanoTime();
                Process p = pb.start();
                if (!p.waitFor(300, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    throw new IllegalStateException(cmd + " did not finish within 300 s");
                }
                long dt = System.nanoTime() - t0;
                String so = Files.readString(out, StandardCharsets.UTF_8);
                String se = Files.readString(err, StandardCharsets.UTF_8);
                if (p.exitValue() != 0) {
                    throw new IllegalStateException(cmd + " exited " + p.exitValue() + "\nstdout: " + so + "\nstderr: " + se);
                }
                return new ProcRun(dt, p.exitValue(), so, se);
            } finally {
                Files.deleteIfExists(out);
                Files.deleteIfExists(err);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** The guest's {@code tsc_per_exit} from pio_loop's report line, or -1. */
    static long tscPerExit(String text) {
        for (String line : text.split("\n")) {
            String[] w = line.trim().split("\\s+");
            if (w.length == 4 && w[0].equals("PIO") && w[2].equals("tsc_per_exit")) {
                return Long.parseLong(w[3]);
            }
        }
        return -1;
    }

    static String fmt(double v) {
        if (Double.isNaN(v)) {
            return "n/a";
        }
        return v >= 100 ? String.format("%.0f", v) : v >= 10 ? String.format("%.1f", v) : String.format("%.2f", v);
    }

    static void line(PrintStream out, String label, String... cols) {
        StringBuilder sb = new StringBuilder(String.format("  %-44s", label));
        for (String c : cols) {
            sb.append(String.format("%12s", c));
        }
        out.println(sb.toString().stripTrailing());
    }

    /** A debug-port line and when the host received it. */
    record Timed(long nanos, String line) {}

    /** A guest run whose report lines carry host timestamps (phases are timed on the host side). */
    record TimedRun(StopReason reason, List<Timed> lines, long vmNanos) {
        List<String> text() { return lines.stream().map(Timed::line).toList(); }
    }

    /** create → start → waitForStop → close of {@code config}, timestamping each debug-port line as it arrives. */
    static TimedRun runTimed(VmConfig config, long timeoutS, String what) throws InterruptedException {
        List<Timed> lines = new ArrayList<>();
        long t0 = System.nanoTime();
        StopReason r;
        try (VirtualMachine vm = VirtualMachine.create(config, System.err, line -> {
            long t = System.nanoTime();
            synchronized (lines) {
                lines.add(new Timed(t, line));
            }
        })) {
            vm.start();
            r = vm.waitForStop(Duration.ofSeconds(timeoutS))
                    .orElseThrow(() -> new IllegalStateException(what + " did not stop within " + timeoutS + " s"));
        }
        long vmNanos = System.nanoTime() - t0;
        synchronized (lines) {
            return new TimedRun(r, List.copyOf(lines), vmNanos);
        }
    }
}
