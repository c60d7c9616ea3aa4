package dev.jkrun.cli;

import dev.jkrun.loader.KernelFormat;
import dev.jkrun.vmm.ConsoleConfig;
import dev.jkrun.vmm.KernelConfig;
import dev.jkrun.vmm.MachineConfig;
import dev.jkrun.vmm.SerialConsoleConfig;
import dev.jkrun.vmm.StopReason;
import dev.jkrun.vmm.VirtualMachine;
import dev.jkrun.vmm.VmConfig;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * {@code jkrun boot}: boots the libkrunfw kernel with {@code console=hvc0} and without {@code quiet}, so its log
 * reaches this terminal, and explains how the VM stopped. Without a root the kernel panics and resets: the VM stops
 * as CRASH with the panic message, the expected end of a boot with nothing to run (status 0); on kvm-pvm it stops at
 * the emulator's first limit (status 1, with exit reason, RIP and instruction bytes).
 */
final class BootCommand {
    private static final int STDOUT = 1;

    private BootCommand() {}

    /** libkrun's KRUN_KERNEL_FORMAT names that x86_64 loads: elf, image-gz, image-zstd, image-bz2, raw. */
    static KernelFormat kernelFormat(String v) throws Main.UsageException {
        return switch (v) {
            case "elf" -> KernelFormat.ELF;
            case "image-gz" -> KernelFormat.IMAGE_GZ;
            case "image-zstd" -> KernelFormat.IMAGE_ZSTD;
            case "image-bz2" -> KernelFormat.IMAGE_BZ2;
            case "raw" -> KernelFormat.RAW;
            default -> throw new Main.UsageException("--kernel-format: elf, image-gz, image-zstd, image-bz2 or raw, got '" + v + "'");
        };
    }

    static int run(String[] argv, PrintStream out, PrintStream err) throws Main.UsageException {
        int cpus = 1;
        long memory = 512;
        Optional<Path> krunfw = Optional.empty();
        Optional<Path> kernel = Optional.empty();
        Optional<Path> initramfs = Optional.empty();
        Optional<Path> firmware = Optional.empty();
        KernelFormat format = KernelFormat.ELF;
        Optional<String> cmdline = Optional.empty();
        List<String> append = new ArrayList<>();
        long timeout = 300;
        boolean serial = false;
        Args args = new Args(argv);
        for (String o = args.nextOption(); o != null; o = args.nextOption()) {
            switch (o) {
                case "--cpus" -> cpus = args.intValue(o);
                case "--memory" -> memory = args.intValue(o);
                case "--krunfw" -> krunfw = Optional.of(Path.of(args.value(o)));
                case "--kernel" -> kernel = Optional.of(Path.of(args.value(o)));
                case "--initramfs" -> initramfs = Optional.of(Path.of(args.value(o)));
                case "--firmware" -> firmware = Optional.of(Path.of(args.value(o)));
                case "--kernel-format" -> format = kernelFormat(args.value(o));
                case "--cmdline" -> cmdline = Optional.of(args.value(o));
                case "--append" -> append.add(args.value(o));
                case "--timeout" -> timeout = args.intValue(o);
                case "--serial" -> serial = true;
                case "--log-level" -> Logging.setLevel(args.value(o));
                default -> throw new Main.UsageException("unknown option " + o + " for boot");
            }
        }
        // Linux's virtio_console registers hvc0 before the port is on its list, so the replay of the early log
        // (the banner included) is dropped in the guest. panic_print=0x20 makes the panic replay the whole log
        // buffer to hvc0, where it arrives, so the boot log is complete when the kernel panics for lack of a root.
        String prolog = KernelConfig.DEFAULT_PROLOG.replace(" quiet", "").replace("panic_print=0", "panic_print=0x20");
        if (serial) {
            prolog = prolog.replace("console=hvc0", "console=ttyS0");
        }
        KernelConfig kc = new KernelConfig(kernel, krunfw, Optional.of(cmdline.orElse(prolog)), append, Optional.empty(),
                initramfs, format, firmware);
        VmConfig config = new VmConfig(new MachineConfig(cpus, memory, false, false), kc,
                new ConsoleConfig.Streams(InputStream.nullInputStream(), out), false);
        if (serial) {
            // The kernel's console on COM1 (a 16550A) writing to this process's stdout, and no virtio console: the
            // 8250 driver replays the whole log when it registers, so no panic_print trick is needed. Without hvc0
            // there is no panic watch: a panic shows as the reset that follows it.
            out.flush();
            config = config.withConsole(new ConsoleConfig.None()).withDevice(new SerialConsoleConfig(-1, STDOUT));
        }
        StopReason reason;
        try (VirtualMachine vm = VirtualMachine.create(config, err, null)) {
            Optional<StopReason> r = Stops.runFor(vm, timeout, err);
            if (r.isEmpty()) {
                return 124;
            }
            reason = r.get();
        }
        out.flush();
        err.println();
        err.println("jkrun: VM stopped: " + reason);
        return switch (reason.kind()) {
            case REBOOT, SHUTDOWN -> reason.processExitStatus();
            case CRASH -> reason.detail().startsWith("kernel panic") ? 0 : 1;
            default -> 1;
        };
    }
}
