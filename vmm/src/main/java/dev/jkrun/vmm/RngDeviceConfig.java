package dev.jkrun.vmm;

/**
 * The VM's virtio-rng device (id 4): the guest's {@code /dev/hwrng} reads host entropy. libkrun attaches one to every
 * VM; so do {@link VmBuilder} (unless {@code rng(false)}), the libkrun interface and {@code jkrun run} (unless
 * {@code --no-rng}). A VM has at most one. Nothing to configure.
 */
public record RngDeviceConfig() implements DeviceConfig {}
