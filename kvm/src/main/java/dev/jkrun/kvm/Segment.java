package dev.jkrun.kvm;

/** struct kvm_segment (x86): 24 bytes. */
public final class Segment {
    public static final int SIZE = 24;
    public long base;
    public int limit;
    public short selector;
    public byte type, present, dpl, db, s, l, g, avl, unusable;
}
