package dev.jkrun.vmm;

import java.util.Objects;

/**
 * Everything needed to build a VM, as immutable data (krun-vmm's VmResources). {@code testExitPort} adds the
 * test-guest toolkit's exit port (0xF4: a 32-bit OUT stops the VM with that status), off for real guests.
 */
public record VmConfig(MachineConfig machine, KernelConfig kernel, ConsoleConfig console, boolean testExitPort) {
    public VmConfig {
        Objects.requireNonNull(machine, "machine");
        Objects.requireNonNull(kernel, "kernel");
        Objects.requireNonNull(console, "console");
    }

    public VmConfig withConsole(ConsoleConfig c) { return new VmConfig(machine, kernel, c, testExitPort); }

    public VmConfig withTestExitPort(boolean on) { return new VmConfig(machine, kernel, console, on); }
}
