package dev.jkrun.vmm;

import dev.jkrun.kvm.Kvm;

/**
 * What the host's hypervisor allows, as the layers above the VMM ask it (the libkrun interface's
 * krun_get_max_vcpus and krun_check_nested_virt): KVM on Linux; Hypervisor.framework answers here too once jkrun
 * runs on it. Throws {@link RuntimeException} when there is no usable hypervisor.
 */
public final class HostHypervisor {
    private HostHypervisor() {}

    /** The vCPUs one VM may have on this host, at most {@link MachineConfig#MAX_VCPUS} (what jkrun builds). */
    public static int maxVcpus() {
        try (Kvm kvm = Kvm.open()) {
            return Math.min(kvm.maxVcpus(), MachineConfig.MAX_VCPUS);
        }
    }

    /** Whether a guest may run a hypervisor of its own (nested virtualization allowed by the host). */
    public static boolean nestedVirtualization() { return Kvm.nestedAllowed(); }
}
