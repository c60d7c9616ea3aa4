package dev.jkrun.vmm;

/**
 * One device's configuration, as data (Firecracker's style: configuration is data, building is one function). A
 * new device type is a record implementing this and one builder function in {@code builder.Devices}; a VM lists it
 * in {@link VmConfig#devices()}, whose order (after the shares and disks) is the guest-visible attach order.
 */
public interface DeviceConfig {}
