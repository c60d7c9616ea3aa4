package dev.jkrun.devices;

/**
 * Raises a device's interrupt. Under KVM it writes the irqfd bound to the device's GSI; tests count calls.
 * Devices get a Trigger at activation and know nothing else about the hypervisor.
 */
@FunctionalInterface
public interface Trigger {
    void trigger();
}
