package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.guests.TestGuests;
import dev.jkrun.devices.block.ImageFormat;
import dev.jkrun.kvm.testing.KvmAvailable;
import java.util.List;
import java.util.OptionalInt;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The aarch64 platform on real KVM with the aarch64 test guests (guests/aarch64): the device tree the guest reads
 * back, PSCI CPU_ON and SYSTEM_OFF/RESET, the test exit device, a data abort without syndrome as a stop reason. Runs
 * on an aarch64 host only: here, inside the nested aarch64 host ({@code tests/aarch64.sh}).
 */
class Aarch64GuestTest {
    @BeforeAll
    static void aarch64() {
        org.junit.jupiter.api.Assumptions.assumeTrue(TestGuests.AARCH64,
                "aarch64 guests need an aarch64 host: ./jkrun-nested --arch aarch64 -- tests/aarch64.sh runs them");
        KvmAvailable.assumeKvm();
    }

    @Test
    void exitStatusFromTheDeviceTreesBootargs() throws Exception {
        GuestRun r = GuestRun.run("exit_status", 1, 64, "jkrun.test.status=42");
        assertEquals(StopReason.Kind.SHUTDOWN, r.reason().kind(), r.reason() + "\n" + r.output());
        assertEquals(OptionalInt.of(42), r.reason().exitStatus(), r.output());
        assertTrue(r.lines().contains("EXIT 42"), r.output());
    }

