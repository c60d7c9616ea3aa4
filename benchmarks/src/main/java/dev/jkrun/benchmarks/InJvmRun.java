package dev.jkrun.benchmarks;

import dev.jkrun.vmm.StopReason;
import dev.jkrun.vmm.VirtualMachine;
import dev.jkrun.vmm.VmBuilder;
import dev.jkrun.vmm.VmConfig;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * In-JVM start() → exit status of {@code /bin/true} with the libkrunfw kernel (host root shared read-only, the
 * command through jkrun's init), median of {@code n} after {@code warmup} runs in the same JVM. Needs hardware
 * virtualization: run it inside the nested host (benchmarks/nested-timings.sh does), where the ratio to
 * {@code ./jkrun run -- /bin/true} as a process shows what JVM start-up adds. Prints; asserts nothing.
 */
public final class InJvmRun {
    private InJvmRun() {}

    public static void main(String[] args) throws Exception {
        Bench.Opts o = new Bench.Opts(args);
        int n = o.integer("n", 3), warmup = o.integer("warmup", 1), mem = o.integer("mem", 512);
        VmConfig config = VmBuilder.create().machine(m -> m.memoryMib(mem))
                .fs(f -> f.root(Path.of("/")).readOnly(true))
                .console(c -> c.piped(InputStream.nullInputStream(), new ByteArrayOutputStream(), new ByteArrayOutputStream()))
                .exec(e -> e.path("/bin/true"))
                .build();
        List<Double> ms = new ArrayList<>();
        for (int i = 0; i < warmup + n; i++) {
            long t0 = System.nanoTime();
            StopReason r;
            try (VirtualMachine vm = VirtualMachine.create(config).start()) {
                r = vm.waitForStop(Duration.ofSeconds(600)).orElseThrow(() -> new IllegalStateException("no exit within 600 s"));
            }
            double dt = (System.nanoTime() - t0) / 1e6;
            if (r.kind() != StopReason.Kind.SHUTDOWN || r.exitStatus().orElse(-1) != 0) {
                throw new IllegalStateException("/bin/true stopped as " + r);
            }
            System.out.printf("%s %d  in-JVM create..start..exit status 0: %.0f ms%n", i < warmup ? "warmup" : "run", i, dt);
            if (i >= warmup) {
                ms.add(dt);
            }
        }
        System.out.printf("RESULT in_jvm_run_true median_ms=%.0f min_ms=%.0f max_ms=%.0f n=%d%n", Bench.median(ms), Bench.min(ms), Bench.max(ms), n);
        System.exit(0);
    }
}
