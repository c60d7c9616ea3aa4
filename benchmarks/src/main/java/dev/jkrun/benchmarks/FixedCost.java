package dev.jkrun.benchmarks;

import dev.jkrun.guests.TestGuests;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The VMM's fixed cost: build the VM, start it, run the {@code exit_status} guest to its first (and only) exit,
 * stop and release everything. Medians of {@code n} runs of:
 * <ol>
 *   <li>jkrun in a warm JVM: {@code VirtualMachine.create} + start + waitForStop + close;</li>
 *   <li>jkrun as a whole process: {@code ./jkrun guest --memory 64 --cmdline jkrun.test.status=0 -- ELF}
 *       (JKRUN_NO_BUILD=1), i.e. JVM start-up included;</li>
 *   <li>the C baseline: {@code cvmm --mem 64 ... exit_status} as a process, and the in-process
 *       create→run→destroy cycles ({@code cycle_us}) of {@code cvmm --repeat}, taken as n calls of
 *       {@code --repeat 2} interleaved with the other measurements (2n cycles).</li>
 * </ol>
 * Arguments ({@code key=value}): {@code n} (20), {@code warmup} (5), {@code mem} (64). Prints; asserts nothing.
 */
public final class FixedCost {
    /** cvmm cycles per {@code --repeat} call; n calls are interleaved with the other measurements. */
    private static final int CYCLES_PER_CALL = 2;

    private FixedCost() {}

    public static void main(String[] args) throws Exception {
        Bench.Opts o = new Bench.Opts(args);
        int n = o.integer("n", 20), warmup = o.integer("warmup", 5), mem = o.integer("mem", 64);
        PrintStream out = System.out;
        Path elf = TestGuests.path("exit_status");
        Path cvmm = Bench.cvmm();
        Path jkrun = Bench.root().resolve("jkrun");
        String cmdline = "jkrun.test.status=0";

        out.printf("== FixedCost: start -> exit_status guest's first exit -> stopped and released, median of %d, 1 vCPU, %d MiB%n",
                n, mem);
        for (int i = 0; i < warmup; i++) {
            Bench.runJava(elf, cmdline, mem);
        }
        List<Double> javaWarm = new ArrayList<>(), javaProc = new ArrayList<>(), cProc = new ArrayList<>();
        List<Double> cCycle = new ArrayList<>();
        List<String> jkrunCmd = List.of(jkrun.toString(), "guest", "--memory", String.valueOf(mem), "--cmdline", cmdline,
                "--", elf.toString());
        List<String> cvmmCmd = List.of(cvmm.toString(), "--mem", String.valueOf(mem), "--cmdline", cmdline, elf.toString());
        List<String> repeatCmd = List.of(cvmm.toString(), "--mem", String.valueOf(mem), "--cmdline", cmdline,
                "--repeat", String.valueOf(CYCLES_PER_CALL), elf.toString());
        Map<String, String> env = Map.of("JKRUN_NO_BUILD", "1");
        // Interleave all four so they share the machine's noise; the in-process C cycles come from short
        // cvmm --repeat calls spread over the run rather than one long call at the end.
        for (int i = 0; i < n; i++) {
            javaWarm.add(Bench.runJava(elf, cmdline, mem).nanos() / 1e3);
            javaProc.add(Bench.runProcess(jkrunCmd, env).nanos() / 1e3);
            cProc.add(Bench.runProcess(cvmmCmd, Map.of()).nanos() / 1e3);
            int before = cCycle.size();
            for (String line : Bench.runProcess(repeatCmd, Map.of()).stderr().split("\n")) {
                if (line.startsWith("cycle_us ")) {
                    cCycle.add(Double.parseDouble(line.substring(9).trim()));
                }
            }
            if (cCycle.size() - before != CYCLES_PER_CALL) {
                throw new IllegalStateException("cvmm --repeat " + CYCLES_PER_CALL + " printed " + (cCycle.size() - before)
                        + " cycle_us lines");
            }
        }

        double jw = Bench.median(javaWarm), jp = Bench.median(javaProc), cp = Bench.median(cProc), cc = Bench.median(cCycle);
        Bench.line(out, "", "median ms", "min ms", "max ms");
        Bench.line(out, "(a) jkrun, warm JVM (create..close)", Bench.fmt(jw / 1e3), Bench.fmt(Bench.min(javaWarm) / 1e3),
                Bench.fmt(Bench.max(javaWarm) / 1e3));
        Bench.line(out, "(b) jkrun as a process (./jkrun guest)", Bench.fmt(jp / 1e3), Bench.fmt(Bench.min(javaProc) / 1e3),
                Bench.fmt(Bench.max(javaProc) / 1e3));
        Bench.line(out, "(c) cvmm, in-process cycle (--repeat, 2n)", Bench.fmt(cc / 1e3), Bench.fmt(Bench.min(cCycle) / 1e3),
                Bench.fmt(Bench.max(cCycle) / 1e3));
        Bench.line(out, "(c) cvmm as a process", Bench.fmt(cp / 1e3), Bench.fmt(Bench.min(cProc) / 1e3),
                Bench.fmt(Bench.max(cProc) / 1e3));
        out.printf("  ratio warm-JVM jkrun / cvmm in-process cycle : %s%n", Bench.fmt(jw / cc));
        out.printf("  ratio jkrun process  / cvmm process          : %s%n", Bench.fmt(jp / cp));
        out.printf("RESULT fixed_cost java_warm_ms=%.2f c_cycle_ms=%.2f ratio_warm=%.2f java_process_ms=%.1f c_process_ms=%.1f"
                + " ratio_process=%.2f%n", jw / 1e3, cc / 1e3, jw / cc, jp / 1e3, cp / 1e3, jp / cp);
        out.flush();
        System.exit(0);
    }
}
