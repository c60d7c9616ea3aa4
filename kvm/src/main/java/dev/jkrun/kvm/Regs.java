package dev.jkrun.kvm;

/** struct kvm_regs (linux/kvm.h, x86): 18 u64, 144 bytes. A mutable value, like the C struct. */
public final class Regs {
    public static final int SIZE = 144;
    public long rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
    public long r8, r9, r10, r11, r12, r13, r14, r15;
    public long rip, rflags;
}
