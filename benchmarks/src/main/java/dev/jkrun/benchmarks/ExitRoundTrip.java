package dev.jkrun.benchmarks;

import dev.jkrun.guests.TestGuests;
import dev.jkrun.libc.Ioctl;
import dev.jkrun.memory.GuestMemoryImpl;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
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
 * {@code mem} (MiB, 64), {@code memory} (guest-memory accessors for the Java side, comma list of {@code unsafe},
 * {@code ffm}; default the preferred one): with several, each takes its turn in every rep, in rotating order, so they
 * share the noise too. Then, in three more runs of each size that are not timed, the vCPU thread's heap allocation
 * per exit ({@link ThreadAllocation}, the same slope over allocated bytes). Prints the table; asserts nothing.
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
        List<String> impls = new ArrayList<>();
        for (String s : o.string("memory", GuestMemoryImpl.preferred().name()).split(",")) {
            GuestMemoryImpl impl = GuestMemoryImpl.valueOf(s.trim().toUpperCase(Locale.ROOT));
            if (!impl.isAvailable()) {
                throw new IllegalArgumentException("memory=" + s + " is not available on " + Runtime.version());
            }
            impls.add(impl.name().toLowerCase(Locale.ROOT));
        }
        PrintStream out = System.out;
        Path elf = TestGuests.path("pio_loop");
        if (o.integer("profile", 0) != 0) {
            profile(out, elf, n2, reps, warmup, mem);
            return;
        }
        Path cvmm = Bench.cvmm();

        out.printf("== ExitRoundTrip: port-I/O exit round trip, pio_loop n=%d vs n=%d, %d runs each, 1 vCPU, %d MiB, Java guest memory: %s,"
                + " KVM_RUN through %s (on %s)%n", n1, n2, reps, mem, String.join(", ", impls), Ioctl.rawPath(), Runtime.version());
        for (String impl : impls) {
            System.setProperty(GuestMemoryImpl.PROPERTY, impl);
            for (int i = 0; i < warmup; i++) {
                Bench.runJava(elf, "jkrun.test.n=" + n2, mem);
            }
        }
        Map<String, List<Double>> t1 = new LinkedHashMap<>(), t2 = new LinkedHashMap<>(), tsc = new LinkedHashMap<>();
        Map<String, List<Double>> a1 = new LinkedHashMap<>(), a2 = new LinkedHashMap<>();
        List<String> who = new ArrayList<>(impls);
        who.add("c");
        for (String w : who) {
            t1.put(w, new ArrayList<>());
            t2.put(w, new ArrayList<>());
            tsc.put(w, new ArrayList<>());
            a1.put(w, new ArrayList<>());
            a2.put(w, new ArrayList<>());
        }
        for (int r = 0; r < reps; r++) {
            for (int n : new int[] {n1, n2}) {
                // Rotate who goes first so no VMM always runs right after another's tail.
                List<String> order = new ArrayList<>(who);
                Collections.rotate(order, r);
                for (String w : order) {
                    double micros;
                    long tscPer;
                    if (w.equals("c")) {
                        Bench.ProcRun pr = Bench.runProcess(List.of(cvmm.toString(), "--mem", String.valueOf(mem),
                                "--cmdline", "jkrun.test.n=" + n, elf.toString()), Map.of());
                        micros = pr.nanos() / 1e3;
                        tscPer = Bench.tscPerExit(pr.stdout());
                    } else {
                        System.setProperty(GuestMemoryImpl.PROPERTY, w);
                        Bench.JavaRun jr = Bench.runJava(elf, "jkrun.test.n=" + n, mem);
                        micros = jr.nanos() / 1e3;
                        tscPer = Bench.tscPerExit(String.join("\n", jr.debug()));
                    }
                    (n == n1 ? t1 : t2).get(w).add(micros);
                    if (n == n2) {
                        tsc.get(w).add((double) tscPer);
                    }
                }
            }
        }
        // the vCPU thread's allocation, in runs of their own (the poller would disturb the timed ones)
        for (String impl : impls) {
            System.setProperty(GuestMemoryImpl.PROPERTY, impl);
            for (int r = 0; r < 3; r++) {
                for (int n : new int[] {n1, n2}) {
                    try (ThreadAllocation alloc = new ThreadAllocation("-vcpu0")) {
                        Bench.runJava(elf, "jkrun.test.n=" + n, mem);
                        (n == n1 ? a1 : a2).get(impl).add((double) alloc.bytes());
                    }
                }
            }
        }
        System.clearProperty(GuestMemoryImpl.PROPERTY);
        double dn = n2 - n1;
        Map<String, Double> per = new LinkedHashMap<>();
        for (String w : who) {
            per.put(w, (Bench.median(t2.get(w)) - Bench.median(t1.get(w))) / dn);
        }
        double cPer = per.get("c");

        List<String> head = new ArrayList<>();
        for (String impl : impls) {
            head.add("Java " + impl);
        }
        head.add("C (cvmm)");
        for (String impl : impls) {
            head.add(impl + "/C");
        }
        Bench.line(out, "", head.toArray(new String[0]));
        row(out, "median run, n=" + n1 + " (ms)", impls, w -> Bench.median(t1.get(w)) / 1e3);
        row(out, "median run, n=" + n2 + " (ms)", impls, w -> Bench.median(t2.get(w)) / 1e3);
        row(out, "us/exit (median slope)", impls, per::get);
        List<String> range = new ArrayList<>();
        for (String w : who) {
            // A rough spread: the slope through the fastest and through the slowest runs.
            range.add(Bench.fmt((Bench.min(t2.get(w)) - Bench.max(t1.get(w))) / dn) + ".."
                    + Bench.fmt((Bench.max(t2.get(w)) - Bench.min(t1.get(w))) / dn));
        }
        Bench.line(out, "us/exit range (min..max slope)", range.toArray(new String[0]));
        row(out, "guest-side TSC cycles/exit (median, n=" + n2 + ")", impls, w -> Bench.median(tsc.get(w)));
        for (String impl : impls) {
            // the vCPU thread's heap allocation per exit: the slope of its allocated bytes over the two exit counts
            double bytes = (Bench.median(a2.get(impl)) - Bench.median(a1.get(impl))) / dn;
            out.printf("  Java %s: vCPU thread heap bytes/exit %s (n=%d: %s, n=%d: %s bytes, medians)%n", impl,
                    Bench.fmt(bytes), n1, Bench.fmt(Bench.median(a1.get(impl))), n2, Bench.fmt(Bench.median(a2.get(impl))));
            out.printf("RESULT exit_allocation memory=%s bytes_per_exit=%.2f%n", impl, bytes);
        }
        if (impls.contains("unsafe") && impls.contains("ffm")) {
            out.printf("  ffm/unsafe us/exit: %s%n", Bench.fmt(per.get("ffm") / per.get("unsafe")));
        }
        for (String impl : impls) {
            out.printf("RESULT exit_round_trip memory=%s ioctl=%s java_us_per_exit=%.3f c_us_per_exit=%.3f ratio_java_over_c=%.2f%n",
                    impl, Ioctl.rawPath(), per.get(impl), cPer, per.get(impl) / cPer);
        }
        out.flush();
        System.exit(0);
    }

    /**
     * {@code profile=1} (with {@code -Djkrun.exitProfile=true}): the n2 guest {@code reps} times after warm-up, and
     * where the vCPU loop's time per exit went ({@link ExitProfile}).
     */
    private static void profile(PrintStream out, Path elf, int n, int reps, int warmup, int mem) throws Exception {
        if (!dev.jkrun.kvm.Vcpu.PROFILE) {
            throw new IllegalArgumentException("profile=1 needs -Djkrun.exitProfile=true");
        }
        for (int i = 0; i < warmup; i++) {
            Bench.runJava(elf, "jkrun.test.n=" + n, mem);
        }
        dev.jkrun.vmm.vstate.ExitProfile.reset();
        for (int i = 0; i < reps; i++) {
            Bench.runJava(elf, "jkrun.test.n=" + n, mem);
        }
        long[] p = dev.jkrun.vmm.vstate.ExitProfile.snapshot();
        double exits = Math.max(1, p[0]);
        double ioctl = p[1] / exits / 1e3, decode = p[2] / exits, dispatch = p[3] / exits;
        out.printf("== ExitRoundTrip profile: %d port/MMIO exits of pio_loop n=%d x %d runs (-Djkrun.exitProfile)%n",
                p[0], n, reps);
        out.printf("  KVM_RUN (JNR call + kernel + guest to its next exit)  %s us/exit%n", Bench.fmt(ioctl));
        out.printf("  decode (kvm_run fields)                                %s ns/exit%n", Bench.fmt(decode));
        out.printf("  dispatch (bus lookup, device, reply)                   %s ns/exit%n", Bench.fmt(dispatch));
        long c0 = System.nanoTime();
        for (int i = 0; i < 1_000_000; i++) {
            System.nanoTime(); // not pure: the JIT keeps every call
        }
        double clock = (System.nanoTime() - c0) / 1e6;
        out.printf("  (decode and dispatch each include one clock read: %s ns here)%n", Bench.fmt(clock));
        out.printf("RESULT exit_profile ioctl_us=%.3f decode_ns=%.1f dispatch_ns=%.1f%n", ioctl, decode, dispatch);
        out.flush();
        System.exit(0);
    }

    /** One value per Java accessor and for C, then each Java accessor's ratio to C. */
    private static void row(PrintStream out, String label, List<String> impls, java.util.function.Function<String, Double> f) {
        List<String> cols = new ArrayList<>();
        for (String impl : impls) {
            cols.add(Bench.fmt(f.apply(impl)));
        }
        double c = f.apply("c");
        cols.add(Bench.fmt(c));
        for (String impl : impls) {
            cols.add(Bench.fmt(f.apply(impl) / c));
        }
        Bench.line(out, label, cols.toArray(new String[0]));
    }
}
