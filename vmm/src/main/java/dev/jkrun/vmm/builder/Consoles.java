package dev.jkrun.vmm.builder;

import dev.jkrun.devices.virtio.console.ConsolePort;
import dev.jkrun.devices.virtio.console.PanicWatch;
import dev.jkrun.devices.virtio.console.QueuedInput;
import dev.jkrun.devices.virtio.console.PortInput;
import dev.jkrun.devices.virtio.console.PortOutput;
import dev.jkrun.devices.virtio.console.VirtioConsole;
import dev.jkrun.libc.Terminal;
import dev.jkrun.vmm.ConfigurationException;
import dev.jkrun.vmm.ConsoleConfig;
import dev.jkrun.vmm.ConsolePortConfig;
import java.io.IOException;
import java.util.List;
import java.util.Optional;

/** Builds the implicit console (hvc0) from its configuration, as libkrun's autoconfigure_console_ports does. */
final class Consoles {
    private static final int STDIN = 0, STDOUT = 1, STDERR = 2;
    static final String STDIN_PORT = "krun-stdin", STDOUT_PORT = "krun-stdout", STDERR_PORT = "krun-stderr";
    /** init reads power-off requests here (a line "poweroff"), see init.c's control watcher. */
    static final String CONTROL_PORT = "jkrun-control";
    /** hvc0's output when it has no terminal or file to go to: kernel and init messages, at info level. */
    private static final org.slf4j.Logger GUEST_CONSOLE = org.slf4j.LoggerFactory.getLogger("dev.jkrun.guest.console");

    private Consoles() {}

    /** The console device (null when it would have no port), the panic watch on hvc0, and init's control port. */
    record Built(VirtioConsole device, Optional<PanicWatch> panicWatch, Optional<QueuedInput> control) {}

    /**
     * The console device: the implicit console's ports first (hvc0's output watched for a kernel panic), then
     * {@code extra} named ports, then, when {@code controlPort}, the port jkrun's init listens on for a power-off
     * request. Anything to undo at stop (a terminal's mode) is added to {@code resources}.
     */
    static Built create(ConsoleConfig config, List<ConsolePortConfig> extra, boolean controlPort, List<AutoCloseable> resources) {
        Implicit implicit = config instanceof ConsoleConfig.None ? new Implicit(List.of(), 0, 0) : implicit(config, resources);
        List<ConsolePort> ports = new java.util.ArrayList<>();
        PanicWatch watch = null;
        for (ConsolePort p : implicit.ports()) {
            if (p.console() && watch == null) {
                watch = new PanicWatch(p.output());
                p = new ConsolePort(p.name(), p.input(), watch, true);
            }
            ports.add(p);
        }
        for (ConsolePortConfig p : extra) {
            ports.add(port(p, resources));
        }
        QueuedInput control = null;
        if (controlPort) {
            control = new QueuedInput();
            ports.add(ConsolePort.named(CONTROL_PORT, control, PortOutput.discard()));
        }
        VirtioConsole device = ports.isEmpty() ? null : new VirtioConsole(ports, implicit.cols(), implicit.rows());
        return new Built(device, Optional.ofNullable(watch), Optional.ofNullable(control));
    }

    /** The implicit console's ports and port 0's terminal size. */
    private record Implicit(List<ConsolePort> ports, int cols, int rows) {
    }

    /**
     * A virtio-console device with exactly {@code ports} (krun_add_virtio_console_multiport's): terminal ports are
     * console ports, unnamed ports send no PORT_NAME; the size is the first terminal port's.
     */
    static VirtioConsole multiport(List<ConsolePortConfig> ports, List<AutoCloseable> resources) {
        List<ConsolePort> built = new java.util.ArrayList<>();
        Terminal.Size size = new Terminal.Size(0, 0);
        for (ConsolePortConfig p : ports) {
            ConsolePort port = port(p, resources);
            boolean tty = p instanceof ConsolePortConfig.Fds f && f.tty();
            if (tty && size.cols() == 0 && size.rows() == 0) {
                size = Terminal.size(((ConsolePortConfig.Fds) p).inputFd());
            }
            built.add(new ConsolePort(p.unnamed() ? null : p.name(), port.input(), port.output(), tty));
        }
        return new VirtioConsole(built, size.cols(), size.rows());
    }

    private static ConsolePort port(ConsolePortConfig p, List<AutoCloseable> resources) {
        if (p instanceof ConsolePortConfig.Fds f) {
            if (f.tty() && f.inputFd() >= 0 && Terminal.isTerminal(f.inputFd())) {
                resources.add(Terminal.enterRaw(f.inputFd(), false));
            }
            return ConsolePort.named(f.name(), f.inputFd() >= 0 ? PortInput.ofFd(f.inputFd()) : PortInput.empty(),
                    f.outputFd() >= 0 ? PortOutput.ofFd(f.outputFd()) : PortOutput.discard());
        }
        ConsolePortConfig.Streams s = (ConsolePortConfig.Streams) p;
        return ConsolePort.named(s.name(), s.input() != null ? PortInput.of(s.input()) : PortInput.empty(),
                s.output() != null ? PortOutput.of(s.output()) : PortOutput.discard());
    }

    private static PortOutput consoleLog() {
        return GUEST_CONSOLE.isInfoEnabled() ? PortOutput.lines(l -> GUEST_CONSOLE.info("{}", l)) : PortOutput.discard();
    }

