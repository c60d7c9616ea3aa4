package dev.jkrun.kvm;

/** struct kvm_msr_entry: index u32, reserved u32, data u64 (16 bytes). */
public record MsrEntry(int index, long data) {
    public static final int SIZE = 16;
}
