package dev.jkrun.cli;

import dev.jkrun.vmm.ConsoleConfig;
import dev.jkrun.vmm.KernelConfig;
import dev.jkrun.vmm.MachineConfig;
import dev.jkrun.vmm.StopReason;
import dev.jkrun.vmm.VirtualMachine;
import dev.jkrun.vmm.VmConfig;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * {@code jkrun guest ELF}: runs a freestanding test guest (the device-model testing harness) through the same boot
 * path as a kernel. Its debug-port lines (0x3F8) go to stdout; the status it writes to port 0xF4 is ours.
 * The console, if the guest drives one, is this process's stdin/stdout. {@code --serial} puts a 16550A UART on COM1
 * writing to stdout (the debug port is then not at 0x3F8: the guest's lines come through the UART);
 * {@code --split-irqchip} gives the guest jkrun's IOAPIC instead of KVM's.
 */
final class GuestCommand {
    private GuestCommand() {}

    static int run(String[] argv, PrintStream out, PrintStream err) {
        int cpus = 1;
        long memory = 64;
        String cmdline = "";
        long timeout = 600;
        boolean console = false;
        boolean serial = false;
        boolean split = false;
        Args args = new Args(argv);
        for (String o = args.nextOption(); o != null; o = args.nextOption()) {
            switch (o) {
                case "--cpus" -> cpus = args.intValue(o);
                case "--memory" -> memory = args.intValue(o);
                case "--cmdline" -> cmdline = args.value(o);
                case "--timeout" -> timeout = args.intValue(o);
                case "--console" -> console = true;
                case "--serial" -> serial = true;
                case "--split-irqchip" -> split = true;
                case "--log-level" -> Logging.setLevel(args.value(o));
                default -> throw new Main.UsageException("unknown option " + o + " for guest");
            }
        }
        if (args.afterDashes().size() != 1) {
            throw new Main.UsageException("guest needs exactly one ELF after --, e.g. jkrun guest -- guests/target/classes/guests/smp");
        }
        Path elf = Path.of(args.afterDashes().get(0));
        if (!Files.isRegularFile(elf)) {
            throw new Main.UsageException("guest: " + elf + " does not exist");
        }
        VmConfig config = new VmConfig(new MachineConfig(cpus, memory, false, false).withSplitIrqchip(split),
                KernelConfig.elf(elf, cmdline), console ? new ConsoleConfig.Stdio() : new ConsoleConfig.None(), true);
        if (serial) {
            out.flush();
            config = config.withDevice(new dev.jkrun.vmm.SerialConsoleConfig(-1, 1));
        }
        try (VirtualMachine vm = VirtualMachine.create(config, err, out::println)) {
            Optional<StopReason> r = Stops.runFor(vm, timeout, err);
            if (r.isEmpty()) {
                return 124;
            }
            if (r.get().kind() != StopReason.Kind.SHUTDOWN) {
                err.println("jkrun: VM stopped: " + r.get());
            }
            return r.get().processExitStatus();
        }
    }
}
