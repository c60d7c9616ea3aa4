package dev.jkrun.vmm.vstate;

import dev.jkrun.hypervisor.Hypervisor;
import dev.jkrun.hypervisor.VcpuDiagnosis;
import dev.jkrun.hypervisor.VcpuExit;
import dev.jkrun.kvm.HostVirtualization;
import dev.jkrun.kvm.Kvm;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.vmm.StopReason;

/**
 * Turns a vCPU exit that ends the guest into a {@link StopReason} saying what is known: the exit, and where the vCPU
 * was as the architecture's {@link VcpuDiagnosis} reads it (on x86_64: RIP and the instruction bytes there).
 */
final class GuestStops {
    static final String KVM_PVM_HINT = "kvm-pvm cannot emulate this; stock kernels need hardware virtualization";
    private static final int KVM_SYSTEM_EVENT_SHUTDOWN = 1, KVM_SYSTEM_EVENT_RESET = 2, KVM_SYSTEM_EVENT_CRASH = 3;

    private GuestStops() {}

    static StopReason describe(VcpuExit exit, Hypervisor.Vcpu vcpu, GuestMemory memory, VcpuDiagnosis diagnosis) {
        String where = "vCPU " + vcpu.id() + diagnosis.location(vcpu, memory, exit);
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
        if (exit instanceof VcpuExit.DataAbortWithoutSyndrome d) {
            return StopReason.of(StopReason.Kind.CRASH, String.format("data abort at guest-physical 0x%x outside RAM"
                    + " that the hypervisor cannot decode into an MMIO access (a load/store pair, a writeback, or"
                    + " no device there; ISS 0x%x) on %s", d.address(), d.esrIss(), where));
        }
        if (exit instanceof VcpuExit.UnhandledException u) {
            return StopReason.of(StopReason.Kind.CRASH, String.format("guest exception the VMM does not handle (ESR_EL2"
                    + " 0x%x, exception class 0x%02x, address 0x%x) on %s", u.syndrome(), (u.syndrome() >>> 26) & 0x3F,
                    u.address(), where));
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
}
