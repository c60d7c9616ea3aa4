package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.guests.TestGuests;
import dev.jkrun.kvm.testing.KvmAvailable;
import dev.jkrun.libc.FileDescriptor;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/**
 * jkrun's IOAPIC (split irqchip) on real KVM, driven by the ioapic guest: the level logic seen from inside (delivered
 * again at each EOI while the line is high, through the LAPIC's EOI exit and through the IOAPIC's EOI register; held
 * back while masked and delivered at the unmask; edges lost while masked), entries that deliver nothing (ExtINT,
 * reserved modes, logical destination 0), then 20000 hostile register accesses, after which the IOAPIC must still
 * work and the VMM still run. The line is COM1's UART (IRQ 4), whose output also carries the guest's report.
 */
class IoApicGuestTest {
    private static final List<String> CHECKS = List.of("version", "readonly", "level_eoi", "masked_level", "masked_in_service", "masked_edge",
            "edge", "eoi_register", "undeliverable", "garbage", "after");

    @BeforeAll
    static void kvm() { KvmAvailable.assumeKvm(); }

    @Test
    void theGuestCannotBreakTheIoapic(@TempDir Path dir) throws Exception {
        Path out = Files.createFile(dir.resolve("com1"));
        StopReason reason;
        try (FileDescriptor outFd = FileDescriptor.open(out.toString(), FileDescriptor.O_WRONLY)) {
            VmConfig config = VmBuilder.create()
                    .machine(m -> m.memoryMib(64).splitIrqchip(true))
                    .kernel(k -> k.kernelPath(TestGuests.path("ioapic")).replaceCmdline("jkrun.test.timeout_ms=5000"))
                    .console(c -> c.disableImplicit().serial(-1, outFd.raw()))
                    .rng(false)
                    .balloon(false)
                    .build()
                    .withTestExitPort(true);
            try (VirtualMachine vm = VirtualMachine.create(config, System.err, null)) {
                vm.start();
                reason = vm.waitForStop(Duration.ofSeconds(120)).orElse(null);
            }
            if (reason == null) {
                throw new AssertionError("guest did not stop: " + Files.readString(out, StandardCharsets.ISO_8859_1));
            }
        }
        String text = Files.readString(out, StandardCharsets.ISO_8859_1);
        System.out.println(text);
        List<String> lines = text.lines().toList();
        List<Executable> checks = new ArrayList<>();
        checks.add(() -> assertEquals(OptionalInt.of(0), reason.exitStatus(), text + reason));
        for (String c : CHECKS) {
            checks.add(() -> assertTrue(lines.contains("CHECK " + c + " ok"), "CHECK " + c + ": " + text));
        }
        checks.add(() -> assertTrue(lines.contains("IOAPIC ok " + CHECKS.size()), text));
        assertAll(checks);
    }
}
