package dev.jkrun.vmm.vstate;

import dev.jkrun.arch.x86_64.PageWalk;
import dev.jkrun.kvm.HostVirtualization;
import dev.jkrun.kvm.Kvm;
import dev.jkrun.kvm.Regs;
import dev.jkrun.kvm.Sregs;
import dev.jkrun.kvm.Vcpu;
import dev.jkrun.kvm.VcpuExit;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.vmm.StopReason;
import java.util.HexFormat;
import java.util.OptionalLong;

/** Turns a vCPU exit that ends the guest into a {@link StopReason} saying what is known: exit, RIP, bytes there. */
final class GuestStops {
    static final String KVM_PVM_HINT = "kvm-pvm cannot emulate this; stock kernels need hardware virtualization";
    private static final int KVM_SYSTEM_EVENT_SHUTDOWN = 1, KVM_SYSTEM_EVENT_RESET = 2, KVM_SYSTEM_EVENT_CRASH = 3;

    private GuestStops() {}

    static StopReason describe(VcpuExit exit, Vcpu vcpu, Vmm vmm) {
        String where = "vCPU " + vcpu.id() + location(vcpu, vmm, exit);
        if (exit instanceof VcpuExit.Hlt) {
            return StopReason.of(StopReason.Kind.SHUTDOWN, where + " halted with interrupts off");
        }
        if (exit instanceof VcpuExit.Shutdown) {
            return StopReason.of(StopReason.Kind.CRASH, "triple fault (KVM_EXIT_SHUTDOWN) on " + where);
        }
        if (exit instanceof VcpuExit.SystemEvent e) {
            return switch (e.type()) {
                case KVM_SYSTEM_EVENT_SHUTDOWN -> StopReason.of(StopReason.Kind.SHUTDOWN, "guest powered off (" + where + ")");
                case KVM_SYSTEM_EVENT_RESET -> StopReason.of(StopReason.Kind.REBOOT, "guest reset (" + where + ")");
                case KVM_SYSTEM_EVENT_CRASH -> StopReason.of(StopReason.Kind.CRASH, "guest crash event (" + where + ")");
                default -> StopReason.of(StopReason.Kind.CRASH, "system event " + e.type() + " on " + where);
            };
        }
        if (exit instanceof VcpuExit.InternalError e) {
            String hint = Kvm.hostVirtualization() == HostVirtualization.KVM_PVM ? "; " + KVM_PVM_HINT : "";
            return StopReason.of(StopReason.Kind.CRASH, "KVM internal error (suberror " + e.suberror() + suberrorName(e.suberror())
                    + ") on " + where + hint);
        }
        if (exit instanceof VcpuExit.FailEntry f) {
            return StopReason.of(StopReason.Kind.CRASH, String.format("KVM entry failed (hardware reason 0x%x) on %s", f.hardwareEntryFailureReason(), where));
        }
        return StopReason.of(StopReason.Kind.CRASH, "unexpected exit " + exit + " on " + where);
    }

    private static String suberrorName(int s) {
        return switch (s) {
            case 1 -> ": emulation failure";
            case 2 -> ": simultaneous exceptions";
            case 3 -> ": delivery event";
            case 4 -> ": unexpected exit reason";
            default -> "";
        };
    }

    /** " at RIP 0x..., instruction bytes ..." as far as it can be read; never throws. */
    private static String location(Vcpu vcpu, Vmm vmm, VcpuExit exit) {
        StringBuilder sb = new StringBuilder();
        try {
            Regs regs = vcpu.getRegs();
            Sregs sregs = vcpu.getSregs();
            sb.append(String.format(" at RIP 0x%x", regs.rip));
            byte[] bytes = exit instanceof VcpuExit.InternalError e ? e.instructionBytes() : new byte[0];
            if (bytes.length == 0) {
                long linear = regs.rip + (((sregs.cr0 & 1) == 0 || (sregs.efer & 0x400) == 0) ? sregs.cs.base : 0);
                OptionalLong phys = (sregs.cr0 & 0x80000000L) != 0 ? PageWalk.translate(vmm.memory(), sregs.cr3, linear) : OptionalLong.of(linear);
                if (phys.isPresent()) {
                    for (int n = 15; n > 0 && bytes.length == 0; n--) {
                        if (vmm.memory().contains(GuestAddress.of(phys.getAsLong()), n)) {
                            bytes = vmm.memory().readBytes(GuestAddress.of(phys.getAsLong()), n);
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
}
