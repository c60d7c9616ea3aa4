package dev.jkrun.hvf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.hvf.testing.FakeHvf;
import dev.jkrun.hypervisor.Arm64Vm;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class HvfVmTest {
    final FakeHvf fake = new FakeHvf();
    final List<AutoCloseable> resources = new ArrayList<>();

    @Test
    void oneVmPerProcessAtATime() {
        Hvf hvf = Hvf.over(fake);
        HvfVm vm = hvf.createVm();
        IllegalStateException e = assertThrows(IllegalStateException.class, hvf::createVm);
        assertTrue(e.getMessage().contains("one VM per process"), e.getMessage());
        vm.close();
        hvf.createVm().close();
        assertEquals(List.of("hv_vm_create(ipa 40)", "hv_vm_destroy", "hv_vm_create(ipa 40)", "hv_vm_destroy"), fake.log);
    }

    @Test
    void theGicGoesWhereThePlatformSays() {
        HvfVm vm = Hvf.over(fake).createVm();
        assertEquals(Arm64Vm.Gic.V3, vm.createGic(4, HvfVcpuTest.placement(4), resources));
        vm.setSpi(40, true);
        vm.setSpi(40, false);
        assertEquals(List.of("hv_vm_create(ipa 40)", "hv_gic_create(0x9ff0000, 0x9f70000)", "hv_gic_set_spi(40, true)",
                "hv_gic_set_spi(40, false)"), fake.log);
        vm.close();
    }

    @Test
    void aFrameworkWhoseGicDoesNotFitIsRefusedNamingTheNumbers() {
        fake.redistributorSize = 0x4_0000;
        assertGicRefused("0x40000-byte redistributors");
        fake.redistributorSize = 0x2_0000;
        fake.distributorAlignment = 0x10_0000;
        assertGicRefused("aligned to 0x100000");
        fake.distributorAlignment = 0x1_0000;
        fake.spiRange = new int[] {32, 64};
        assertGicRefused("SPIs 32 to 95");
        fake.spiRange = new int[] {32, 988};
        fake.gic = false;
        assertGicRefused("macOS 15");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Hvf.over(fake).requireCapabilities());
        assertTrue(e.getMessage().contains("macOS 15"), e.getMessage());
    }

    private void assertGicRefused(String why) {
        HvfVm vm = Hvf.over(fake).createVm();
        try {
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> vm.createGic(2, HvfVcpuTest.placement(2), resources));
            assertTrue(e.getMessage().contains(why), e.getMessage());
        } finally {
            vm.close();
        }
    }

    @Test
    void returnCodesBecomeExceptionsNamingTheCall() {
        fake.createResult = HvReturn.DENIED;
        HvfException e = assertThrows(HvfException.class, () -> Hvf.over(fake).createVm());
        assertEquals("hv_vm_create", e.call());
        assertEquals(HvReturn.DENIED, e.code());
        assertTrue(e.getMessage().startsWith("hv_vm_create: HV_DENIED (the process lacks the com.apple.security.hypervisor"),
                e.getMessage());
        fake.createResult = HvReturn.SUCCESS;
        Hvf.over(fake).createVm().close(); // a failed create leaves no VM behind
        assertEquals("HV_BAD_ARGUMENT", HvReturn.name(0xfae94003));
        assertEquals("HV_UNSUPPORTED", HvReturn.name(0xfae9400f));
        assertEquals("0x00000001", HvReturn.name(1));
        assertEquals("hv_vcpu_run: HV_ILLEGAL_GUEST_STATE", new HvfException("hv_vcpu_run", 0xfae94004).getMessage());
    }

    @Test
    void theBindingLoadsOnlyOnMacOs() {
        if (!NativeHvf.isMacOs()) {
            UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class, NativeHvf::load);
            assertTrue(e.getMessage().contains("only on macOS"), e.getMessage());
        }
    }
}
