package dev.jkrun.vmm;

/**
 * The VM's virtio-balloon device (id 5) with free page reporting: pages the guest reports free or inflates into the
 * balloon are given back to the host (MADV_DONTNEED), so the host RSS follows what the guest uses. libkrun attaches
 * one to every VM (but TEE ones); so do {@link VmBuilder} (unless {@code balloon(false)}, AVF's
 * {@code setBalloon(false)}), the libkrun interface and {@code jkrun run} (unless {@code --no-balloon}). A VM has at
 * most one. Nothing to configure; at run time {@link VirtualMachine#balloon()} sets its target and reads its stats.
 */
public record BalloonDeviceConfig() implements DeviceConfig {}
