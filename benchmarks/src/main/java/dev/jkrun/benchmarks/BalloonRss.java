package dev.jkrun.benchmarks;

import dev.jkrun.vmm.Balloon;
import dev.jkrun.vmm.StopReason;
import dev.jkrun.vmm.VirtualMachine;
import dev.jkrun.vmm.VmBuilder;
import dev.jkrun.vmm.VmConfig;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Free page reporting end to end with the libkrunfw kernel: the guest (host root shared read-only, jkrun's init) fills
 * {@code mib} MiB of its tmpfs {@code /tmp} with {@code dd}, then removes the file; the JVM's {@code VmRSS} is sampled
 * at the guest's "idle", "filled" and "freed" marks and then every {@code sample_ms} for {@code wait_s} seconds, and
 * the result is how much of what the fill added came back to the host, and how fast (the time to give back half and
 * 90 %). Baseline: the RSS at "idle", in the same run. Needs hardware virtualization (libkrunfw's kernel does not run on
 * kvm-pvm): run it inside the nested host, {@code ./jkrun-nested -- benchmarks/nested-balloon.sh}. Prints; asserts
 * nothing. Linux reports free 2 MiB blocks after they stay free about 2 s ({@code page_reporting_delay}), a share of
 * the free memory per pass, so the fall takes seconds.
 */
public final class BalloonRss {
    private BalloonRss() {}

    /** Splits what the guest's command prints into lines. */
    private static final class Lines extends OutputStream {
        final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        private final ByteArrayOutputStream cur = new ByteArrayOutputStream();

        @Override
        public synchronized void write(int b) {
            if (b == '\n') {
                lines.add(cur.toString(StandardCharsets.UTF_8).trim());
                cur.reset();
            } else {
                cur.write(b);
            }
        }
    }

    static double rssMib() throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024.0;
            }
        }
        throw new IllegalStateException("no VmRSS");
    }

    static void await(Lines out, String mark, long seconds) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < deadline) {
            String l = out.lines.poll(100, TimeUnit.MILLISECONDS);
            if (l != null && l.equals(mark)) {
                return;
            }
        }
        throw new IllegalStateException("the guest did not print " + mark + " within " + seconds + " s");
    }

    public static void main(String[] args) throws Exception {
        Bench.Opts o = new Bench.Opts(args);
        int mib = o.integer("mib", 1024), mem = o.integer("mem", 3072), waitS = o.integer("wait_s", 60);
        int sampleMs = o.integer("sample_ms", 250);
        String script = "sleep 1; echo PHASE_IDLE; dd if=/dev/zero of=/tmp/fill bs=1M count=" + mib + " 2>/dev/null; sync; "
                + "echo PHASE_FILLED; sleep 2; rm -f /tmp/fill; echo PHASE_FREED; sleep " + (waitS + 5) + "; echo PHASE_DONE";
        Lines out = new Lines();
        VmConfig config = VmBuilder.create().machine(m -> m.memoryMib(mem))
                .fs(f -> f.root(Path.of("/")).readOnly(true))
                .console(c -> c.piped(InputStream.nullInputStream(), out, new ByteArrayOutputStream()))
                .exec(e -> e.path("/bin/sh").args("-c", script))
                .build();
        try (VirtualMachine vm = VirtualMachine.create(config).start()) {
            Balloon balloon = vm.balloon().orElseThrow();
            await(out, "PHASE_IDLE", 300);
            double idle = rssMib();
            await(out, "PHASE_FILLED", 600);
            double filled = rssMib();
            await(out, "PHASE_FREED", 60);
            long t0 = System.nanoTime();
            double added = filled - idle, last = filled, half = Double.NaN, ninety = Double.NaN;
            System.out.printf("VmRSS idle %.0f MiB, after filling %d MiB of tmpfs %.0f MiB (+%.0f)%n", idle, mib, filled, added);
            while (System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(waitS)) {
                Thread.sleep(sampleMs);
                last = rssMib();
                double s = (System.nanoTime() - t0) / 1e9, back = filled - last;
                if (Double.isNaN(half) && back >= added / 2) {
                    half = s;
                }
                if (Double.isNaN(ninety) && back >= added * 0.9) {
                    ninety = s;
                }
                System.out.printf("  +%5.1f s  VmRSS %.0f MiB  reported %d MiB%n", s, last, balloon.reportedBytes() >> 20);
                if (!Double.isNaN(ninety) && s > ninety + 5) {
                    break;
                }
            }
            double returnedPct = added > 0 ? 100 * (filled - last) / added : Double.NaN;
            System.out.printf("RESULT balloon_rss mib=%d idle_mib=%.0f filled_mib=%.0f final_mib=%.0f returned_pct=%.0f "
                            + "half_s=%.1f ninety_s=%.1f reported_mib=%d rejected=%d%n", mib, idle, filled, last, returnedPct,
                    half, ninety, balloon.reportedBytes() >> 20, balloon.rejected());
            vm.kill();
            StopReason r = vm.waitForStop(Duration.ofSeconds(30)).orElse(null);
            System.out.println("stopped: " + r);
        }
        System.exit(0);
    }
}
