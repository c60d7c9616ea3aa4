package dev.jkrun.cli;

import dev.jkrun.vmm.HostCheck;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Optional;

/** {@code jkrun check}: what this host offers, and the fix for each problem. Status 0 when all is well, else 1. */
final class CheckCommand {
    private CheckCommand() {}

    static int run(String[] argv, PrintStream out, PrintStream err) {
        Optional<Path> krunfw = Optional.empty();
        Args args = new Args(argv);
        for (String o = args.nextOption(); o != null; o = args.nextOption()) {
            if (o.equals("--krunfw")) {
                krunfw = Optional.of(Path.of(args.value(o)));
            } else {
                throw new Main.UsageException("unknown option " + o + " for check");
            }
        }
        HostCheck check = HostCheck.run(krunfw, System.getenv());
        for (HostCheck.Finding f : check.findings()) {
            out.printf("%-4s %-22s %s%n", f.ok() ? "ok" : "FAIL", f.subject(), f.value());
            if (!f.ok()) {
                out.printf("     %-22s fix: %s%n", "", f.fix());
            }
        }
        return check.allOk() ? 0 : 1;
    }
}
