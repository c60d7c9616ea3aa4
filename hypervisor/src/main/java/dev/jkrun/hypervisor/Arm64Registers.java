package dev.jkrun.hypervisor;

/**
 * An aarch64 vCPU's registers as far as stop reasons and samples need them, whichever hypervisor holds them. Read on
 * the vCPU's own thread (Hypervisor.framework's vCPUs answer only there).
 */
public interface Arm64Registers {
    enum Register { PC, SP_EL1, PSTATE, X0, X30, ELR_EL1, ESR_EL1, FAR_EL1, SCTLR_EL1 }

    long read(Register register);
}
