package dev.jkrun.arch.x86_64;

import dev.jkrun.kvm.Fpu;
import dev.jkrun.kvm.LapicState;
import dev.jkrun.kvm.MsrEntry;
import dev.jkrun.kvm.Regs;
import dev.jkrun.kvm.Segment;
import dev.jkrun.kvm.Sregs;
import java.util.List;

/**
 * The boot vCPU's initial state for the 64-bit boot protocol (notes §1.8; libkrun {@code regs.rs}, {@code msr.rs},
 * {@code interrupts.rs}): long mode, paging on with the identity tables, RIP at the kernel's {@code startup_64},
 * RSI at the zero page. APs are held in wait-for-SIPI by the in-kernel LAPIC, so this matters for the BSP only.
 */
public final class BootCpu {
    private BootCpu() {}

    public static final long CR0_PE = 1L;
    public static final long CR0_PG = 1L << 31;
    public static final long CR4_PAE = 1L << 5;
    public static final long EFER_LME = 1L << 8;
    public static final long EFER_LMA = 1L << 10;
    /** RFLAGS bit 1 is reserved and always reads 1. */
    public static final long RFLAGS_RESERVED = 0x2;

    // MSR indexes (arch/x86/include/asm/msr-index.h).
    public static final int MSR_IA32_TSC = 0x10;
    public static final int MSR_IA32_SYSENTER_CS = 0x174;
    public static final int MSR_IA32_SYSENTER_ESP = 0x175;
    public static final int MSR_IA32_SYSENTER_EIP = 0x176;
    public static final int MSR_IA32_MISC_ENABLE = 0x1A0;
    public static final int MSR_MTRR_DEF_TYPE = 0x2FF;
    public static final int MSR_STAR = 0xC000_0081;
    public static final int MSR_LSTAR = 0xC000_0082;
    public static final int MSR_CSTAR = 0xC000_0083;
    public static final int MSR_SYSCALL_MASK = 0xC000_0084;
    public static final int MSR_KERNEL_GS_BASE = 0xC000_0102;
    /** MISC_ENABLE bit 0: fast string operations. */
    public static final long MISC_ENABLE_FAST_STRING = 1;
    /** MTRRdefType: E (bit 11) enables MTRRs, default memory type 6 = write-back. */
    public static final long MTRR_ENABLE_WB = (1L << 11) | 6;

    /** LAPIC local vector table entries for LINT0/LINT1 (offsets in the APIC register page). */
    public static final int APIC_LVT0 = 0x350;
    public static final int APIC_LVT1 = 0x360;
    public static final int APIC_MODE_NMI = 4;
    public static final int APIC_MODE_EXTINT = 7;

    /** RIP = entry, RSP = RBP = {@link Layout#BOOT_STACK}, RSI = {@link Layout#ZERO_PAGE}, RFLAGS = 2, rest 0. */
    public static Regs regs(long entry) {
        Regs r = new Regs();
        r.rip = entry;
        r.rsp = Layout.BOOT_STACK;
        r.rbp = Layout.BOOT_STACK;
        // startup_64 takes the boot_params pointer in RSI.
        r.rsi = Layout.ZERO_PAGE;
        r.rflags = RFLAGS_RESERVED;
        return r;
    }

    /**
     * Turns KVM's reset sregs (from KVM_GET_SREGS) into 64-bit long mode: segments from the boot GDT, GDTR/IDTR at
     * the boot tables, CR3 at the identity PML4, PAE, PE|PG, LME|LMA. Reset bits not named here (CR0's ET, CD, NW)
     * are kept, as libkrun keeps them. The GDT and page tables themselves are written by {@link Gdt#write} and
     * {@link PageTables#write}.
     */
    public static void longModeSregs(Sregs s) {
        Segment code = Gdt.segment(Gdt.CODE_INDEX);
        Segment data = Gdt.segment(Gdt.DATA_INDEX);
        copy(code, s.cs);
        for (Segment seg : List.of(s.ds, s.es, s.fs, s.gs, s.ss)) {
            copy(data, seg);
        }
        copy(Gdt.segment(Gdt.TSS_INDEX), s.tr);
        s.gdt.base = Layout.GDT;
        s.gdt.limit = Gdt.LIMIT;
        s.idt.base = Layout.IDT;
        s.idt.limit = 7;
        s.cr3 = Layout.PML4;
        s.cr4 |= CR4_PAE;
        s.cr0 |= CR0_PE | CR0_PG;
        s.efer |= EFER_LME | EFER_LMA;
    }

    /** FCW 0x37F (x87 default: all exceptions masked, 64-bit precision), MXCSR 0x1F80 (SSE exceptions masked). */
    public static Fpu fpu() {
        Fpu f = new Fpu();
        f.fcw = 0x37F;
        f.mxcsr = 0x1F80;
        return f;
    }

    /** The boot MSRs; KVM_SET_MSRS must accept all of them. */
    public static List<MsrEntry> msrs() {
        return List.of(
                new MsrEntry(MSR_IA32_SYSENTER_CS, 0),
                new MsrEntry(MSR_IA32_SYSENTER_ESP, 0),
                new MsrEntry(MSR_IA32_SYSENTER_EIP, 0),
                new MsrEntry(MSR_STAR, 0),
                new MsrEntry(MSR_CSTAR, 0),
                new MsrEntry(MSR_KERNEL_GS_BASE, 0),
                new MsrEntry(MSR_SYSCALL_MASK, 0),
                new MsrEntry(MSR_LSTAR, 0),
                new MsrEntry(MSR_IA32_TSC, 0),
                new MsrEntry(MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING),
                new MsrEntry(MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WB));
    }

    /**
     * LVT0 delivers ExtINT (the PIC's output reaches the BSP) and LVT1 delivers NMI, as a PC BIOS leaves them.
     * Only the delivery-mode bits 8–10 change; mask and vector bits are kept.
     */
    public static void setLint(LapicState lapic) {
        lapic.setRegister(APIC_LVT0, withDeliveryMode(lapic.register(APIC_LVT0), APIC_MODE_EXTINT));
        lapic.setRegister(APIC_LVT1, withDeliveryMode(lapic.register(APIC_LVT1), APIC_MODE_NMI));
    }

    static int withDeliveryMode(int lvt, int mode) { return (lvt & ~0x700) | (mode << 8); }

    private static void copy(Segment from, Segment to) {
        to.base = from.base;
        to.limit = from.limit;
        to.selector = from.selector;
        to.type = from.type;
        to.present = from.present;
        to.dpl = from.dpl;
        to.db = from.db;
        to.s = from.s;
        to.l = from.l;
        to.g = from.g;
        to.avl = from.avl;
        to.unusable = from.unusable;
    }
}
