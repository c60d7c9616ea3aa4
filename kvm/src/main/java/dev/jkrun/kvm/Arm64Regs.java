package dev.jkrun.kvm;

/**
 * arm64 register ids for KVM_GET/SET_ONE_REG and the vCPU features of KVM_ARM_VCPU_INIT (arch/arm64/include/uapi/
 * asm/kvm.h, linux/kvm.h). A core register's id is its byte offset in struct kvm_regs, in 32-bit words.
 */
public final class Arm64Regs {
    private Arm64Regs() {}

    static final long KVM_REG_ARM64 = 0x6000_0000_0000_0000L, KVM_REG_SIZE_U64 = 0x0030_0000_0000_0000L;
    static final long KVM_REG_ARM_CORE = 0x0010L << 16, KVM_REG_ARM64_SYSREG = 0x0013L << 16;

    /** A 64-bit core register at byte {@code offset} of struct kvm_regs. */
    static long core(int offset) { return KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (offset / 4); }

    /** X{@code n}, 0..30 (user_pt_regs.regs[n]). */
    public static long x(int n) {
        if (n < 0 || n > 30) {
            throw new IllegalArgumentException("X" + n);
        }
        return core(8 * n);
    }

    /** user_pt_regs.sp (SP_EL0), .pc, .pstate; kvm_regs.sp_el1 and .elr_el1 (core registers to KVM, not sysregs). */
    public static final long SP_EL0 = core(248), PC = core(256), PSTATE = core(264), SP_EL1 = core(272),
            ELR_EL1 = core(280);

    /** A system register by its encoding (op0, op1, CRn, CRm, op2), as ARM64_SYS_REG. */
    public static long sysreg(int op0, int op1, int crn, int crm, int op2) {
        return KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG
                | ((long) op0 << 14) | ((long) op1 << 11) | ((long) crn << 7) | ((long) crm << 3) | op2;
    }

    /** MPIDR_EL1: the CPU's affinity (what the device tree's cpu nodes name). */
    public static final long MPIDR_EL1 = sysreg(3, 0, 0, 0, 5);
    /** ESR_EL1, FAR_EL1, VBAR_EL1, SCTLR_EL1, TTBR0/1_EL1, TCR_EL1: for saying where a guest stopped. */
    public static final long ESR_EL1 = sysreg(3, 0, 5, 2, 0), FAR_EL1 = sysreg(3, 0, 6, 0, 0), VBAR_EL1 = sysreg(3, 0, 12, 0, 0), SCTLR_EL1 = sysreg(3, 0, 1, 0, 0),
            TTBR0_EL1 = sysreg(3, 0, 2, 0, 0), TTBR1_EL1 = sysreg(3, 0, 2, 0, 1), TCR_EL1 = sysreg(3, 0, 2, 0, 2);

    /** KVM_ARM_VCPU_* feature bits. */
    public static final int FEATURE_POWER_OFF = 0, FEATURE_EL1_32BIT = 1, FEATURE_PSCI_0_2 = 2, FEATURE_PMU_V3 = 3;

    /** PSTATE for entering a kernel: EL1h (SPSel = 1), D, A, I and F masked (arm64 booting.rst). */
    public static final long PSTATE_EL1H_DAIF_MASKED = 0x3C5;
}
