package dev.jkrun.arch.aarch64;

import dev.jkrun.hypervisor.Arm64Registers;
import dev.jkrun.hypervisor.Arm64Registers.Register;
import dev.jkrun.hypervisor.Hypervisor;
import dev.jkrun.hypervisor.VcpuDiagnosis;
import dev.jkrun.hypervisor.VcpuExit;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;

/**
 * An aarch64 vCPU, on whichever hypervisor reads its registers ({@link Arm64Registers}): PC, the instruction word
 * there while the MMU is off (physical PC), and the EL1 exception state (ESR, FAR, ELR) a guest's own fault left
 * behind.
 */
public final class Aarch64Diagnosis implements VcpuDiagnosis {
    public static final Aarch64Diagnosis INSTANCE = new Aarch64Diagnosis();
    private static final long SCTLR_M = 1;

    private Aarch64Diagnosis() {}

    @Override
    public String location(Hypervisor.Vcpu hv, GuestMemory memory, VcpuExit exit) {
        if (!(hv instanceof Arm64Registers vcpu)) {
            return "";
        }
        try {
            long pc = vcpu.read(Register.PC);
            StringBuilder sb = new StringBuilder(String.format(" at PC 0x%x", pc));
            if ((vcpu.read(Register.SCTLR_EL1) & SCTLR_M) == 0 && memory.contains(GuestAddress.of(pc), 4)) {
                sb.append(String.format(", instruction 0x%08x", memory.readInt(GuestAddress.of(pc))));
            }
            sb.append(String.format(" (ESR_EL1 0x%x, FAR_EL1 0x%x, ELR_EL1 0x%x)", vcpu.read(Register.ESR_EL1),
                    vcpu.read(Register.FAR_EL1), vcpu.read(Register.ELR_EL1)));
            return sb.toString();
        } catch (RuntimeException e) {
            return " (registers unavailable: " + e.getMessage() + ")";
        }
    }

    @Override
    public String sample(Hypervisor.Vcpu hv, GuestMemory memory) {
        if (!(hv instanceof Arm64Registers vcpu)) {
            return VcpuDiagnosis.NONE.sample(hv, memory);
        }
        try {
            return String.format("vCPU %d: pc=%#x sp_el1=%#x pstate=%#x x0=%#x x30=%#x elr_el1=%#x esr_el1=%#x",
                    hv.id(), vcpu.read(Register.PC), vcpu.read(Register.SP_EL1), vcpu.read(Register.PSTATE),
                    vcpu.read(Register.X0), vcpu.read(Register.X30), vcpu.read(Register.ELR_EL1),
                    vcpu.read(Register.ESR_EL1));
        } catch (RuntimeException e) {
            return "vCPU " + hv.id() + ": registers unavailable: " + e.getMessage();
        }
    }
}
