package dev.jkrun.vmm.builder;

import dev.jkrun.devices.virtio.console.ConsolePort;
import dev.jkrun.devices.virtio.console.PortInput;
import dev.jkrun.devices.virtio.console.PortOutput;
import dev.jkrun.devices.virtio.console.VirtioConsole;
import dev.jkrun.libc.Terminal;
import dev.jkrun.vmm.ConfigurationException;
import dev.jkrun.vmm.ConsoleConfig;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.util.List;

/** Builds the implicit console (hvc0) from its configuration, as libkrun's autoconfigure_console_ports does. */
final class Consoles {
    private static final int STDIN = 0, STDOUT = 1;

    private Consoles() {}

    /** The device; anything to undo at stop (the terminal's mode) is added to {@code resources}. */
    static VirtioConsole create(ConsoleConfig config, List<AutoCloseable> resources) {
        if (config instanceof ConsoleConfig.ToFile f) {
            try {
                return new VirtioConsole(List.of(ConsolePort.console(PortInput.empty(), PortOutput.toFile(f.path()))), 0, 0);
            } catch (IOException e) {
                throw new ConfigurationException("console-output", "cannot open " + f.path() + ": " + e.getMessage());
            }
        }
        if (config instanceof ConsoleConfig.Streams s) {
            return new VirtioConsole(List.of(ConsolePort.console(PortInput.of(s.input()), PortOutput.of(s.output()))), 0, 0);
        }
        if (config instanceof ConsoleConfig.Stdio) {
            boolean ttyIn = Terminal.isTerminal(STDIN);
            Terminal.Size size = Terminal.size(ttyIn ? STDIN : STDOUT);
            PortInput in = ttyIn ? PortInput.ofFd(STDIN) : PortInput.empty();
            PortOutput out = PortOutput.of(new FileOutputStream(FileDescriptor.out));
            VirtioConsole console = new VirtioConsole(List.of(ConsolePort.console(in, out)), size.cols(), size.rows());
            if (ttyIn) {
                // Restored when the VM's resources are released, whatever stopped it.
                resources.add(Terminal.enterRaw(STDIN, false));
            }
            return console;
        }
        throw new IllegalArgumentException("no console device for " + config);
    }
}
