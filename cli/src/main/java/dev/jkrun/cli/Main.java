package dev.jkrun.cli;

import java.io.PrintStream;
import java.util.Arrays;

/**
 * The jkrun command. Library code never exits the process; this is the one place that maps outcomes to exit
 * statuses, and it prints one line per error, never a stack trace (unless --log-level debug/trace).
 */
public final class Main {
    /** Status for errors before anything boots (bad option, missing file), as the run-a-command contract wants. */
    static final int USAGE_ERROR = 125;

    private Main() {}

    public static void main(String[] args) {
        int status = run(args, System.out, System.err);
        System.out.flush();
        System.err.flush();
        // Halt rather than System.exit where nothing needs the shutdown: on JDK 21+ Runtime.exit first fetches a
        // System.Logger for its debug line, which boots the JDK's logging and scans every jar on the class path for
        // a LoggerFinder service, interpreted: ~30 ms of a ~250 ms `jkrun guest` here (benchmarks/README.md,
        // "Launcher start-up"). Each command has closed its VM (and so restored the terminal) before it returns;
        // halting still writes a class-data archive that -XX:ArchiveClassesAtExit asked for. System.exit stays where
        // the shutdown matters: when a signal's exit is already running the hooks (RunCommand's closes the VM), so
        // the process ends with that signal's status as before; and with -Djkrun.exit=system, which the launcher
        // passes when the JVM runs an agent or a flight recording, whose data a shutdown hook writes.
        if (!"system".equals(System.getProperty("jkrun.exit")) && !shuttingDown()) {
            Runtime.getRuntime().halt(status);
        }
        System.exit(status);
    }

    /** Whether the JVM is already shutting down (a signal's exit): the runtime then refuses new shutdown hooks. */
    private static boolean shuttingDown() {
        try {
            Thread probe = new Thread(() -> { });
            Runtime.getRuntime().addShutdownHook(probe);
            Runtime.getRuntime().removeShutdownHook(probe);
            return false;
        } catch (IllegalStateException e) {
            return true;
        }
    }

    static int run(String[] args, PrintStream out, PrintStream err) {
        if (args.length == 0 || args[0].equals("--help") || args[0].equals("-h") || args[0].equals("help")) {
            out.println(usage());
            return args.length == 0 ? USAGE_ERROR : 0;
        }
        String[] rest = Arrays.copyOfRange(args, 1, args.length);
        try {
            return switch (args[0]) {
                case "boot" -> BootCommand.run(rest, out, err);
                case "check" -> CheckCommand.run(rest, out, err);
                case "setup" -> SetupCommand.run(rest, out, err);
                case "guest" -> GuestCommand.run(rest, out, err);
                case "run" -> RunCommand.run(rest, out, err);
                default -> {
                    err.println("jkrun: unknown command '" + args[0] + "' (try: jkrun --help)");
                    yield USAGE_ERROR;
                }
            };
        } catch (UsageException e) {
            err.println("jkrun: " + e.getMessage());
            return USAGE_ERROR;
        } catch (RuntimeException e) {
            err.println("jkrun: " + oneLine(e));
            if (Boolean.getBoolean("jkrun.debug")) {
                e.printStackTrace(err);
            }
            return USAGE_ERROR;
        }
    }

    /** The message of the innermost cause that has one, on one line. */
    static String oneLine(Throwable e) {
        Throwable t = e;
        String msg = e.getMessage();
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
            if (t.getMessage() != null) {
                msg = t.getMessage();
            }
        }
        if (msg == null) {
            msg = e.getClass().getSimpleName();
        }
        return msg.replace('\n', ' ');
    }

    static String usage() {
        return String.join("\n",
                "usage: jkrun COMMAND [OPTIONS]",
                "",
                "commands:",
                "  run     run a command in a microVM whose root is a host directory (default: / read-only)",
                "  boot    boot the libkrunfw kernel (or --kernel) with its log on this terminal, report how it stopped",
                "  check   report what this host offers: /dev/kvm, KVM capabilities, hardware or kvm-pvm, libkrunfw",
                "  setup   find libkrunfw, or fetch it into ~/.cache/jkrun, and print where it is",
                "  guest   run a freestanding test guest ELF (jkrun guest [--cpus N] [--memory MIB] [--cmdline S] [--console] [--serial]",
                "          [--split-irqchip] -- ELF)",
                "",
                "run options:  [--cpus N] [--memory MIB] [--root DIR | --layer DIR...] [--fs TAG=DIR[:ro][:setuid][:dax=SIZE]]... [--fs-queues N] [--env K=V]...",
                "              [--workdir DIR]",
                "              [--rlimit NAME=SOFT:HARD]... [--disk ID=PATH[:ro][:raw|qcow2|vmdk][:direct]]...",
                "              [--root-disk DEVICE[:FSTYPE[:OPTIONS]]] [--vsock PORT=PATH[:listen]]...",
                "              [--net tsi|none|passt|unixstream=PATH|unixgram=PATH[:vfkit]|tap=NAME [--mac MAC] [--ip ADDR/PREFIX [--gateway ADDR]]]...",
                "              [--dns ADDR]... [--port HOST:GUEST|all]... [--no-rng] [--no-balloon] [--hyperthreading] [--nested-virt]",
                "              [--split-irqchip]",
                "              [--console-output FILE] [--krunfw PATH | --kernel PATH [--kernel-format F] [--initramfs PATH]] [--cmdline STR]",
                "              [--log-level off|error|warn|info|debug|trace] -- COMMAND [ARGS...]",
                "boot options: [--cpus N] [--memory MIB] [--krunfw PATH] [--kernel PATH] [--kernel-format elf|image-gz|image-zstd|image-bz2|raw]",
                "              [--initramfs PATH] [--firmware PATH] [--cmdline STR]",
                "              [--append WORD]... [--serial] [--timeout SECONDS] [--log-level off|error|warn|info|debug|trace]");
    }

    /** A bad command line: printed as one line, status 125. */
    static final class UsageException extends RuntimeException {
        UsageException(String msg) { super(msg); }
    }
}
