package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.vmm.builder.MmioPlacement;
import dev.jkrun.vmm.builder.X86_64Platform;
import dev.jkrun.devices.block.ImageFormat;
import dev.jkrun.guests.TestGuests;
import dev.jkrun.kvm.testing.KvmAvailable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Interrupt lines shared between virtio devices, on real KVM: the irqshare guest drives every disk of the VM at once
 * (four one-sector reads in flight on each), takes a disk's completions only after an interrupt showed its
 * InterruptStatus bit, and fails naming the disk when one stalls (a lost interrupt, or one raised on another line).
 * Each disk holds its own pattern, so a completion from the wrong disk fails too. The guest also checks the MP table:
 * a line of two or more devices level-triggered, a line of one edge-triggered.
 */
class SharedIrqGuestTest {
    @BeforeAll
    static void kvm() { KvmAvailable.assumeKvm(); }

    /** 64 sectors a disk: small images, random sectors over all of them. */
    private static final long SECTORS = 64;

    @TempDir
    Path dir;

    /** The most devices a VM takes: 3 or 4 disks on every IOAPIC pin 5–23, each line level-triggered. */
    @Test
    void sixtyFourDisksOnNineteenSharedLines() throws Exception {
        GuestRun r = run(64, 48);
        assertLines(r, 64);
        assertTrue(r.lines().contains("IRQSHARE ok 64 3072"), r.output());
        assertEquals(19, r.lines().stream().filter(l -> l.matches("LATE \\d+ disk \\d+ ok.*")).count(), r.output());
    }

    /** 21 disks: pins 5 and 6 carry two each (level), pins 7–23 one (edge): both kinds of line in one VM. */
    @Test
    void sharedAndOwnLinesSideBySide() throws Exception {
        GuestRun r = run(21, 128);
        assertLines(r, 21);
        assertTrue(r.lines().contains("LINE 5 devices 2 level"), r.output());
        assertTrue(r.lines().contains("LINE 7 devices 1 edge"), r.output());
        assertTrue(r.lines().contains("LINE 23 devices 1 edge"), r.output());
        assertTrue(r.lines().contains("IRQSHARE ok 21 2688"), r.output());
        assertEquals(19, r.lines().stream().filter(l -> l.matches("LATE \\d+ disk \\d+ ok.*")).count(), r.output());
    }

    /**
     * The same two kinds of line with jkrun's IOAPIC (split irqchip): own lines reach the guest through the irqfds'
     * MSI routes, shared lines through the IOAPIC's level logic (Remote IRR, delivery again at the EOI exit while the
     * line is high). The LATE checks are the EOI path: a completion raised before the EOI must come back.
     */
    @Test
    void splitIrqchipSharedAndOwnLines() throws Exception {
        GuestRun r = run(21, 128, true);
        assertLines(r, 21);
        assertTrue(r.lines().contains("IRQSHARE ok 21 2688"), r.output());
        assertEquals(19, r.lines().stream().filter(l -> l.matches("LATE \\d+ disk \\d+ ok.*")).count(), r.output());
    }

    @Test
    void splitIrqchipSixtyFourDisks() throws Exception {
        GuestRun r = run(64, 48, true);
        assertTrue(r.lines().contains("IRQSHARE ok 64 3072"), r.output());
        assertEquals(19, r.lines().stream().filter(l -> l.matches("LATE \\d+ disk \\d+ ok.*")).count(), r.output());
    }

    private GuestRun run(int disks, int reads) throws Exception { return run(disks, reads, false); }

    private GuestRun run(int disks, int reads, boolean split) throws Exception {
        List<DiskConfig> list = new ArrayList<>();
        for (int k = 0; k < disks; k++) {
            Path img = dir.resolve("disk" + k + ".raw");
            Files.write(img, VirtioBlockGuestTest.patternImage(k + 1, SECTORS * 512));
            list.add(DiskConfig.of("disk" + k, img, true, ImageFormat.RAW));
        }
        String cmdline = "jkrun.test.timeout_ms=20000 jkrun.irqshare.qd=4 jkrun.irqshare.reads=" + reads;
        VmConfig config = new VmConfig(MachineConfig.of(1, 64).withSplitIrqchip(split), KernelConfig.elf(TestGuests.path("irqshare"), cmdline),
                new ConsoleConfig.None(), List.of(), list, Optional.empty(), true);
        GuestRun r = GuestRun.run(config, Duration.ofSeconds(180));
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), r.output() + r.reason());
        assertTrue(r.lines().contains("CHECK mp_trigger ok"), r.output());
        assertTrue(r.lines().stream().noneMatch(l -> l.contains("FAIL") || l.startsWith("STALL") || l.startsWith("BAD")),
                r.output());
        for (int k = 0; k < disks; k++) {
            String prefix = "DISK " + k + " irq " + MmioPlacement.place(X86_64Platform.DEVICES, disks).get(k).irq() + " reads " + reads + " irqs ";
            assertTrue(r.lines().stream().anyMatch(l -> l.startsWith(prefix) && !l.endsWith(" irqs 0")),
                    prefix + "...: " + r.output());
        }
        return r;
    }

    /** One LINE per pin in use with the placement's device count, level exactly where more than one shares it. */
    private static void assertLines(GuestRun r, int disks) {
        Map<Integer, Integer> perPin = new TreeMap<>();
        MmioPlacement.place(X86_64Platform.DEVICES, disks).forEach(s -> perPin.merge(s.irq(), 1, Integer::sum));
        for (Map.Entry<Integer, Integer> e : perPin.entrySet()) {
            String line = "LINE " + e.getKey() + " devices " + e.getValue() + (e.getValue() > 1 ? " level" : " edge");
            assertTrue(r.lines().contains(line), line + ": " + r.output());
        }
        assertEquals(perPin.size(), r.lines().stream().filter(l -> l.startsWith("LINE ")).count(), r.output());
    }
}
