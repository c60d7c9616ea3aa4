package dev.jkrun.hvf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Method;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * The binding's shape, which no fake can check and no Mac here can run: the C signatures of Hypervisor/hv_*.h as JNR
 * is told them. Java has no unsigned 16-bit type, and JNR passes a {@code short} sign-extended, so hv_sys_reg_t
 * (uint16_t) travels as an int holding 0..0xFFFF; C's {@code bool} travels as a byte; pointers and 64-bit handles
 * (hv_vcpu_t, hv_ipa_t, size_t, os objects) as long; hv_return_t as int.
 */
class NativeHvfTest {
    @Test
    void noParameterIsASignExtendedShortOrAJavaBoolean() {
        for (Class<?> c : new Class<?>[] {NativeHvf.Framework.class, NativeHvf.System.class}) {
            for (Method m : c.getMethods()) {
                for (Class<?> p : m.getParameterTypes()) {
                    assertTrue(p != short.class && p != boolean.class && p != char.class, m + " takes " + p);
                }
            }
        }
    }

    @Test
    void signaturesAsTheHeadersDeclareThem() {
        Map<String, String> want = new TreeMap<>(Map.ofEntries(
                Map.entry("hv_vm_create", "int(long)"), Map.entry("hv_vm_map", "int(long,long,long,long)"),
                Map.entry("hv_vm_unmap", "int(long,long)"), Map.entry("hv_vcpu_create", "int(long,long,long)"),
                Map.entry("hv_vcpu_run", "int(long)"), Map.entry("hv_vcpus_exit", "int(long,int)"),
                Map.entry("hv_vcpu_get_reg", "int(long,int,long)"), Map.entry("hv_vcpu_set_reg", "int(long,int,long)"),
                Map.entry("hv_vcpu_get_sys_reg", "int(long,int,long)"),
                Map.entry("hv_vcpu_set_sys_reg", "int(long,int,long)"),
                Map.entry("hv_vcpu_set_vtimer_mask", "int(long,byte)"), Map.entry("hv_gic_set_spi", "int(int,byte)"),
                Map.entry("hv_gic_create", "int(long)"), Map.entry("hv_gic_config_create", "long()"),
                Map.entry("hv_vm_config_create", "long()"), Map.entry("hv_vm_config_set_ipa_size", "int(long,int)")));
        Map<String, String> have = new TreeMap<>();
        for (Method m : NativeHvf.Framework.class.getMethods()) {
            if (want.containsKey(m.getName())) {
                have.put(m.getName(), m.getReturnType().getName() + "(" + String.join(",",
                        Arrays.stream(m.getParameterTypes()).map(Class::getName).toList()) + ")");
            }
        }
        assertEquals(want, have);
    }

    @Test
    void systemRegisterNumbersAreTheHeadersAndFitSixteenBits() {
        // Hypervisor/hv_vcpu_types.h: HV_SYS_REG_MPIDR_EL1 = 0xc005, SCTLR_EL1 = 0xc080, CNTV_CTL_EL0 = 0xdf19, ...
        assertEquals(0xC005, HvfRegs.MPIDR_EL1);
        assertEquals(0xC080, HvfRegs.SCTLR_EL1);
        assertEquals(0xC290, HvfRegs.ESR_EL1);
        assertEquals(0xC300, HvfRegs.FAR_EL1);
        assertEquals(0xC201, HvfRegs.ELR_EL1);
        assertEquals(0xE208, HvfRegs.SP_EL1);
        assertEquals(0xDF19, HvfRegs.CNTV_CTL_EL0);
        assertEquals(0xDF1A, HvfRegs.CNTV_CVAL_EL0);
        assertEquals(31, HvfRegs.PC);
        assertEquals(34, HvfRegs.CPSR);
    }
}
