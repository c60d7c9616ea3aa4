package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.guests.TestGuests;
import dev.jkrun.kvm.testing.KvmAvailable;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.OptionalInt;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * virtio-console through real KVM: the console test guest negotiates over virtio-mmio, writes through the tx
 * queue, waits (sti; hlt) for host input on the rx queue — delivered by irqfd → IOAPIC → LAPIC → its IDT — and
 * echoes it back uppercased.
 */
class ConsoleDeviceTest {
    @BeforeAll
    static void kvm() { KvmAvailable.assumeKvm(); }

    private static final int TIMEOUT_MS = 3000;

    private static VmConfig config(ConsoleConfig console) {
        return new VmConfig(MachineConfig.of(1, 64), KernelConfig.elf(TestGuests.path("console"), "jkrun.test.timeout_ms=" + TIMEOUT_MS + ""), console, true);
    }

    @Test
    void roundTripWithInterrupts() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ConsoleConfig console = new ConsoleConfig.Streams(new ByteArrayInputStream("hello host\n".getBytes(StandardCharsets.US_ASCII)), out);
        GuestRun r = GuestRun.run(config(console), Duration.ofSeconds(60));
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), r.output() + r.reason());
        assertTrue(r.output().contains("VIRTIO 0xd0000000 irq 5"), r.output());
        assertTrue(r.output().contains("OK tx"), r.output());
        assertTrue(r.output().contains("RX hello host"), r.output());
        assertTrue(r.output().lines().anyMatch(l -> l.startsWith("IRQS ") && !l.equals("IRQS 0")), "interrupts taken: " + r.output());
        assertEquals("hello from guest\nHELLO HOST\n", out.toString(StandardCharsets.US_ASCII));
    }

    @Test
    void outputToFile(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("console.log");
        GuestRun r = GuestRun.run(config(new ConsoleConfig.ToFile(file)).withTestExitPort(true), Duration.ofSeconds(60));
        // No input ever arrives: the guest times out waiting for rx after its tx went through.
        assertTrue(r.output().contains("OK tx"), r.output());
        assertEquals("hello from guest\n", Files.readString(file));
    }

    @Test
    void aResetAfterAKernelPanicLineIsACrashWithThePanicMessage() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        VmConfig c = new VmConfig(MachineConfig.of(1, 64), KernelConfig.elf(TestGuests.path("console"), "jkrun.test.panic"),
                new ConsoleConfig.Streams(new ByteArrayInputStream(new byte[0]), out), false);
        GuestRun r = GuestRun.run(c, Duration.ofSeconds(60));
        assertEquals(StopReason.Kind.CRASH, r.reason().kind(), r.reason() + r.output());
        assertEquals("kernel panic: jkrun test panic", r.reason().detail());
        assertTrue(out.toString(StandardCharsets.US_ASCII).contains("Kernel panic - not syncing: jkrun test panic"));
    }

    @Test
    void aResetWithoutAPanicIsAReboot() throws Exception {
        VmConfig c = new VmConfig(MachineConfig.of(1, 64), KernelConfig.elf(TestGuests.path("console"), "jkrun.test.reset"),
                new ConsoleConfig.Streams(new ByteArrayInputStream(new byte[0]), new ByteArrayOutputStream()), false);
        GuestRun r = GuestRun.run(c, Duration.ofSeconds(60));
        assertEquals(StopReason.Kind.REBOOT, r.reason().kind(), r.reason() + r.output());
    }
}
