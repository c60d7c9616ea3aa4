package dev.jkrun.kvm;

/** struct kvm_sregs (x86): 312 bytes. */
public final class Sregs {
    public static final int SIZE = 312;
    public final Segment cs = new Segment(), ds = new Segment(), es = new Segment(), fs = new Segment(),
            gs = new Segment(), ss = new Segment(), tr = new Segment(), ldt = new Segment();
    public final DTable gdt = new DTable(), idt = new DTable();
    public long cr0, cr2, cr3, cr4, cr8, efer, apicBase;
    /** interrupt_bitmap[(KVM_NR_INTERRUPTS + 63) / 64] = 4 u64. */
    public final long[] interruptBitmap = new long[4];
}
