package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.kvm.testing.KvmAvailable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * krun_set_firmware's boot on real KVM: a firmware image of a few real-mode instructions, placed so that it ends at
 * 4 GiB, starts at the reset vector with the vCPU in KVM's reset state (CS base 0xFFFF_0000, IP 0xFFF0). It prints
 * the image's first byte (read through CS, so it proves where the image lies) and 'W' on COM1 (jkrun's debug port when
 * no serial console is configured), then resets through the i8042, which jkrun reports as REBOOT. Also the other
 * payload that is no ELF: a RAW kernel at 2 GiB.
 */
class FirmwareGuestTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void kvm() { KvmAvailable.assumeKvm(); }

    /** An image of {@code size} bytes (at most 64 KiB, a multiple of 256) whose first byte is {@code marker}. */
    static byte[] firmware(int size, char marker) {
        byte[] fw = new byte[size];
        fw[0] = (byte) marker;
        int markerIp = 0x10000 - size; // CS covers the top 64 KiB below 4 GiB: offset 0 of the image
        byte[] code = {
            (byte) 0xBA, (byte) 0xF8, 0x03,                                   // mov dx, 0x3f8
            0x2E, (byte) 0xA0, (byte) markerIp, (byte) (markerIp >> 8),       // mov al, cs:[markerIp]
            (byte) 0xEE,                                                      // out dx, al
            (byte) 0xB0, 'W', (byte) 0xEE,                                    // mov al, 'W'; out dx, al
            (byte) 0xB0, 0x0A, (byte) 0xEE,                                   // mov al, '\n'; out dx, al
            (byte) 0xB0, (byte) 0xFE, (byte) 0xE6, 0x64,                      // i8042 pulse reset line
            (byte) 0xF4, (byte) 0xEB, (byte) 0xFD,                            // hlt; jmp hlt
        };
        System.arraycopy(code, 0, fw, size - 0x100, code.length);             // IP 0xFF00
        int rel = 0xFF00 - 0xFFF3;
        fw[size - 0x10] = (byte) 0xE9;                                        // reset vector, IP 0xFFF0: jmp near 0xFF00
        fw[size - 0x0F] = (byte) rel;
        fw[size - 0x0E] = (byte) (rel >> 8);
        return fw;
    }

    private GuestRun boot(byte[] image, int cpus) throws Exception {
        Path fw = Files.write(dir.resolve("fw-" + image.length + ".bin"), image);
        VmConfig config = VmBuilder.create().machine(m -> m.vcpus(cpus).memoryMib(64)).kernel(k -> k.firmware(fw))
                .console(c -> c.disableImplicit()).rng(false).balloon(false).build();
        return GuestRun.run(config, Duration.ofSeconds(60));
    }

    @Test
    void aFirmwareRunsFromTheResetVectorWithItsImageEndingAt4GiB() throws Exception {
        GuestRun small = boot(firmware(4096, 'I'), 1);
        assertEquals(StopReason.Kind.REBOOT, small.reason().kind(), small.reason() + " " + small.output());
        assertTrue(small.lines().contains("IW"), small.output());
        GuestRun large = boot(firmware(64 << 10, 'J'), 2); // the AP waits for a SIPI that never comes
        assertEquals(StopReason.Kind.REBOOT, large.reason().kind(), large.reason() + " " + large.output());
        assertTrue(large.lines().contains("JW"), large.output());
    }

    /**
     * KRUN_KERNEL_FORMAT_RAW: the file's bytes at 0x8000_0000, entered there in 64-bit mode. The image reports bits
     * 24-31 of its own address (lea rip) and the low byte of RSI (the zero page, 0x7000) on the test exit port:
     * 0x80 | 0x00, i.e. exit status 128 proves where it ran; a second byte must differ from an ELF's entry.
     */
    @Test
    void aRawKernelRunsAt2GiB() throws Exception {
        byte[] raw = {
            0x48, (byte) 0x8D, 0x05, 0, 0, 0, 0,          // lea rax, [rip]
            0x48, (byte) 0xC1, (byte) 0xE8, 0x18,         // shr rax, 24: 0x80 when the image is at 0x8000_0000
            0x48, 0x01, (byte) 0xF0,                      // add rax, rsi: + 0x7000 (the zero page)
            0x48, 0x2D, 0x00, 0x70, 0x00, 0x00,           // sub rax, 0x7000
            0x66, (byte) 0xBA, (byte) 0xF4, 0x00,         // mov dx, 0xf4 (the test exit port)
            (byte) 0xEF,                                  // out dx, eax
            (byte) 0xF4, (byte) 0xEB, (byte) 0xFD,        // hlt; jmp hlt
        };
        Path p = Files.write(dir.resolve("raw.bin"), raw);
        KernelConfig k = new KernelConfig(java.util.Optional.of(p), java.util.Optional.empty(), java.util.Optional.of(""),
                java.util.List.of(), java.util.Optional.empty(), java.util.Optional.empty(), dev.jkrun.loader.KernelFormat.RAW);
        GuestRun r = GuestRun.run(new VmConfig(MachineConfig.of(1, 32), k, new ConsoleConfig.None(), true), Duration.ofSeconds(60));
        assertEquals(java.util.OptionalInt.of(128), r.reason().exitStatus(), r.reason() + " " + r.output());
    }

    @Test
    void firmwareRulesNameTheirField() throws Exception {
        Path big = Files.write(dir.resolve("big.bin"), new byte[(int) KernelConfig.MAX_FIRMWARE + 1]);
        Path empty = Files.write(dir.resolve("empty.bin"), new byte[0]);
        Path ok = Files.write(dir.resolve("ok.bin"), firmware(4096, 'I'));
        for (Path p : new Path[] {big, empty, dir.resolve("missing.bin")}) {
            ConfigurationException e = assertThrows(ConfigurationException.class,
                    () -> VmBuilder.create().kernel(k -> k.firmware(p)).build(), p.toString());
            assertEquals("kernel.firmware", e.field(), e.getMessage());
        }
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> VmBuilder.create().kernel(k -> k.firmware(ok).kernelPath(ok)).build());
        assertEquals("kernel.firmware", e.field(), e.getMessage());
    }
}
