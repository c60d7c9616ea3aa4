package dev.jkrun.kvm;

import dev.jkrun.hypervisor.VcpuExit;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The pure parts: exit decoding helpers, host detection, the availability rule, cap names. */
class UnitTest {

    @Test
    void instructionBytesDecodeFromEmulationFailureData() {
        // flags = INSTRUCTION_BYTES; insn_size = 3; bytes 0f 0b 90 (ud2; nop) packed little-endian after it.
        long word1 = 0x03L | 0x0FL << 8 | 0x0BL << 16 | 0x90L << 24;
        var exit = new VcpuExit.InternalError(VcpuExit.InternalError.EMULATION, new long[] {1, word1, 0, 0x55});
        assertArrayEquals(new byte[] {0x0F, 0x0B, (byte) 0x90}, exit.instructionBytes());
        assertTrue(exit.toString().contains("instruction=0f0b90"), exit.toString());
    }

    @Test
    void instructionBytesAreEmptyWithoutTheFlagOrForOtherSuberrors() {
        assertEquals(0, new VcpuExit.InternalError(1, new long[] {0, 0xCC01, 0}).instructionBytes().length);
        assertEquals(0, new VcpuExit.InternalError(3, new long[] {1, 0xCC01, 0}).instructionBytes().length);
        assertEquals(0, new VcpuExit.InternalError(1, new long[0]).instructionBytes().length);
        // An insn_size beyond 15 is clamped rather than trusted.
        assertEquals(15, new VcpuExit.InternalError(1, new long[] {1, 0xFF, 0}).instructionBytes().length);
    }

    @Test
    void hostClassification() {
        assertEquals(HostVirtualization.KVM_PVM, HostVirtualization.classify(Set.of("vmx"), true));
        assertEquals(HostVirtualization.HARDWARE_VMX, HostVirtualization.classify(Set.of("fpu", "vmx"), false));
        assertEquals(HostVirtualization.HARDWARE_SVM, HostVirtualization.classify(Set.of("svm"), false));
        assertEquals(HostVirtualization.NONE, HostVirtualization.classify(Set.of("hypervisor"), false));
    }

    @Test
    void hostDetectionReadsCpuinfoAndModules(@TempDir Path dir) throws Exception {
        Path cpuinfo = dir.resolve("cpuinfo");
        Files.writeString(cpuinfo, "processor\t: 0\nflags\t\t: fpu vme svm lm\n\nprocessor\t: 1\n");
        Path modules = Files.createDirectory(dir.resolve("module"));
        assertEquals(HostVirtualization.HARDWARE_SVM, HostVirtualization.detect(cpuinfo, modules));
        Files.createDirectory(modules.resolve("kvm_pvm"));
        assertEquals(HostVirtualization.KVM_PVM, HostVirtualization.detect(cpuinfo, modules));
        assertEquals(HostVirtualization.NONE, HostVirtualization.detect(dir.resolve("none"), dir.resolve("none")));
    }

    @Test
    void availabilityRule() {
        assertNull(KvmAvailability.unavailableReason(true, "true"));
        assertNull(KvmAvailability.unavailableReason(true, null));
        assertTrue(KvmAvailability.unavailableReason(false, null).startsWith("/dev/kvm is missing"));
        assertTrue(KvmAvailability.unavailableReason(false, "false").startsWith("/dev/kvm is missing"));
        var e = assertThrows(IllegalStateException.class, () -> KvmAvailability.unavailableReason(false, "true"));
        assertEquals("CI=true but /dev/kvm is missing", e.getMessage());
    }

    @Test
    void capNames() {
        assertEquals("KVM_CAP_IRQFD", KvmCap.name(KvmCap.IRQFD));
        assertEquals("KVM_CAP 9999", KvmCap.name(9999));
    }

    @Test
    void ioctlEncoding() {
        // _IOWR(KVMIO, 0x05, struct kvm_cpuid2) with an 8-byte header
        assertEquals(0xC008AE05L, KvmIoctls.iowr(0x05, 8));
        assertEquals(0xAE03L, KvmIoctls.io(0x03));
    }
}