    @Test
    void theDeviceTreeDescribesTheMachine(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        java.nio.file.Path img = dir.resolve("disk.img");
        java.nio.file.Files.write(img, new byte[4096]);
        VmConfig c = GuestRun.config("boot_check", 2, 128, "a=b jkrun.x=1")
                .withDisks(List.of(DiskConfig.of("d", img, true, ImageFormat.RAW)));
        GuestRun r = GuestRun.run(c, java.time.Duration.ofSeconds(60));
        List<String> lines = r.lines();
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), r.reason() + "\n" + r.output());
        assertTrue(lines.contains("FDT " + Long.toHexString(0x8000_0000L + (128L << 20) - (2 << 20))), r.output());
        assertTrue(lines.contains("MEM 80000000 8000000"), r.output());
        assertTrue(lines.contains("CPU 0") && lines.contains("CPU 1"), r.output());
        assertTrue(lines.contains("BOOTARGS a=b jkrun.x=1"), r.output());
        assertTrue(lines.contains("PSCI hvc 2") || lines.stream().anyMatch(l -> l.startsWith("PSCI hvc 1")), r.output());
        assertTrue(lines.contains("VIRTIO a010000 8"), "the disk on SPI 8 (INTID 40): " + r.output());
        assertTrue(lines.contains("RTC a005000 31"), "the PL031's PrimeCell id: " + r.output());
        assertTrue(lines.contains("EL 1"), r.output());
    }

    @Test
    void secondaryCpusStartWithPsciCpuOn() throws Exception {
        GuestRun r = GuestRun.run("smp", 4, 64, "");
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), r.reason() + "\n" + r.output());
        assertTrue(r.lines().contains("SMP 4 up"), r.output());
    }

    @Test
    void psciSystemOffAndResetStopTheVm() throws Exception {
        GuestRun off = GuestRun.run("psci_off", 1, 64, "");
        assertEquals(StopReason.Kind.SHUTDOWN, off.reason().kind(), off.reason() + "\n" + off.output());
        assertTrue(off.reason().detail().contains("powered off"), off.reason().detail());
        GuestRun reset = GuestRun.run("psci_off", 1, 64, "jkrun.test.reset=1");
        assertEquals(StopReason.Kind.REBOOT, reset.reason().kind(), reset.reason() + "\n" + reset.output());
    }

    @Test
    void aDataAbortWithoutSyndromeIsAStopReasonNamingTheAddress() throws Exception {
        GuestRun r = GuestRun.run("data_abort", 1, 64, "");
        assertEquals(StopReason.Kind.CRASH, r.reason().kind(), r.reason() + "\n" + r.output());
        assertTrue(r.reason().detail().contains("0x50000000"), r.reason().detail());
        assertTrue(r.reason().detail().contains("PC 0x8"), r.reason().detail());
    }

    /** A hostile guest's accesses to every device window, unmapped space and PSCI: the VM answers and runs on. */
    @Test
    void aHostileGuestDoesNotStopTheVmm(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        java.nio.file.Path img = dir.resolve("disk.img");
        java.nio.file.Files.write(img, new byte[1 << 16]);
        VmConfig c = GuestRun.config("hostile", 1, 64, "")
                .withDisks(List.of(DiskConfig.of("d", img, false, ImageFormat.RAW)));
        GuestRun r = GuestRun.run(c, java.time.Duration.ofSeconds(120));
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), r.reason() + "\n" + r.output());
        assertTrue(r.lines().stream().anyMatch(l -> l.startsWith("HOSTILE DONE ")), r.output());
        // and a VM after it in the same JVM is fine
        GuestRun next = GuestRun.run("exit_status", 1, 64, "jkrun.test.status=5");
        assertEquals(OptionalInt.of(5), next.reason().exitStatus(), next.output());
    }

    /** virtio-blk through the device tree: a sector written, flushed and read back in the guest, then on the host. */
    @Test
    void virtioBlockWritesReachTheImage(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        java.nio.file.Path img = dir.resolve("disk.img");
        java.nio.file.Files.write(img, new byte[1 << 20]);
        VmConfig c = GuestRun.config("blk", 1, 64, "jkrun.test.sector=9")
                .withDisks(List.of(DiskConfig.of("d", img, false, ImageFormat.RAW)));
        GuestRun r = GuestRun.run(c, java.time.Duration.ofSeconds(60));
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), r.reason() + "\n" + r.output());
        assertTrue(r.lines().contains("BLK capacity 2048") && r.lines().contains("BLK OK"), r.output());
        byte[] disk = java.nio.file.Files.readAllBytes(img);
        for (int i = 0; i < 512; i++) {
            assertEquals((byte) (i * 7 + 9), disk[9 * 512 + i], "byte " + i + " of sector 9 on the host");
        }
        GuestRun ro = GuestRun.run(GuestRun.config("blk", 1, 64, "jkrun.test.readonly=1")
                .withDisks(List.of(DiskConfig.of("d", img, true, ImageFormat.RAW))), java.time.Duration.ofSeconds(60));
        assertEquals(OptionalInt.of(0), ro.reason().exitStatus(), ro.reason() + "\n" + ro.output());
        assertTrue(ro.lines().contains("BLK RO OK"), ro.output());
    }

    /** virtio-console through the device tree: the guest's line out, the host's line in, echoed uppercased. */
    @Test
    void virtioConsoleBothWays() throws Exception {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        VmConfig c = GuestRun.config("console", 1, 64, "").withConsole(new ConsoleConfig.Streams(
                new java.io.ByteArrayInputStream("hello host\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII)), out));
        GuestRun r = GuestRun.run(c, java.time.Duration.ofSeconds(60));
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), r.reason() + "\n" + r.output());
        assertTrue(r.lines().contains("RX hello host"), r.output());
        assertEquals("hello from guest\nHELLO HOST\n", out.toString(java.nio.charset.StandardCharsets.US_ASCII));
    }

    /** A serial console on aarch64 is an 8250-compatible UART on MMIO, named in the device tree as stdout. */
    @Test
    void aSerialConsoleCarriesTheFirstUartsBytes(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        java.nio.file.Path out = dir.resolve("ttyS0");
        java.nio.file.Files.createFile(out);
        try (dev.jkrun.libc.FileDescriptor fd = dev.jkrun.libc.FileDescriptor.open(out.toString(),
                dev.jkrun.libc.FileDescriptor.O_RDWR | dev.jkrun.libc.FileDescriptor.O_CLOEXEC)) {
            VmConfig c = GuestRun.config("exit_status", 1, 64, "jkrun.test.status=6")
                    .withDevice(new SerialConsoleConfig(-1, fd.raw()));
            GuestRun r = GuestRun.run(c, java.time.Duration.ofSeconds(60));
            assertEquals(OptionalInt.of(6), r.reason().exitStatus(), r.reason() + "\n" + r.output());
        }
        String text = java.nio.file.Files.readString(out);
        assertTrue(text.contains("EXIT 6"), "the UART's output: " + text);
    }
}
