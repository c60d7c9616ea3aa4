package dev.jkrun.arch.aarch64;

import dev.jkrun.hypervisor.Hypervisor;
import dev.jkrun.hypervisor.VcpuDiagnosis;
import dev.jkrun.hypervisor.VcpuExit;
import dev.jkrun.kvm.Arm64Regs;
import dev.jkrun.kvm.Vcpu;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;

/**
 * An aarch64 vCPU on KVM: PC, the instruction word there while the MMU is off (physical PC), and the EL1 exception
 * state (ESR, FAR, ELR) a guest's own fault left behind.
 */
public final class Aarch64Diagnosis implements VcpuDiagnosis {
    public static final Aarch64Diagnosis INSTANCE = new Aarch64Diagnosis();
    private static final long SCTLR_M = 1;

    private Aarch64Diagnosis() {}

    @Override
    public String location(Hypervisor.Vcpu hv, GuestMemory memory, VcpuExit exit) {
        if (!(hv instanceof Vcpu vcpu)) {
            return "";
        }
        try {
            long pc = vcpu.getOneReg(Arm64Regs.PC);
            StringBuilder sb = new StringBuilder(String.format(" at PC 0x%x", pc));
            if ((vcpu.getOneReg(Arm64Regs.SCTLR_EL1) & SCTLR_M) == 0 && memory.contains(GuestAddress.of(pc), 4)) {
                sb.append(String.format(", instruction 0x%08x", memory.readInt(GuestAddress.of(pc))));
            }
            sb.append(String.format(" (ESR_EL1 0x%x, FAR_EL1 0x%x, ELR_EL1 0x%x)", vcpu.getOneReg(Arm64Regs.ESR_EL1),
                    vcpu.getOneReg(Arm64Regs.FAR_EL1), vcpu.getOneReg(Arm64Regs.ELR_EL1)));
            return sb.toString();
        } catch (RuntimeException e) {
            return " (registers unavailable: " + e.getMessage() + ")";
        }
    }

    @Override
    public String sample(Hypervisor.Vcpu hv, GuestMemory memory) {
        if (!(hv instanceof Vcpu vcpu)) {
            return VcpuDiagnosis.NONE.sample(hv, memory);
        }
        try {
            return String.format("vCPU %d: pc=%#x sp_el1=%#x pstate=%#x x0=%#x x30=%#x elr_el1=%#x esr_el1=%#x",
                    vcpu.id(), vcpu.getOneReg(Arm64Regs.PC), vcpu.getOneReg(Arm64Regs.SP_EL1),
                    vcpu.getOneReg(Arm64Regs.PSTATE), vcpu.getOneReg(Arm64Regs.x(0)), vcpu.getOneReg(Arm64Regs.x(30)),
                    vcpu.getOneReg(Arm64Regs.ELR_EL1), vcpu.getOneReg(Arm64Regs.ESR_EL1));
        } catch (RuntimeException e) {
            return "vCPU " + vcpu.id() + ": registers unavailable: " + e.getMessage();
        }
    }
}
