package dev.jkrun.kvm;

import dev.jkrun.libc.NativeBuffer;

/** struct kvm_msr_entry (asm/kvm.h, x86): u32 index, u32 reserved, u64 data. */
final class MsrEntryLayout {
    static final int INDEX = 0, RESERVED = 4, DATA = 8;

    private MsrEntryLayout() {}

    static MsrEntry read(NativeBuffer p, long at) {
        return new MsrEntry(p.getInt(at + INDEX), p.getLong(at + DATA));
    }

    static void write(NativeBuffer p, long at, MsrEntry e) {
        p.putInt(at + INDEX, e.index());
        p.putInt(at + RESERVED, 0);
        p.putLong(at + DATA, e.data());
    }
}