    private static Implicit implicit(ConsoleConfig config, List<AutoCloseable> resources) {
        if (config instanceof ConsoleConfig.ToFile f) {
            try {
                return new Implicit(List.of(ConsolePort.console(PortInput.empty(), PortOutput.toFile(f.path()))), 0, 0);
            } catch (IOException e) {
                throw new ConfigurationException("console.output", "cannot open " + f.path() + ": " + e.getMessage());
            }
        }
        if (config instanceof ConsoleConfig.Streams s) {
            return new Implicit(List.of(ConsolePort.console(PortInput.of(s.input()), PortOutput.of(s.output()))), 0, 0);
        }
        if (config instanceof ConsoleConfig.Piped p) {
            return new Implicit(List.of(
                    ConsolePort.console(PortInput.empty(), consoleLog()),
                    ConsolePort.named(STDIN_PORT, PortInput.of(p.stdin()), PortOutput.discard()),
                    ConsolePort.named(STDOUT_PORT, PortInput.empty(), PortOutput.of(p.stdout())),
                    ConsolePort.named(STDERR_PORT, PortInput.empty(), PortOutput.of(p.stderr()))), 0, 0);
        }
        if (config instanceof ConsoleConfig.Stdio) {
            return autoconfigured(STDIN, STDOUT, STDERR, resources);
        }
        if (config instanceof ConsoleConfig.Fds f) {
            return autoconfigured(f.input(), f.output(), f.error(), resources);
        }
        throw new IllegalArgumentException("no console device for " + config);
    }

    /**
     * libkrun's autoconfigure_console_ports on three host descriptors (negative: none): hvc0 is the terminal where
     * there is one; each of them that is not a terminal gets its own named port (krun-stdin, krun-stdout,
     * krun-stderr), so pipes and files keep their streams apart; hvc0's output goes to the log when no output is a
     * terminal. An input terminal is in raw mode until the VM's resources are released.
     */
    private static Implicit autoconfigured(int inFd, int outFd, int errFd, List<AutoCloseable> resources) {
        boolean ttyIn = tty(inFd), ttyOut = tty(outFd), ttyErr = tty(errFd);
        Terminal.Size size = ttyIn ? Terminal.size(inFd) : ttyOut ? Terminal.size(outFd) : ttyErr ? Terminal.size(errFd)
                : new Terminal.Size(0, 0);
        PortInput in = ttyIn ? PortInput.ofFd(inFd) : PortInput.empty();
        // Raw descriptors, not FileOutputStreams: a stopped terminal or a reader that never reads must not hold
        // a tx thread in write(2) past the VM's stop.
        PortOutput out = ttyOut ? PortOutput.ofFd(outFd) : consoleLog();
        List<ConsolePort> ports = new java.util.ArrayList<>();
        ports.add(ConsolePort.console(in, out));
        if (inFd >= 0 && !ttyIn) {
            ports.add(ConsolePort.named(STDIN_PORT, PortInput.ofFd(inFd), PortOutput.discard()));
        }
        if (outFd >= 0 && !ttyOut) {
            ports.add(ConsolePort.named(STDOUT_PORT, PortInput.empty(), PortOutput.ofFd(outFd)));
        }
        if (errFd >= 0 && !ttyErr) {
            ports.add(ConsolePort.named(STDERR_PORT, PortInput.empty(), PortOutput.ofFd(errFd)));
        }
        if (ttyIn) {
            resources.add(Terminal.enterRaw(inFd, false)); // restored whatever stopped the VM
        }
        return new Implicit(ports, size.cols(), size.rows());
    }

    private static boolean tty(int fd) { return fd >= 0 && Terminal.isTerminal(fd); }

    /**
     * A further virtio-console device autoconfigured on three host descriptors (krun_add_virtio_console_default): the
     * guest's next hvc, ports as {@link #autoconfigured}.
     */
    static VirtioConsole extra(int inFd, int outFd, int errFd, List<AutoCloseable> resources) {
        Implicit c = autoconfigured(inFd, outFd, errFd, resources);
        return new VirtioConsole(c.ports(), c.cols(), c.rows());
    }

    /** Whether {@link #create} makes a console device: it has a port (the implicit console, a named one, or init's). */
    static boolean present(ConsoleConfig config, List<ConsolePortConfig> extra, boolean controlPort) {
        return !(config instanceof ConsoleConfig.None) || !extra.isEmpty() || controlPort;
    }

    /** Whether the guest's command reads and writes through named ports rather than hvc0. */
    static boolean usesPorts(ConsoleConfig config) {
        if (config instanceof ConsoleConfig.Fds f) {
            return !(tty(f.input()) && tty(f.output()) && tty(f.error()));
        }
        return config instanceof ConsoleConfig.Piped || (config instanceof ConsoleConfig.Stdio
                && !(Terminal.isTerminal(STDIN) && Terminal.isTerminal(STDOUT) && Terminal.isTerminal(STDERR)));
    }

    /** Whether the command's console is a terminal (it then becomes the controlling terminal). */
    static boolean isTerminal(ConsoleConfig config) {
        return config instanceof ConsoleConfig.Stdio && Terminal.isTerminal(STDIN)
                || config instanceof ConsoleConfig.Fds f && tty(f.input());
    }
}
