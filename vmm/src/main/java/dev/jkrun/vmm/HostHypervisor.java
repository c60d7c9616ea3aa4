package dev.jkrun.vmm;

import dev.jkrun.hypervisor.Hypervisor;
import dev.jkrun.hvf.Hvf;
import dev.jkrun.hvf.NativeHvf;
import dev.jkrun.kvm.Kvm;

/**
 * The host's hypervisor, the one place above the {@code kvm} and {@code hvf} modules that picks it: KVM on Linux,
 * Hypervisor.framework on macOS. Also what the layers above the VMM ask of it (the libkrun interface's
 * krun_get_max_vcpus and krun_check_nested_virt). Throws {@link RuntimeException} when there is no usable hypervisor.
 */
public final class HostHypervisor {
    private HostHypervisor() {}

    /** Opens the host's hypervisor (KVM: /dev/kvm, its API version checked; macOS: Hypervisor.framework). */
    public static Hypervisor open() {
        return NativeHvf.isMacOs() ? Hvf.open() : Kvm.open();
    }

    /** The vCPUs one VM may have on this host, at most {@link MachineConfig#MAX_VCPUS} (what jkrun builds). */
    public static int maxVcpus() {
        try (Hypervisor hv = open()) {
            return Math.min(hv.maxVcpus(), MachineConfig.MAX_VCPUS);
        }
    }

    /** Whether a guest may run a hypervisor of its own (nested virtualization allowed by the host). */
    public static boolean nestedVirtualization() { return !NativeHvf.isMacOs() && Kvm.nestedAllowed(); }
}
