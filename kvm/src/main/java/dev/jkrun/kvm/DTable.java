package dev.jkrun.kvm;

/** struct kvm_dtable (x86): base u64, limit u16, 16 bytes with padding. */
public final class DTable {
    public static final int SIZE = 16;
    public long base;
    public short limit;
}
