package dev.jkrun.hvf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.hvf.testing.FakeHvf;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

class HvfHostCheckTest {
    static HvfHostCheck.Finding find(List<HvfHostCheck.Finding> f, String subject) {
        return f.stream().filter(x -> x.subject().startsWith(subject)).findFirst().orElseThrow(() -> new AssertionError(f));
    }

    @Test
    void aReadyMac() {
        List<HvfHostCheck.Finding> f = HvfHostCheck.run(FakeHvf::new);
        assertTrue(f.stream().allMatch(HvfHostCheck.Finding::ok), f.toString());
        assertEquals("granted (a VM was created and destroyed)", find(f, "entitlement").value());
        assertEquals("64", find(f, "vCPUs").value());
    }

    @Test
    void aJvmWithoutTheEntitlementIsToldHowToSignIt() {
        FakeHvf fake = new FakeHvf();
        fake.createResult = HvReturn.DENIED;
        HvfHostCheck.Finding e = find(HvfHostCheck.run(() -> fake), "entitlement com.apple.security.hypervisor");
        assertFalse(e.ok());
        assertEquals("missing (hv_vm_create: HV_DENIED)", e.value());
        assertTrue(e.fix().contains("codesign --sign - --force --entitlements hvf/jkrun.entitlements"), e.fix());
    }

    @Test
    void anOldMacOrNoVirtualization() {
        FakeHvf fake = new FakeHvf();
        fake.gic = false;
        fake.hvSupport = 0;
        List<HvfHostCheck.Finding> f = HvfHostCheck.run(() -> fake);
        assertFalse(find(f, "GIC").ok());
        assertTrue(find(f, "GIC").fix().contains("macOS 15"));
        assertFalse(find(f, "kern.hv_support").ok());
        List<HvfHostCheck.Finding> none = HvfHostCheck.run(() -> {
            throw new UnsupportedOperationException("Hypervisor.framework exists only on macOS, not Linux");
        });
        assertEquals(1, none.size());
        assertFalse(none.get(0).ok());
    }

    @Test
    void theEntitlementsFileNamesTheHypervisorEntitlement() throws Exception {
        String plist = Files.readString(Path.of("jkrun.entitlements"));
        assertTrue(plist.contains("<key>com.apple.security.hypervisor</key>\n    <true/>"), plist);
    }
}
