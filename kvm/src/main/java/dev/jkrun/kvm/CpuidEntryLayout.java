package dev.jkrun.kvm;

import dev.jkrun.libc.NativeBuffer;

/** struct kvm_cpuid_entry2 (asm/kvm.h, x86): u32 function, index, flags, eax, ebx, ecx, edx, padding[3]. */
final class CpuidEntryLayout {
    static final int FUNCTION = 0, INDEX = 4, FLAGS = 8, EAX = 12, EBX = 16, ECX = 20, EDX = 24;

    private CpuidEntryLayout() {}

    static CpuidEntry read(NativeBuffer p, long at) {
        return new CpuidEntry(p.getInt(at + FUNCTION), p.getInt(at + INDEX), p.getInt(at + FLAGS),
                p.getInt(at + EAX), p.getInt(at + EBX), p.getInt(at + ECX), p.getInt(at + EDX));
    }

    static void write(NativeBuffer p, long at, CpuidEntry e) {
        p.putInt(at + FUNCTION, e.function());
        p.putInt(at + INDEX, e.index());
        p.putInt(at + FLAGS, e.flags());
        p.putInt(at + EAX, e.eax());
        p.putInt(at + EBX, e.ebx());
        p.putInt(at + ECX, e.ecx());
        p.putInt(at + EDX, e.edx());
        p.clear(at + EDX + 4, CpuidEntry.SIZE - EDX - 4);
    }
}
