package dev.jkrun.arch.x86_64;

import dev.jkrun.hypervisor.Hypervisor;
import dev.jkrun.hypervisor.VcpuDiagnosis;
import dev.jkrun.hypervisor.VcpuExit;
import dev.jkrun.kvm.Regs;
import dev.jkrun.kvm.Sregs;
import dev.jkrun.kvm.Vcpu;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import java.util.HexFormat;
import java.util.OptionalLong;

/** An x86_64 vCPU on KVM: RIP and the instruction bytes there, or RIP/RSP/CR3 and the kernel text on the stack. */
public final class X86Diagnosis implements VcpuDiagnosis {
    public static final X86Diagnosis INSTANCE = new X86Diagnosis();

    private X86Diagnosis() {}

    @Override
    public String location(Hypervisor.Vcpu hv, GuestMemory memory, VcpuExit exit) {
        if (!(hv instanceof Vcpu vcpu)) {
            return "";
        }
        StringBuilder sb = new StringBuilder();
        try {
            Regs regs = vcpu.getRegs();
            Sregs sregs = vcpu.getSregs();
            sb.append(String.format(" at RIP 0x%x", regs.rip));
            byte[] bytes = exit instanceof VcpuExit.InternalError e ? e.instructionBytes() : new byte[0];
            if (bytes.length == 0) {
                long linear = regs.rip + (((sregs.cr0 & 1) == 0 || (sregs.efer & 0x400) == 0) ? sregs.cs.base : 0);
                OptionalLong phys = (sregs.cr0 & 0x80000000L) != 0 ? PageWalk.translate(memory, sregs.cr3, linear) : OptionalLong.of(linear);
                if (phys.isPresent()) {
                    for (int n = 15; n > 0 && bytes.length == 0; n--) {
                        if (memory.contains(GuestAddress.of(phys.getAsLong()), n)) {
                            bytes = memory.readBytes(GuestAddress.of(phys.getAsLong()), n);
                        }
                    }
                }
            }
            if (bytes.length > 0) {
                sb.append(", instruction bytes ").append(HexFormat.ofDelimiter(" ").formatHex(bytes));
            }
        } catch (RuntimeException e) {
            sb.append(" (registers unavailable: ").append(e.getMessage()).append(')');
        }
        return sb.toString();
    }

    @Override
    public String sample(Hypervisor.Vcpu hv, GuestMemory memory) {
        if (!(hv instanceof Vcpu vcpu)) {
            return VcpuDiagnosis.NONE.sample(hv, memory);
        }
        try {
            Regs r = vcpu.getRegs();
            Sregs s = vcpu.getSregs();
            return String.format("vCPU %d: rip=%#x rsp=%#x rflags=%#x cr3=%#x cpl=%d rdi=%#x rsi=%#x rax=%#x"
                    + " stack text words %s", vcpu.id(), r.rip, r.rsp, r.rflags, s.cr3, s.cs.selector & 3, r.rdi, r.rsi,
                    r.rax, GuestStack.kernelTextWords(memory, s.cr3, r.rsp, 256));
        } catch (RuntimeException e) {
            return "vCPU " + vcpu.id() + ": registers unavailable: " + e.getMessage();
        }
    }
}
