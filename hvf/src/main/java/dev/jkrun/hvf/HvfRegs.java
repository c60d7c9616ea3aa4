package dev.jkrun.hvf;

/** Register numbers of the arm64 Hypervisor.framework API (Hypervisor/hv_vcpu_types.h). */
final class HvfRegs {
    private HvfRegs() {}

    /** hv_reg_t: X0–X30 are 0–30. */
    static final int X0 = 0, X30 = 30, PC = 31, FPCR = 32, FPSR = 33, CPSR = 34;

    /** hv_sys_reg_t: op0, op1, CRn, CRm, op2 packed as the MRS encoding's bits 20–5 (op0 in 15–14 … op2 in 2–0). */
    static int sysReg(int op0, int op1, int crn, int crm, int op2) {
        return (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2;
    }

    static final int MPIDR_EL1 = sysReg(3, 0, 0, 0, 5), SCTLR_EL1 = sysReg(3, 0, 1, 0, 0),
            ESR_EL1 = sysReg(3, 0, 5, 2, 0), FAR_EL1 = sysReg(3, 0, 6, 0, 0), ELR_EL1 = sysReg(3, 0, 4, 0, 1),
            SP_EL1 = sysReg(3, 4, 4, 1, 0), CNTV_CTL_EL0 = sysReg(3, 3, 14, 3, 1), CNTV_CVAL_EL0 = sysReg(3, 3, 14, 3, 2);

    /** hv_exit_reason_t. */
    static final int EXIT_CANCELED = 0, EXIT_EXCEPTION = 1, EXIT_VTIMER_ACTIVATED = 2, EXIT_UNKNOWN = 3;

    /** hv_memory_flags_t: read, write, execute. */
    static final long MEMORY_RWX = 1 | 2 | 4;

    /** PSTATE at entry: EL1h, D, A, I, F masked (booting.rst). */
    static final long CPSR_EL1H_DAIF_MASKED = 0x3C5;
}
