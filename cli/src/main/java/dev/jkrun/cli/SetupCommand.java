package dev.jkrun.cli;

import dev.jkrun.loader.KrunfwBundle;
import dev.jkrun.loader.krunfw.Krunfw;
import java.io.PrintStream;
import java.nio.file.Path;

/** {@code jkrun setup}: finds libkrunfw (or fetches it into the user cache) and prints where it is. */
final class SetupCommand {
    private SetupCommand() {}

    static int run(String[] argv, PrintStream out, PrintStream err) {
        Path explicit = null;
        Args args = new Args(argv);
        for (String o = args.nextOption(); o != null; o = args.nextOption()) {
            if (o.equals("--krunfw")) {
                explicit = Path.of(args.value(o));
            } else {
                throw new Main.UsageException("unknown option " + o + " for setup");
            }
        }
        Path lib = Krunfw.locateOrFetch(explicit, System.getenv(), err);
        KrunfwBundle bundle = KrunfwBundle.load(lib);
        out.println("libkrunfw: " + lib + " (" + bundle.description() + ")");
        return 0;
    }
}
