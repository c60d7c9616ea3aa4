package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.kvm.HostVirtualization;
import dev.jkrun.kvm.testing.KvmAvailable;
import java.util.OptionalInt;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The boot path, checked from inside by test guests running on real KVM (tier 2). */
class TestGuestBootTest {
    @BeforeAll
    static void kvm() { KvmAvailable.assumeKvm(); }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 4})
    void bootStructuresAsPromised(int cpus) throws Exception {
        long mib = 256;
        GuestRun r = GuestRun.run("boot_check", cpus, mib, "jkrun.test.ram=" + (mib << 20) + " jkrun.test.cpus=" + cpus + " jkrun.test.marker=xyz");
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), r.output() + r.reason());
        assertTrue(r.output().contains("BOOT_CHECK ok"), r.output());
        for (String check : new String[] {"cpu_state", "boot_pagetables", "zero_page", "e820", "cmdline_marker", "mptable", "cpuid"}) {
            assertTrue(r.output().contains("CHECK " + check + " ok"), check + " in:\n" + r.output());
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 4})
    void everyVcpuReportsItsApicId(int cpus) throws Exception {
        GuestRun r = GuestRun.run("smp", cpus, 64, "");
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), r.output() + r.reason());
        for (int id = 0; id < cpus; id++) {
            assertTrue(r.lines().contains("APIC " + id), "APIC " + id + " in:\n" + r.output());
        }
        assertTrue(r.lines().contains("CPUS " + cpus), r.output());
    }

    @Test
    void eightGibVisibleAndWritableAtTheTop() throws Exception {
        long mib = 8192;
        GuestRun r = GuestRun.run("boot_check", 1, mib, "jkrun.test.ram=" + (mib << 20) + " jkrun.test.cpus=1 jkrun.test.marker=xyz");
        assertTrue(r.output().contains("BOOT_CHECK ok"), r.output());
        GuestRun top = GuestRun.run("memtop", 1, mib, "");
        assertEquals(OptionalInt.of(0), top.reason().exitStatus(), top.output());
        // 8 GiB: [0, 0xD0000000) + [4 GiB, 4 GiB + 8 GiB - 3.25 GiB): the last byte is 0x22fffffff.
        assertTrue(top.lines().contains("TOP 0x22fffffff"), top.output());
        assertTrue(top.output().contains("MEM 0x22ffff000 ok"), top.output());
    }

    @Test
    void interruptsFromTheInKernelIrqchip() throws Exception {
        GuestRun r = GuestRun.run("irq", 1, 64, "");
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), r.output());
        assertTrue(r.output().contains("CHECK lapic_timer ok"), r.output());
        assertTrue(r.output().contains("CHECK pit_ioapic ok"), r.output());
    }

    @Test
    void exitStatusComesBack() throws Exception {
        GuestRun r = GuestRun.run("exit_status", 1, 32, "jkrun.test.status=42");
        assertEquals(StopReason.Kind.SHUTDOWN, r.reason().kind());
        assertEquals(OptionalInt.of(42), r.reason().exitStatus());
    }

    @Test
    void tripleFaultIsACrash() throws Exception {
        GuestRun r = GuestRun.run("triple_fault", 1, 32, "");
        assertEquals(StopReason.Kind.CRASH, r.reason().kind(), r.reason().toString());
        assertTrue(r.reason().detail().contains("triple fault"), r.reason().detail());
        assertTrue(r.reason().detail().contains("RIP 0x"), r.reason().detail());
    }

    @Test
    void instructionTheHostCannotRunIsReportedWithItsBytes() throws Exception {
        GuestRun r = GuestRun.run("bad_insn", 1, 32, "");
        if (dev.jkrun.kvm.Kvm.hostVirtualization() == HostVirtualization.KVM_PVM) {
            assertEquals(StopReason.Kind.CRASH, r.reason().kind(), r.reason().toString());
            String d = r.reason().detail();
            assertTrue(d.contains("KVM internal error (suberror 1: emulation failure)"), d);
            assertTrue(d.contains("instruction bytes f0 48 0f c7"), d);
            assertTrue(d.contains("kvm-pvm cannot emulate this; stock kernels need hardware virtualization"), d);
        } else {
            assertEquals(OptionalInt.of(0), r.reason().exitStatus(), r.output());
            assertTrue(r.output().contains("bad_insn survived"), r.output());
        }
    }
}
