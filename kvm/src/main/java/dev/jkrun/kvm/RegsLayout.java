package dev.jkrun.kvm;

import dev.jkrun.libc.NativeBuffer;

/** struct kvm_regs (asm/kvm.h, x86): rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp, r8..r15, rip, rflags; all u64. */
final class RegsLayout {
    static final int RAX = 0, RBX = 8, RCX = 16, RDX = 24, RSI = 32, RDI = 40, RSP = 48, RBP = 56, R8 = 64,
            R9 = 72, R10 = 80, R11 = 88, R12 = 96, R13 = 104, R14 = 112, R15 = 120, RIP = 128, RFLAGS = 136;

    private RegsLayout() {}

    static Regs read(NativeBuffer p, Regs r) {
        r.rax = p.getLong(RAX); r.rbx = p.getLong(RBX); r.rcx = p.getLong(RCX); r.rdx = p.getLong(RDX);
        r.rsi = p.getLong(RSI); r.rdi = p.getLong(RDI); r.rsp = p.getLong(RSP); r.rbp = p.getLong(RBP);
        r.r8 = p.getLong(R8); r.r9 = p.getLong(R9); r.r10 = p.getLong(R10); r.r11 = p.getLong(R11);
        r.r12 = p.getLong(R12); r.r13 = p.getLong(R13); r.r14 = p.getLong(R14); r.r15 = p.getLong(R15);
        r.rip = p.getLong(RIP); r.rflags = p.getLong(RFLAGS);
        return r;
    }

    static void write(NativeBuffer p, Regs r) {
        p.putLong(RAX, r.rax); p.putLong(RBX, r.rbx); p.putLong(RCX, r.rcx); p.putLong(RDX, r.rdx);
        p.putLong(RSI, r.rsi); p.putLong(RDI, r.rdi); p.putLong(RSP, r.rsp); p.putLong(RBP, r.rbp);
        p.putLong(R8, r.r8); p.putLong(R9, r.r9); p.putLong(R10, r.r10); p.putLong(R11, r.r11);
        p.putLong(R12, r.r12); p.putLong(R13, r.r13); p.putLong(R14, r.r14); p.putLong(R15, r.r15);
        p.putLong(RIP, r.rip); p.putLong(RFLAGS, r.rflags);
    }
}
