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
 *       {@code --repeat 2} interleaved with the other measurements (2n cycles);</li>
 *   <li>on JDK 22+, the JVM's floor for this work: {@code benchmarks/src/main/floor/KvmFloor.java}, a flat program
 *       that only creates and destroys the VM through FFM (a strict subset of what both VMMs do), compiled with this
 *       JDK and run as a process with its own class-data archive and the launcher's JVM options.</li>
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
        List<String> floorCmd = floorCommand(out);
        List<Double> floorProc = new ArrayList<>();
        // Interleave all four so they share the machine's noise; the in-process C cycles come from short
        // cvmm --repeat calls spread over the run rather than one long call at the end.
        for (int i = 0; i < n; i++) {
            javaWarm.add(Bench.runJava(elf, cmdline, mem).nanos() / 1e3);
            javaProc.add(Bench.runProcess(jkrunCmd, env).nanos() / 1e3);
            cProc.add(Bench.runProcess(cvmmCmd, Map.of()).nanos() / 1e3);
            if (floorCmd != null) {
                floorProc.add(Bench.runProcess(floorCmd, Map.of()).nanos() / 1e3);
            }
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
        double fp = floorProc.isEmpty() ? Double.NaN : Bench.median(floorProc);
        if (!floorProc.isEmpty()) {
            Bench.line(out, "(d) JVM floor: create+destroy only (KvmFloor)", Bench.fmt(fp / 1e3), Bench.fmt(Bench.min(floorProc) / 1e3),
                    Bench.fmt(Bench.max(floorProc) / 1e3));
        }
        out.printf("  ratio warm-JVM jkrun / cvmm in-process cycle : %s%n", Bench.fmt(jw / cc));
        out.printf("  ratio jkrun process  / cvmm process          : %s%n", Bench.fmt(jp / cp));
        if (!floorProc.isEmpty()) {
            out.printf("  ratio JVM floor      / cvmm process          : %s (jkrun process / JVM floor: %s)%n",
                    Bench.fmt(fp / cp), Bench.fmt(jp / fp));
        }
        out.printf("RESULT fixed_cost java_warm_ms=%.2f c_cycle_ms=%.2f ratio_warm=%.2f java_process_ms=%.1f c_process_ms=%.1f"
                + " ratio_process=%.2f jvm_floor_ms=%.1f ratio_floor=%.2f%n", jw / 1e3, cc / 1e3, jw / cc, jp / 1e3, cp / 1e3, jp / cp,
                fp / 1e3, fp / cp);
        out.flush();
        System.exit(0);
    }

    /**
     * KvmFloor's command on this JDK, after compiling it and a training run that archives its classes (as the
     * launcher archives jkrun's); null, with a line saying why, where the JDK has no FFM or no javac.
     */
    private static List<String> floorCommand(PrintStream out) {
        Path home = Path.of(System.getProperty("java.home"));
        Path java = home.resolve("bin/java"), javac = home.resolve("bin/javac");
        if (Runtime.version().feature() < 22 || !java.toFile().canExecute() || !javac.toFile().canExecute()) {
            out.println("  (d) JVM floor: skipped, it needs a JDK 22+ with javac (FFM); run with JAVA_HOME set to one");
            return null;
        }
        Path src = Bench.root().resolve("benchmarks/src/main/floor/KvmFloor.java");
        Path dir = Bench.root().resolve("benchmarks/target/kvm-floor");
        Path jsa = dir.resolve("kvm-floor.jsa"), jar = dir.resolve("kvm-floor.jar"), classes = dir.resolve("classes");
        // A jar: class-data sharing refuses a directory on the class path.
        Bench.runProcess(List.of(javac.toString(), "-d", classes.toString(), src.toString()), Map.of());
        Bench.runProcess(List.of(home.resolve("bin/jar").toString(), "cf", jar.toString(), "-C", classes.toString(), "."), Map.of());
        List<String> base = List.of(java.toString(), "-XX:+UseSerialGC", "--enable-native-access=ALL-UNNAMED");
        // as the launcher: an AOT cache on JDK 25+, a dynamic CDS archive before
        boolean aot = Runtime.version().feature() >= 25;
        Path archive = aot ? dir.resolve("kvm-floor.aot") : jsa;
        List<String> train = new ArrayList<>(base);
        train.addAll(List.of((aot ? "-XX:AOTCacheOutput=" : "-XX:ArchiveClassesAtExit=") + archive, "-cp", jar.toString(), "KvmFloor"));
        Bench.runProcess(train, Map.of());
        List<String> cmd = new ArrayList<>(base);
        cmd.addAll(List.of((aot ? "-XX:AOTCache=" : "-XX:SharedArchiveFile=") + archive,
                aot ? "-Xlog:aot=off,cds=off" : "-Xlog:cds=off,cds+dynamic=off", "-cp", jar.toString(), "KvmFloor"));
        return cmd;
    }
}
