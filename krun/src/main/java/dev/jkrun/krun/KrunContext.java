package dev.jkrun.krun;

import dev.jkrun.devices.block.ImageFormat;
import dev.jkrun.devices.block.SyncMode;
import dev.jkrun.devices.fs.augment.VirtualEntry;
import dev.jkrun.devices.virtio.vsock.VsockPort;
import dev.jkrun.devices.virtio.vsock.tsi.PortMapping;
import dev.jkrun.init.RLimit;
import dev.jkrun.libc.EventFd;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What the krun_set_* and krun_add_* calls recorded for one context, as libkrun's ContextConfig. Guarded by its own
 * monitor: every access holds {@code synchronized (ctx)}.
 */
final class KrunContext {
    final int id;

    Integer vcpus;
    Long ramMib;
    boolean nestedVirt;
    /** krun_split_irqchip: jkrun's IOAPIC instead of KVM's, no PIC or PIT. */
    boolean splitIrqchip;

    /** krun_set_root: a host directory; krun_set_overlayfs_root: the upper (last) layer. */
    String rootPath;
    /** krun_set_overlayfs_root: the layers below {@link #rootPath}, bottom to top (empty for a plain root). */
    List<String> rootLowerLayers = List.of();
    /** krun_set_root_disk_remount: device, fstype (null = probe), options (may be null). */
    String[] rootDiskRemount;
    final List<Share> shares = new ArrayList<>();
    /** krun_fs_add_overlay_file/dir: each tag's virtual entries in the order added. */
    final Map<String, List<VirtualEntry>> virtualEntries = new HashMap<>();

    /** krun_add_disk*: when non-empty, the legacy root/data disks are ignored (libkrun's get_block_cfg). */
    final List<Disk> disks = new ArrayList<>();
    Disk legacyRootDisk;
    Disk legacyDataDisk;

    String kernelPath;
    String kernelCmdline;
    dev.jkrun.loader.KernelFormat kernelFormat = dev.jkrun.loader.KernelFormat.ELF;
    String initramfsPath;
    String kernelConsole;
    /** krun_set_firmware: booted instead of any kernel. */
    String firmwarePath;

    String execPath;
    List<String> args = List.of();
    /** NAME=VALUE entries; null until krun_set_exec/krun_set_env. */
    List<String> env;
    String workdir;
    List<RLimit> rlimits = List.of();

    String consoleOutput;
    boolean implicitConsoleDisabled;
    boolean implicitInitDisabled;
    /** krun_setuid/krun_setgid: the ids the process switches to before the guest runs. */
    Integer vmmUid;
    Integer vmmGid;
    /** krun_add_virtio_console_multiport devices, each a list of ports. */
    final List<List<Port>> multiportConsoles = new ArrayList<>();
    /** krun_add_serial_console_default's, COM1 first. */
    final List<dev.jkrun.vmm.SerialConsoleConfig> serialConsoles = new ArrayList<>();
    /** krun_add_virtio_console_default's, each a virtio-console device after the implicit one. */
    final List<dev.jkrun.vmm.VirtioConsoleConfig> virtioConsoles = new ArrayList<>();

    List<String> oemStrings = List.of();

    /** krun_add_vsock_port2 bridges, in the order added. */
    final List<VsockPort> vsockPorts = new ArrayList<>();
    boolean implicitVsockDisabled;
    /** krun_add_vsock's TSI features; null: no explicit device. */
    Integer explicitVsockTsi;
    /** krun_set_port_map: the guest ports published on the host. */
    List<PortMapping> portMap = List.of();
    /** krun_set_port_map(NULL): every guest listener published on its own port. */
    boolean publishAll;
    /** krun_set_tsi_scope: what TSI lets the guest reach (libkrun: everything). */
    dev.jkrun.devices.virtio.vsock.tsi.TsiScope tsiScope;

    EventFd shutdownEventFd;

    /** One krun_add_net_* NIC: backend, MAC, offload features. */
    record Net(dev.jkrun.vmm.NetDeviceConfig.Backend backend, byte[] mac, int features, boolean dhcp) {}

    /** krun_add_net_unixstream/unixgram NICs, eth0 first. */
    final List<Net> nets = new ArrayList<>();
    /** krun_set_passt_fd / krun_set_gvproxy_path: the legacy single NIC, added after the others at start. */
    dev.jkrun.vmm.NetDeviceConfig.Backend legacyNet;
    /** krun_set_net_mac: the legacy NIC's MAC (libkrun's default 5a:94:ef:e4:0c:ee otherwise). */
    byte[] legacyMac;

    KrunContext(int id) { this.id = id; }

    boolean hasRoot() {
        return rootPath != null || rootDiskRemount != null
                || shares.stream().anyMatch(s -> s.tag().equals(KrunConstants.KRUN_FS_ROOT_TAG));
    }

    /** Whether a virtio-fs device with {@code tag} was configured (the root by any of the calls that set one). */
    boolean hasShare(String tag) {
        return tag.equals(KrunConstants.KRUN_FS_ROOT_TAG) ? hasRoot() : shares.stream().anyMatch(s -> s.tag().equals(tag));
    }

    /** The virtual entries of {@code tag}, in the order added. */
    List<VirtualEntry> virtualEntries(String tag) { return virtualEntries.getOrDefault(tag, List.of()); }

    /** libkrun's rule: the new-API disks if any, else the legacy root then data disks. */
    List<Disk> effectiveDisks() {
        if (!disks.isEmpty()) {
            return disks;
        }
        List<Disk> legacy = new ArrayList<>();
        if (legacyRootDisk != null) {
            legacy.add(legacyRootDisk);
        }
        if (legacyDataDisk != null) {
            legacy.add(legacyDataDisk);
        }
        return legacy;
    }

    void closeShutdownEventFd() {
        if (shutdownEventFd != null) {
            shutdownEventFd.close();
        }
    }

    record Share(String tag, String path, long shmSize, boolean readOnly) {}

    /** {@code directIo}: krun_add_disk3's {@code direct_io}, kept for raw images only (jkrun has it for no other format). */
    record Disk(String blockId, String path, ImageFormat format, boolean readOnly, SyncMode sync, boolean directIo) {}

    record Port(String name, int inputFd, int outputFd, boolean tty) {}
}
