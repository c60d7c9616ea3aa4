package dev.jkrun.vmm;

import dev.jkrun.init.InitConfig;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * Everything needed to build a VM, as immutable data (krun-vmm's VmResources). {@code exec} is the command the
 * guest init runs on the root share; {@code testExitPort} adds the test-guest toolkit's exit port (0xF4: a 32-bit
 * OUT stops the VM with that status), off for real guests.
 */
public record VmConfig(MachineConfig machine, KernelConfig kernel, ConsoleConfig console, List<FsShare> shares,
                       List<DiskConfig> disks, Optional<InitConfig> exec, boolean testExitPort) {
    public VmConfig {
        Objects.requireNonNull(machine, "machine");
        Objects.requireNonNull(kernel, "kernel");
        Objects.requireNonNull(console, "console");
        shares = List.copyOf(shares);
        disks = List.copyOf(disks);
        Set<String> ids = new HashSet<>();
        for (DiskConfig d : disks) {
            if (!ids.add(d.id())) {
                throw new ConfigurationException("disk", "id '" + d.id() + "' is used twice");
            }
        }
        Set<String> tags = new HashSet<>();
        for (FsShare s : shares) {
            if (!tags.add(s.tag())) {
                throw new ConfigurationException("fs", "tag '" + s.tag() + "' is used twice");
            }
        }
        if (exec.isPresent() && root(shares).isEmpty()) {
            throw new ConfigurationException("root", "a command needs a root filesystem (a share tagged " + FsShare.ROOT_TAG + ")");
        }
    }

    /** A VM with no shares and no command: a kernel or test guest and its console. */
    public VmConfig(MachineConfig machine, KernelConfig kernel, ConsoleConfig console, boolean testExitPort) {
        this(machine, kernel, console, List.of(), List.of(), Optional.empty(), testExitPort);
    }

    public Optional<FsShare> root() { return root(shares); }

    private static Optional<FsShare> root(List<FsShare> shares) { return shares.stream().filter(FsShare::isRoot).findFirst(); }

    public VmConfig withConsole(ConsoleConfig c) { return new VmConfig(machine, kernel, c, shares, disks, exec, testExitPort); }

    public VmConfig withTestExitPort(boolean on) { return new VmConfig(machine, kernel, console, shares, disks, exec, on); }

    public VmConfig withShares(List<FsShare> s) { return new VmConfig(machine, kernel, console, s, disks, exec, testExitPort); }

    public VmConfig withDisks(List<DiskConfig> d) { return new VmConfig(machine, kernel, console, shares, d, exec, testExitPort); }

    public VmConfig withExec(InitConfig e) { return new VmConfig(machine, kernel, console, shares, disks, Optional.of(e), testExitPort); }

    /** Appends a share (the root first, by convention: it fixes the device order and so the guest's view). */
    public VmConfig withShare(FsShare s) {
        List<FsShare> all = new ArrayList<>(shares);
        all.add(s);
        return withShares(all);
    }
}
