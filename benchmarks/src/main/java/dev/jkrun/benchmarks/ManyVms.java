package dev.jkrun.benchmarks;

import dev.jkrun.guests.TestGuests;
import dev.jkrun.vmm.ConsoleConfig;
import dev.jkrun.vmm.KernelConfig;
import dev.jkrun.vmm.MachineConfig;
import dev.jkrun.vmm.VirtualMachine;
import dev.jkrun.vmm.VmConfig;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Many VMs in one JVM (the embedding issue's benchmarks):
 * <ol>
 *   <li>extra resident memory per additional idle VM — {@code k} VMs of {@code mem} MiB running the {@code halt}
 *       guest (halted in KVM, interrupts off) for k in {@code counts}: (RSS with k VMs − RSS before) / k, against
 *       the baseline of one C VMM process (cvmm) holding the same idle guest;</li>
 *   <li>VMs started per second, sequentially in a warm JVM: create → start → the {@code exit_status} guest's exit →
 *       close, {@code n} times, against cvmm's in-process create → run → destroy cycles ({@code --repeat n}).</li>
 * </ol>
 * Arguments ({@code key=value}): {@code counts} (1,10,50), {@code mem} (128), {@code n} (30). Prints; asserts nothing.
 */
public final class ManyVms {
    private ManyVms() {}

    public static void main(String[] args) throws Exception {
        Bench.Opts o = new Bench.Opts(args);
        String counts = o.string("counts", "1,10,50");
        int mem = o.integer("mem", 128), n = o.integer("n", 30);
        PrintStream out = System.out;
        Path halt = TestGuests.path("halt");

        out.printf("== ManyVms: extra RSS per idle VM (%d MiB, 1 vCPU, halt guest) and sequential VMs/s%n", mem);
        Bench.runJava(TestGuests.path("exit_status"), "jkrun.test.status=0", 64); // warm up the JVM
        double cRssMib = cvmmIdleRssMib(halt, mem);
        Bench.line(out, "", "VMs", "RSS MiB", "MiB/VM", "vs cvmm");
        Bench.line(out, "cvmm process holding one idle VM", "1", Bench.fmt(cRssMib), Bench.fmt(cRssMib), "1.00");
        StringBuilder result = new StringBuilder("RESULT many_vms c_rss_mib=" + Bench.fmt(cRssMib));
        for (String c : counts.split(",")) {
            int k = Integer.parseInt(c.trim());
            double[] r = idleRss(halt, mem, k);
            double perVm = (r[1] - r[0]) / k;
            Bench.line(out, "jkrun, " + k + " idle VM(s) in one JVM", String.valueOf(k), Bench.fmt(r[1]), Bench.fmt(perVm),
                    Bench.fmt(perVm / cRssMib));
            result.append(" extra_mib_per_vm_").append(k).append('=').append(Bench.fmt(perVm));
        }

        Path exit = TestGuests.path("exit_status");
        List<Double> cycles = new ArrayList<>();
        List<String> repeat = List.of(Bench.cvmm().toString(), "--mem", "64", "--cmdline", "jkrun.test.status=0",
                "--repeat", String.valueOf(n), exit.toString());
        for (String line : Bench.runProcess(repeat, Map.of()).stderr().split("\n")) {
            if (line.startsWith("cycle_us ")) {
                cycles.add(Double.parseDouble(line.substring(9).trim()));
            }
        }
        double cPerSec = cycles.size() / (cycles.stream().mapToDouble(Double::doubleValue).sum() / 1e6);
        long t0 = System.nanoTime();
        for (int i = 0; i < n; i++) {
            Bench.runJava(exit, "jkrun.test.status=0", 64);
        }
        double jPerSec = n / ((System.nanoTime() - t0) / 1e9);
        Bench.line(out, "", "VMs/s", "", "", "jkrun/cvmm");
        Bench.line(out, "cvmm, in-process cycles (--repeat " + n + ")", Bench.fmt(cPerSec), "", "", "1.00");
        Bench.line(out, "jkrun, warm JVM, create..close x" + n, Bench.fmt(jPerSec), "", "", Bench.fmt(jPerSec / cPerSec));
        result.append(" java_vms_per_s=").append(Bench.fmt(jPerSec)).append(" c_vms_per_s=").append(Bench.fmt(cPerSec))
                .append(" ratio_vms_per_s=").append(Bench.fmt(jPerSec / cPerSec));
        out.println(result);
        out.flush();
        System.exit(0);
    }

    /** {RSS before, RSS with k idle VMs} in MiB; the VMs are closed again before returning. */
    private static double[] idleRss(Path halt, int mem, int k) throws Exception {
        settle();
        double before = rssMib(Path.of("/proc/self/status"));
        List<VirtualMachine> vms = new ArrayList<>();
        try {
            for (int i = 0; i < k; i++) {
                VmConfig config = new VmConfig(MachineConfig.of(1, mem), KernelConfig.elf(halt, ""), new ConsoleConfig.None(), true);
                VirtualMachine vm = VirtualMachine.create(config, System.err, null);
                vms.add(vm);
                vm.start();
            }
            for (VirtualMachine vm : vms) {
                long deadline = System.nanoTime() + 60_000_000_000L;
                while (!vm.debugOutput().contains("HALT") && System.nanoTime() < deadline) {
                    Thread.sleep(5);
                }
                if (!vm.debugOutput().contains("HALT")) {
                    throw new IllegalStateException("an idle VM never reached its halt: " + vm.debugOutput());
                }
            }
            settle();
            return new double[] {before, rssMib(Path.of("/proc/self/status"))};
        } finally {
            vms.forEach(VirtualMachine::close);
        }
    }

    /** RSS of a cvmm process once its halt guest is idle. */
    private static double cvmmIdleRssMib(Path halt, int mem) throws Exception {
        Process p = new ProcessBuilder(Bench.cvmm().toString(), "--mem", String.valueOf(mem), halt.toString())
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        try {
            Thread.sleep(1500);
            if (!p.isAlive()) {
                throw new IllegalStateException("cvmm with the halt guest exited with " + p.exitValue());
            }
            return rssMib(Path.of("/proc", String.valueOf(p.pid()), "status"));
        } finally {
            p.destroyForcibly();
            p.waitFor();
        }
    }

    private static void settle() throws InterruptedException {
        System.gc();
        Thread.sleep(300);
    }

    private static double rssMib(Path status) throws IOException {
        for (String line : Files.readAllLines(status)) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024.0;
            }
        }
        throw new IllegalStateException("no VmRSS in " + status);
    }
}
