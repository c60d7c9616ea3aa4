package dev.jkrun.arch.x86_64;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.jkrun.kvm.Fpu;
import dev.jkrun.kvm.LapicState;
import dev.jkrun.kvm.MsrEntry;
import dev.jkrun.kvm.Regs;
import dev.jkrun.kvm.Segment;
import dev.jkrun.kvm.Sregs;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

class BootCpuTest {
    @Test
    void regs() {
        Regs r = BootCpu.regs(0x1000123);
        assertEquals(0x1000123, r.rip);
        assertEquals(0x8FF0, r.rsp);
        assertEquals(0x8FF0, r.rbp);
        assertEquals(0x7000, r.rsi);
        assertEquals(2, r.rflags);
        assertEquals(0, r.rax | r.rbx | r.rcx | r.rdx | r.rdi | r.r8 | r.r15);
    }

    /** KVM's reset state: CR0 = ET | CD | NW, real-mode segments. */
    static Sregs resetSregs() {
        Sregs s = new Sregs();
        s.cr0 = 0x6000_0010L;
        s.cs.selector = (short) 0xF000;
        s.cs.base = 0xFFFF_0000L;
        s.cs.limit = 0xFFFF;
        s.apicBase = 0xFEE0_0900L;
        return s;
    }

    @Test
    void longModeSregs() {
        Sregs s = resetSregs();
        BootCpu.longModeSregs(s);
        assertEquals(0xE000_0011L, s.cr0, "PE|PG added, ET|CD|NW kept");
        assertEquals(0x500, s.efer);
        assertEquals(0x9000, s.cr3);
        assertEquals(0x20, s.cr4 & 0x20);
        assertEquals(0x500, s.gdt.base);
        assertEquals(31, s.gdt.limit);
        assertEquals(0x520, s.idt.base);
        assertEquals(7, s.idt.limit);
        assertEquals(0xFEE0_0900L, s.apicBase, "untouched");

        assertEquals(8, s.cs.selector);
        assertEquals(0, s.cs.base);
        assertEquals(0xFFFF_FFFF, s.cs.limit);
        assertEquals(0xB, s.cs.type);
        assertEquals(1, s.cs.l);
        assertEquals(1, s.cs.s);
        assertEquals(1, s.cs.present);
        for (Segment d : List.of(s.ds, s.es, s.fs, s.gs, s.ss)) {
            assertEquals(0x10, d.selector);
            assertEquals(3, d.type);
            assertEquals(1, d.db);
            assertEquals(1, d.g);
            assertEquals(0, d.l);
        }
        assertEquals(0x18, s.tr.selector);
        assertEquals(0xB, s.tr.type);
        assertEquals(0, s.tr.s);
        assertEquals(0xFFFF_FFFF, s.tr.limit);
    }

    @Test
    void fpu() {
        Fpu f = BootCpu.fpu();
        assertEquals(0x37F, f.fcw);
        assertEquals(0x1F80, f.mxcsr);
    }

    @Test
    void msrs() {
        Map<Integer, Long> m = BootCpu.msrs().stream().collect(Collectors.toMap(MsrEntry::index, MsrEntry::data));
        assertEquals(11, m.size());
        assertEquals(Map.ofEntries(
                Map.entry(0x174, 0L), Map.entry(0x175, 0L), Map.entry(0x176, 0L),
                Map.entry(0xC0000081, 0L), Map.entry(0xC0000083, 0L), Map.entry(0xC0000082, 0L),
                Map.entry(0xC0000084, 0L), Map.entry(0xC0000102, 0L),
                Map.entry(0x10, 0L), Map.entry(0x1A0, 1L), Map.entry(0x2FF, 0x806L)), m);
    }

    @Test
    void lintChangesOnlyDeliveryMode() {
        LapicState l = new LapicState();
        l.setRegister(0x350, 0x0001_0700 | 0x30); // masked, mode 7 bits set, vector 0x30
        l.setRegister(0x360, 0xFFFF_FFFF);
        BootCpu.setLint(l);
        assertEquals(0x0001_0730, l.register(0x350));
        assertEquals(0xFFFF_FCFF, l.register(0x360));
        LapicState z = new LapicState();
        BootCpu.setLint(z);
        assertEquals(0x700, z.register(0x350));
        assertEquals(0x400, z.register(0x360));
    }
}
