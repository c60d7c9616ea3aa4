package dev.jkrun.vmm.builder;

import dev.jkrun.devices.virtio.VirtioDevice;
import dev.jkrun.devices.virtio.balloon.VirtioBalloon;
import dev.jkrun.devices.virtio.rng.VirtioRng;
import dev.jkrun.devices.virtio.vsock.VirtioVsock;
import dev.jkrun.init.InitConfig;
import dev.jkrun.vmm.BalloonDeviceConfig;
import dev.jkrun.vmm.ConfigurationException;
import dev.jkrun.vmm.DeviceConfig;
import dev.jkrun.vmm.DiskConfig;
import dev.jkrun.vmm.FsShare;
import dev.jkrun.vmm.NetDeviceConfig;
import dev.jkrun.vmm.RngDeviceConfig;
import dev.jkrun.vmm.VirtioConsoleConfig;
import dev.jkrun.vmm.VirtioConsolePortsConfig;
import dev.jkrun.vmm.VsockDeviceConfig;
import dev.jkrun.vmm.vstate.VmControl;
import dev.jkrun.devices.fs.dax.DaxWindow;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** Each device type's one build function: its configuration record in, its device out. */
final class Devices {
    private Devices() {}

    /**
     * What building a device may need beyond its own configuration: the command's init config, whether the root
     * share serves jkrun's init (not when the kernel boots an init of the caller's, see {@code KernelConfig.initPath}),
     * the VM's control sink and the resources closed with the VM.
     */
    record Context(Optional<InitConfig> exec, boolean servesInit, VmControl control, List<AutoCloseable> resources,
                   Map<String, DaxWindow> daxWindows) {}

    static VirtioDevice build(DeviceConfig config, Context ctx) {
        if (config instanceof FsShare s) {
            return Shares.device(s, ctx.exec(), ctx.servesInit(), ctx.control()::reportExitStatus,
                    ctx.daxWindows().get(s.tag()));
        }
        if (config instanceof DiskConfig d) {
            return Disks.device(d);
        }
        if (config instanceof VsockDeviceConfig v) {
            return new VirtioVsock(v.vsock());
        }
        if (config instanceof VirtioConsoleConfig c) {
            return Consoles.extra(c.inputFd(), c.outputFd(), c.errorFd(), ctx.resources());
        }
        if (config instanceof VirtioConsolePortsConfig c) {
            return Consoles.multiport(c.ports(), ctx.resources());
        }
        if (config instanceof NetDeviceConfig n) {
            return Nets.device(n, ctx.resources());
        }
        if (config instanceof RngDeviceConfig) {
            return new VirtioRng();
        }
        if (config instanceof BalloonDeviceConfig) {
            return new VirtioBalloon();
        }
        throw new ConfigurationException("devices", "no device for " + config.getClass().getSimpleName());
    }
}
