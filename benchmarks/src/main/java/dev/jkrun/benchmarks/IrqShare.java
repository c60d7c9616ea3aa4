package dev.jkrun.benchmarks;

import dev.jkrun.vmm.builder.MmioPlacement;
import dev.jkrun.vmm.builder.X86_64Platform;
import dev.jkrun.devices.block.ImageFormat;
import dev.jkrun.guests.TestGuests;
import dev.jkrun.vmm.ConsoleConfig;
import dev.jkrun.vmm.DiskConfig;
import dev.jkrun.vmm.KernelConfig;
import dev.jkrun.vmm.MachineConfig;
import dev.jkrun.vmm.StopReason;
import dev.jkrun.vmm.VmConfig;
import java.io.IOException;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What sharing an interrupt line costs: in one VM of 20 virtio-blk disks (so that disks 0 and 19 share IOAPIC pin 5,
 * level-triggered and driven through KVM_IRQ_LINE, while disks 1 and 2 have pins 6 and 7 to themselves, edge-triggered
 * through irqfds), the irqshare guest in bench mode keeps two disks busy at once with 4 KiB random reads, {@code qd}
 * in flight on each, alternating phases on the shared pair and on the pair with lines of their own. Phases are timed
 * on the host from the guest's PHASE lines; the ratio shared/own of the time per read is the price of sharing (the
 * guest's interrupt handler reads and acknowledges both disks' InterruptStatus on every interrupt of the shared
 * line; the VMM drives the line on each change of either status).
 *
 * <p>Arguments ({@code key=value}): {@code reads} (4000 a disk and phase), {@code qd} (4, 1..4), {@code rounds} (5:
 * own and shared phases alternating, medians reported), {@code mib} (64: each image, sparse), {@code dir}
 * (java.io.tmpdir), {@code timeout_s} (600). Prints the table; asserts nothing.
 */
public final class IrqShare {
    private IrqShare() {}

    static final int DISKS = 20;

    public static void main(String[] args) throws Exception {
        Bench.Opts o = new Bench.Opts(args);
        int reads = o.integer("reads", 4000), qd = o.integer("qd", 4), rounds = o.integer("rounds", 5);
        int mib = o.integer("mib", 64), timeoutS = o.integer("timeout_s", 600);
        Path dir = Files.createTempDirectory(Path.of(o.string("dir", System.getProperty("java.io.tmpdir"))), "jkrun-irqshare");
        PrintStream out = System.out;
        List<MmioPlacement.Slot> slots = MmioPlacement.place(X86_64Platform.DEVICES, DISKS);
        if (slots.get(0).irq() != slots.get(19).irq() || !slots.get(0).shared() || slots.get(1).shared() || slots.get(2).shared()) {
            throw new IllegalStateException("placement changed: " + slots);
        }
        out.printf("== IrqShare: two virtio-blk disks busy at once, 4 KiB random reads, %d in flight on each (1 vCPU, %d disks)%n",
                qd, DISKS);
        out.printf("   shared: disks 0+19 on pin %d (level, KVM_IRQ_LINE); own: disks 1+2 on pins %d and %d (edge, irqfd)%n",
                slots.get(0).irq(), slots.get(1).irq(), slots.get(2).irq());
        try {
            List<DiskConfig> disks = new ArrayList<>();
            for (int k = 0; k < DISKS; k++) {
                Path img = dir.resolve("disk" + k + ".raw");
                try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
                    f.setLength((long) mib << 20);
                }
                disks.add(DiskConfig.of("d" + k, img, true, ImageFormat.RAW));
            }
            StringBuilder spec = new StringBuilder("warm:1+2,warm2:0+19");
            for (int r = 0; r < rounds; r++) {
                spec.append(",own").append(r).append(":1+2,shared").append(r).append(":0+19");
            }
            String cmdline = "jkrun.test.timeout_ms=60000 jkrun.irqshare.late=0 jkrun.irqshare.bs=4096 jkrun.irqshare.qd=" + qd
                    + " jkrun.irqshare.reads=" + reads + " jkrun.irqshare.bench=" + spec;
            VmConfig config = new VmConfig(MachineConfig.of(1, 64), KernelConfig.elf(TestGuests.path("irqshare"), cmdline),
                    new ConsoleConfig.None(), List.of(), disks, Optional.empty(), true);
            Bench.TimedRun run = Bench.runTimed(config, timeoutS, "irqshare bench");
            List<String> text = run.lines().stream().map(Bench.Timed::line).toList();
            StopReason st = run.reason();
            if (st.kind() != StopReason.Kind.SHUTDOWN || st.exitStatus().orElse(-1) != 0 || !text.contains("BENCH ok")) {
                throw new IllegalStateException("irqshare bench failed: " + st + "\n" + String.join("\n", text));
            }
            Map<String, Long> starts = new HashMap<>();
            Map<String, Double> usPerRead = new HashMap<>();
            Map<String, Double> irqsPerRead = new HashMap<>();
            for (Bench.Timed t : run.lines()) {
                String[] w = t.line().split(" ");
                if (w.length == 3 && w[0].equals("PHASE") && w[2].equals("start")) {
                    starts.put(w[1], t.nanos());
                } else if (w.length == 4 && w[0].equals("PHASE") && w[2].equals("done")) {
                    usPerRead.put(w[1], (t.nanos() - starts.get(w[1])) / 1e3 / Long.parseLong(w[3]));
                } else if (w.length == 6 && w[0].equals("STATS")) {
                    irqsPerRead.put(w[1], Long.parseLong(w[3]) / (2.0 * reads));
                }
            }
            List<Double> own = new ArrayList<>(), shared = new ArrayList<>(), ownIrq = new ArrayList<>(), sharedIrq = new ArrayList<>();
            for (int r = 0; r < rounds; r++) {
                own.add(usPerRead.get("own" + r));
                shared.add(usPerRead.get("shared" + r));
                ownIrq.add(irqsPerRead.get("own" + r));
                sharedIrq.add(irqsPerRead.get("shared" + r));
            }
            out.printf("   %-28s %12s %12s %12s %12s%n", "", "us/read med", "min", "max", "irqs/read");
            out.printf("   %-28s %12.2f %12.2f %12.2f %12.3f%n", "own lines (edge, irqfd)", Bench.median(own), Bench.min(own),
                    Bench.max(own), Bench.median(ownIrq));
            out.printf("   %-28s %12.2f %12.2f %12.2f %12.3f%n", "shared line (level)", Bench.median(shared), Bench.min(shared),
                    Bench.max(shared), Bench.median(sharedIrq));
            out.printf("   Ratio shared/own (time per read, medians of %d rounds of %d reads a disk): %.2f%n", rounds, reads,
                    Bench.median(shared) / Bench.median(own));
        } finally {
            try (var s = Files.list(dir)) {
                for (Path p : s.toList()) {
                    Files.deleteIfExists(p);
                }
            } catch (IOException ignored) {
                // best effort
            }
            Files.deleteIfExists(dir);
        }
    }
}
