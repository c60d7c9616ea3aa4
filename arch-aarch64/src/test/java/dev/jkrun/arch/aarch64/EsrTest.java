package dev.jkrun.arch.aarch64;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/**
 * ESR_EL2 values as the hardware reports them for the accesses an arm64 Linux guest makes to MMIO (EC 0x24, IL, ISV
 * and a level-3 stage-2 translation fault, DFSC 0x07, unless said otherwise), each written out field by field from
 * the Arm ARM's ISS layout, and what jkrun must make of them.
 */
class EsrTest {

    @ParameterizedTest(name = "{0}")
    @CsvSource({
            // instruction,           esr,        valid, size, sse,  srt, sf,    write
            "'ldrb w1, [x0]',         0x93010007, true,  1,    false, 1,  false, false",
            "'ldrh w5, [x0]',         0x93450007, true,  2,    false, 5,  false, false",
            "'ldr w0, [x1]',          0x93800007, true,  4,    false, 0,  false, false",
            "'ldr x8, [x0]',          0x93C88007, true,  8,    false, 8,  true,  false",
            "'ldrsb x2, [x0]',        0x93228007, true,  1,    true,  2,  true,  false",
            "'ldrsh w3, [x0]',        0x93630007, true,  2,    true,  3,  false, false",
            "'ldrsw x4, [x0]',        0x93A48007, true,  4,    true,  4,  true,  false",
            "'strb w1, [x0]',         0x93010047, true,  1,    false, 1,  false, true",
            "'strh w2, [x0]',         0x93420047, true,  2,    false, 2,  false, true",
            "'str w1, [x0] (level 2)',0x93810046, true,  4,    false, 1,  false, true",
            "'str x3, [x0]',          0x93C38047, true,  8,    false, 3,  true,  true",
            "'str wzr, [x0]',         0x939F0047, true,  4,    false, 31, false, true",
            "'ldp x0, x1, [x2]',      0x92000007, false, 1,    false, 0,  false, false",
            "'stp x0, x1, [x2]',      0x92000047, false, 1,    false, 0,  false, true",
            "'ldr x0, [x1], #8',      0x92000007, false, 1,    false, 0,  false, false",
    })
    void dataAborts(String insn, long esr, boolean valid, int size, boolean sse, int srt, boolean sf, boolean write) {
        assertEquals(Esr.EC_DABT_LOWER, Esr.ec(esr), insn);
        assertTrue(Esr.il(esr));
        Esr.DataAbort d = Esr.dataAbort(esr);
        assertEquals(valid, d.valid(), insn);
        assertEquals(valid, Esr.dataAbortValid(esr));
        assertEquals(write, d.write(), insn);
        assertEquals(write, Esr.dataAbortWrite(esr));
        if (valid) {
            assertEquals(size, d.size(), insn);
            assertEquals(size, Esr.dataAbortSize(esr));
            assertEquals(sse, d.signExtend(), insn);
            assertEquals(srt, d.register(), insn);
            assertEquals(srt, Esr.dataAbortRegister(esr));
            assertEquals(sf, d.sixtyFour(), insn);
        }
        assertFalse(d.cacheMaintenance() || d.stage1Walk() || d.externalAbort(), insn);
    }

    @ParameterizedTest(name = "{0} of {2}")
    @CsvSource({
            // instruction,   esr,        device bytes (LE), register afterwards
            "'ldrb w1',       0x93010007, 0xFF,               0xFF",
            "'ldrh w5',       0x93450007, 0xBEEF,             0xBEEF",
            "'ldr w0',        0x93800007, 0x80000000,         0x80000000",
            "'ldr x8',        0x93C88007, 0x8000000000000001, 0x8000000000000001",
            "'ldrsb x2',      0x93228007, 0x80,               0xFFFFFFFFFFFFFF80",
            "'ldrsb x2',      0x93228007, 0x7F,               0x7F",
            "'ldrsh w3',      0x93630007, 0x8001,             0xFFFF8001",
            "'ldrsw x4',      0x93A48007, 0x80000000,         0xFFFFFFFF80000000",
            "'ldrsw x4',      0x93A48007, 0x7FFFFFFF,         0x7FFFFFFF",
            "'ldrb w1 (junk above the byte)', 0x93010007, 0xFFFFFFFFFFFFFF12, 0x12",
    })
    void loadsExtendAsTheRegisterSays(String insn, long esr, String raw, String expected) {
        assertEquals(Long.parseUnsignedLong(expected.substring(2), 16),
                Esr.loadedValue(esr, Long.parseUnsignedLong(raw.substring(2), 16)), insn);
    }

    @Test
    void faultsThatAreNotMmioAccesses() {
        Esr.DataAbort walk = Esr.dataAbort(0x92000087L); // the guest's page tables point outside RAM
        assertTrue(walk.stage1Walk());
        assertFalse(walk.valid());
        Esr.DataAbort dc = Esr.dataAbort(0x92000147L); // dc civac on device memory: CM with WnR
        assertTrue(dc.cacheMaintenance());
        assertTrue(dc.write());
        assertTrue(Esr.dataAbort(0x92000210L).externalAbort()); // EA, DFSC 0x10 synchronous external abort
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({
            // instruction,             esr,        op0, op1, crn, crm, op2, rt, read, name
            "'mrs x0, oslsr_el1',       0x62280403, 2,   0,   1,   1,   4,   0,  true,  S2_0_C1_C1_4",
            "'msr oslar_el1, x1',       0x62280420, 2,   0,   1,   0,   4,   1,  false, S2_0_C1_C0_4",
            "'mrs x3, id_aa64pfr0_el1', 0x62300069, 3,   0,   0,   4,   0,   3,  true,  S3_0_C0_C4_0",
            "'msr pmcr_el0, xzr',       0x6230E7F8, 3,   3,   9,   12,  0,   31, false, S3_3_C9_C12_0",
    })
    void systemRegisterTraps(String insn, long esr, int op0, int op1, int crn, int crm, int op2, int rt, boolean read,
                             String name) {
        assertEquals(Esr.EC_SYSREG, Esr.ec(esr), insn);
        Esr.SysRegAccess a = Esr.sysRegAccess(esr);
        assertEquals(new Esr.SysRegAccess(op0, op1, crn, crm, op2, rt, read), a, insn);
        assertEquals(name, a.name());
    }

    @Test
    void callsWaitsAndBreakpoints() {
        assertEquals(Esr.EC_HVC64, Esr.ec(0x5A000000L)); // hvc #0
        assertEquals(0, Esr.callImmediate(0x5A000000L));
        assertEquals(0x1234, Esr.callImmediate(0x5A001234L)); // hvc #0x1234
        assertEquals(Esr.EC_SMC64, Esr.ec(0x5E000000L)); // smc #0
        assertEquals(Esr.EC_WFX, Esr.ec(0x06000000L)); // wfi
        assertFalse(Esr.isWfe(0x06000000L));
        assertEquals(Esr.EC_WFX, Esr.ec(0x07E00001L)); // wfe, with CV and COND = 0b1110 as some cores report
        assertTrue(Esr.isWfe(0x07E00001L));
        assertEquals(Esr.EC_BRK64, Esr.ec(0xF2000000L)); // brk #0
        assertEquals(Esr.EC_IABT_LOWER, Esr.ec(0x82000007L)); // an instruction fetch from outside RAM
        assertEquals("EC 0x24 (data abort from a lower EL), ESR 0x93810047", Esr.describe(0x93810047L));
        assertEquals("EC 0x3f (exception class), ESR 0xfe000000", Esr.describe(0xFE000000L));
    }
}
