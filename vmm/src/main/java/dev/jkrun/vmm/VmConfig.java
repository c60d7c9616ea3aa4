package dev.jkrun.vmm;

import dev.jkrun.init.InitConfig;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * Everything needed to build a VM, as immutable data (krun-vmm's VmResources); {@link VmBuilder} is the fluent way
 * to make one. {@code exec} is the command the guest init runs on the root share; {@code consolePorts} are named
 * ports besides the implicit console; {@code smbiosOemStrings} go into an SMBIOS type 11 table; {@code
 * testExitPort} adds the test-guest toolkit's exit port (0xF4: a 32-bit OUT stops the VM with that status), off for
 * real guests. {@code devices} are the VM's other devices, each its {@link DeviceConfig} record, attached after the
 * shares and disks in this order: a new device type joins here, not as another component.
 */
public record VmConfig(MachineConfig machine, KernelConfig kernel, ConsoleConfig console,
                       List<ConsolePortConfig> consolePorts, List<FsShare> shares, List<DiskConfig> disks,
                       Optional<InitConfig> exec, List<String> smbiosOemStrings, boolean testExitPort,
                       List<DeviceConfig> devices) {
    /** Total bytes of OEM strings one SMBIOS type 11 structure may carry here (it lives in the 64 KiB BIOS area). */
    public static final int MAX_OEM_STRING_BYTES = 4096;

    public VmConfig {
        Objects.requireNonNull(machine, "machine");
        Objects.requireNonNull(kernel, "kernel");
        Objects.requireNonNull(console, "console");
        consolePorts = List.copyOf(consolePorts);
        shares = List.copyOf(shares);
        disks = List.copyOf(disks);
        smbiosOemStrings = List.copyOf(smbiosOemStrings);
        devices = List.copyOf(devices);
        for (DeviceConfig d : devices) {
            if (d instanceof FsShare || d instanceof DiskConfig) {
                throw new ConfigurationException("devices", "shares and disks are listed in shares and disks");
            }
        }
        Set<String> ids = new HashSet<>();
        for (DiskConfig d : disks) {
            if (!ids.add(d.id())) {
                throw new ConfigurationException("disk.id", "'" + d.id() + "' is used twice");
            }
        }
        Set<String> tags = new HashSet<>();
        for (FsShare s : shares) {
            if (!tags.add(s.tag())) {
                throw new ConfigurationException(s.isRoot() ? "fs.root" : "fs.tag",
                        s.isRoot() ? "the root is set twice" : "'" + s.tag() + "' is used twice");
            }
        }
        Set<String> ports = new HashSet<>(List.of("krun-stdin", "krun-stdout", "krun-stderr", "jkrun-control"));
        for (ConsolePortConfig p : consolePorts) {
            if (p.unnamed()) {
                throw new ConfigurationException("console.port", "a port beside the implicit console needs a name");
            }
            if (!ports.add(p.name())) {
                throw new ConfigurationException("console.port", "name '" + p.name() + "' is used twice or reserved");
            }
        }
        int oemBytes = 0;
        for (String s : smbiosOemStrings) {
            if (s.isEmpty() || s.indexOf('\0') >= 0) {
                throw new ConfigurationException("smbios_oem_strings", "strings must be non-empty and without NUL");
            }
            oemBytes += s.getBytes(StandardCharsets.UTF_8).length + 1;
        }
        if (smbiosOemStrings.size() > 255 || oemBytes > MAX_OEM_STRING_BYTES) {
            throw new ConfigurationException("smbios_oem_strings", "at most 255 strings and " + MAX_OEM_STRING_BYTES + " bytes in all");
        }
        if (devices.stream().filter(d -> d instanceof VsockDeviceConfig).count() > 1) {
            throw new ConfigurationException("vsock", "a VM has at most one vsock device");
        }
        if (devices.stream().filter(d -> d instanceof BalloonDeviceConfig).count() > 1) {
            throw new ConfigurationException("balloon", "a VM has at most one balloon device");
        }
        if (devices.stream().filter(d -> d instanceof SerialConsoleConfig).count() > SerialConsoleConfig.MAX) {
            throw new ConfigurationException("serial", "at most " + SerialConsoleConfig.MAX + " serial consoles (COM1 to COM4)");
        }
        if (devices.stream().filter(d -> d instanceof RngDeviceConfig).count() > 1) {
            throw new ConfigurationException("rng", "a VM has at most one rng device");
        }
        Optional<FsShare> root = root(shares);
        if (exec.isPresent() && root.isEmpty()) {
            throw new ConfigurationException("fs.root", "a command needs a root filesystem (a share tagged " + FsShare.ROOT_TAG + ")");
        }
    }

    /** A VM without other devices. */
    public VmConfig(MachineConfig machine, KernelConfig kernel, ConsoleConfig console, List<ConsolePortConfig> consolePorts,
                    List<FsShare> shares, List<DiskConfig> disks, Optional<InitConfig> exec, List<String> smbiosOemStrings,
                    boolean testExitPort) {
        this(machine, kernel, console, consolePorts, shares, disks, exec, smbiosOemStrings, testExitPort, List.of());
    }

    /** A VM without extra console ports or SMBIOS strings. */
    public VmConfig(MachineConfig machine, KernelConfig kernel, ConsoleConfig console, List<FsShare> shares,
                    List<DiskConfig> disks, Optional<InitConfig> exec, boolean testExitPort) {
        this(machine, kernel, console, List.of(), shares, disks, exec, List.of(), testExitPort);
    }

    /** A VM with no shares and no command: a kernel or test guest and its console. */
    public VmConfig(MachineConfig machine, KernelConfig kernel, ConsoleConfig console, boolean testExitPort) {
        this(machine, kernel, console, List.of(), List.of(), Optional.empty(), testExitPort);
    }

    public Optional<FsShare> root() { return root(shares); }

    private static Optional<FsShare> root(List<FsShare> shares) { return shares.stream().filter(FsShare::isRoot).findFirst(); }

    public VmConfig withConsole(ConsoleConfig c) { return new VmConfig(machine, kernel, c, consolePorts, shares, disks, exec, smbiosOemStrings, testExitPort, devices); }

    public VmConfig withTestExitPort(boolean on) { return new VmConfig(machine, kernel, console, consolePorts, shares, disks, exec, smbiosOemStrings, on, devices); }

    public VmConfig withShares(List<FsShare> s) { return new VmConfig(machine, kernel, console, consolePorts, s, disks, exec, smbiosOemStrings, testExitPort, devices); }

    public VmConfig withDisks(List<DiskConfig> d) { return new VmConfig(machine, kernel, console, consolePorts, shares, d, exec, smbiosOemStrings, testExitPort, devices); }

    public VmConfig withExec(InitConfig e) { return new VmConfig(machine, kernel, console, consolePorts, shares, disks, Optional.of(e), smbiosOemStrings, testExitPort, devices); }

    public VmConfig withSmbiosOemStrings(List<String> s) { return new VmConfig(machine, kernel, console, consolePorts, shares, disks, exec, s, testExitPort, devices); }

    /** Appends another device (attached after the shares, the disks and the devices before it). */
    public VmConfig withDevice(DeviceConfig d) {
        List<DeviceConfig> all = new ArrayList<>(devices);
        all.add(d);
        return new VmConfig(machine, kernel, console, consolePorts, shares, disks, exec, smbiosOemStrings, testExitPort, all);
    }

    /**
     * Every virtio device besides the console, in attach order: the root share first (libkrun), other shares, disks,
     * the rest. Serial consoles are not virtio devices: see {@link #serialConsoles()}.
     */
    public List<DeviceConfig> attachOrder() {
        List<DeviceConfig> all = new ArrayList<>();
        shares.stream().filter(FsShare::isRoot).forEach(all::add);
        shares.stream().filter(s -> !s.isRoot()).forEach(all::add);
        all.addAll(disks);
        devices.stream().filter(d -> !(d instanceof SerialConsoleConfig)).forEach(all::add);
        return all;
    }

    /** The legacy serial consoles, COM1 first (the guest's ttyS0). */
    public List<SerialConsoleConfig> serialConsoles() {
        return devices.stream().filter(d -> d instanceof SerialConsoleConfig).map(d -> (SerialConsoleConfig) d).toList();
    }

    /** Appends a share (the root first, by convention: it fixes the device order and so the guest's view). */
    public VmConfig withShare(FsShare s) {
        List<FsShare> all = new ArrayList<>(shares);
        all.add(s);
        return withShares(all);
    }
}
