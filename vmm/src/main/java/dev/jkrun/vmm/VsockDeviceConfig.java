package dev.jkrun.vmm;

import dev.jkrun.devices.virtio.vsock.VsockConfig;
import java.util.Objects;

/**
 * The VM's virtio-vsock device (id 19, guest CID 3, host CID 2) with its unix-socket bridges, as libkrun's
 * {@code krun_add_vsock_port2}. A VM has at most one.
 */
public record VsockDeviceConfig(VsockConfig vsock) implements DeviceConfig {
    public VsockDeviceConfig {
        Objects.requireNonNull(vsock, "vsock");
    }
}
