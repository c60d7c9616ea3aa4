package dev.jkrun.benchmarks;

import dev.jkrun.guests.TestGuests;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Port-I/O exit round trip: guest {@code outb} to an unhandled port → KVM_EXIT_IO → the VMM's vCPU loop → back into
 * the guest, through jkrun's Java vCPU loop and through cvmm (the C baseline), with the same {@code pio_loop} guest.
 *
 * <p>Each VMM runs the guest with {@code n=N1} and {@code n=N2} exits, {@code reps} times each, Java and C alternating
 * so they share the machine's noise. Per-exit cost = (median T(N2) − median T(N1)) / (N2 − N1): start-up, process
 * spawn (C runs as a subprocess) and tear-down cancel. Java runs in this JVM after warm-up runs.
 *
 * <p>Arguments ({@code key=value}): {@code n1} (2000), {@code n2} (52000), {@code reps} (5), {@code warmup} (2),
 * {@code mem} (MiB, 64). Prints the table; asserts nothing.
 */
public final class ExitRoundTrip {
    private ExitRoundTrip() {}

    public static void main(String[] args) throws Exception {
        Bench.Opts o = new Bench.Opts(args);
        int n1 = o.integer("n1", 2000), n2 = o.integer("n2", 52000), reps = o.integer("reps", 5);
        int warmup = o.integer("warmup", 2), mem = o.integer("mem", 64);
        if (n2 <= n1 || reps < 1) {
            throw new IllegalArgumentException("need n2 > n1 and reps >= 1");
        }
        PrintStream out = System.out;
        Path elf = TestGuests.path("pio_loop");
        Path cvmm = Bench.cvmm();

        out.printf("== ExitRoundTrip: port-I/O exit round trip, pio_loop n=%d vs n=%d, %d runs each, 1 vCPU, %d MiB%n",
                n1, n2, reps, mem);
        for (int i = 0; i < warmup; i++) {
            Bench.runJava(elf, "jkrun.test.n=" + n2, mem);
        }
        List<Double> j1 = new ArrayList<>(), j2 = new ArrayList<>(), c1 = new ArrayList<>(), c2 = new ArrayList<>();
        List<Double> jTsc = new ArrayList<>(), cTsc = new ArrayList<>();
        for (int r = 0; r < reps; r++) {
            for (int n : new int[] {n1, n2}) {
                // Alternate which VMM goes first so neither always runs right after the other's tail.
                boolean javaFirst = (r % 2 == 0);
                for (int k = 0; k < 2; k++) {
                    if ((k == 0) == javaFirst) {
                        Bench.JavaRun jr = Bench.runJava(elf, "jkrun.test.n=" + n, mem);
                        (n == n1 ? j1 : j2).add(jr.nanos() / 1e3);
                        if (n == n2) {
                            jTsc.add((double) Bench.tscPerExit(String.join("\n", jr.debug())));
                        }
                    } else {
                        Bench.ProcRun pr = Bench.runProcess(List.of(cvmm.toString(), "--mem", String.valueOf(mem),
                                "--cmdline", "jkrun.test.n=" + n, elf.toString()), Map.of());
                        (n == n1 ? c1 : c2).add(pr.nanos() / 1e3);
                        if (n == n2) {
                            cTsc.add((double) Bench.tscPerExit(pr.stdout()));
                        }
                    }
                }
            }
        }
        double dn = n2 - n1;
        double javaPer = (Bench.median(j2) - Bench.median(j1)) / dn;
        double cPer = (Bench.median(c2) - Bench.median(c1)) / dn;
        // A rough spread: the slope through the fastest and through the slowest runs.
        double javaLo = (Bench.min(j2) - Bench.max(j1)) / dn, javaHi = (Bench.max(j2) - Bench.min(j1)) / dn;
        double cLo = (Bench.min(c2) - Bench.max(c1)) / dn, cHi = (Bench.max(c2) - Bench.min(c1)) / dn;

        Bench.line(out, "", "Java", "C (cvmm)", "Java/C");
        Bench.line(out, "median run, n=" + n1 + " (ms)", Bench.fmt(Bench.median(j1) / 1e3), Bench.fmt(Bench.median(c1) / 1e3),
                Bench.fmt(Bench.median(j1) / Bench.median(c1)));
        Bench.line(out, "median run, n=" + n2 + " (ms)", Bench.fmt(Bench.median(j2) / 1e3), Bench.fmt(Bench.median(c2) / 1e3),
                Bench.fmt(Bench.median(j2) / Bench.median(c2)));
        Bench.line(out, "us/exit (median slope)", Bench.fmt(javaPer), Bench.fmt(cPer), Bench.fmt(javaPer / cPer));
        Bench.line(out, "us/exit range (min..max slope)", Bench.fmt(javaLo) + ".." + Bench.fmt(javaHi),
                Bench.fmt(cLo) + ".." + Bench.fmt(cHi));
        Bench.line(out, "guest-side TSC cycles/exit (median, n=" + n2 + ")", Bench.fmt(Bench.median(jTsc)),
                Bench.fmt(Bench.median(cTsc)), Bench.fmt(Bench.median(jTsc) / Bench.median(cTsc)));
        out.printf("RESULT exit_round_trip java_us_per_exit=%.3f c_us_per_exit=%.3f ratio_java_over_c=%.2f%n",
                javaPer, cPer, javaPer / cPer);
        out.flush();
        System.exit(0);
    }
}
