package dev.jkrun.loader.krunfw;

import dev.jkrun.loader.KernelFormatException;
import dev.jkrun.loader.KrunfwBundle;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/**
 * Command-line set-up for build scripts: {@code java -cp ... dev.jkrun.loader.krunfw.KrunfwSetup [--check] [path]}
 * locates libkrunfw (fetching it into the user cache if needed), prints its path on stdout and exits 0; on
 * failure it prints one line on stderr and exits 1. {@code --check} also loads the bundle and prints its
 * description on stderr.
 */
public final class KrunfwSetup {
    private KrunfwSetup() {}

    public static void main(String[] args) {
        boolean check = false;
        Path explicit = null;
        for (String a : args) {
            if (a.equals("--check")) {
                check = true;
            } else if (a.equals("-h") || a.equals("--help")) {
                System.out.println("usage: KrunfwSetup [--check] [path/to/libkrunfw.so.5]");
                return;
            } else {
                explicit = Path.of(a);
            }
        }
        try {
            Path lib = Krunfw.locateOrFetch(explicit, System.getenv(), System.err);
            if (check) {
                System.err.println("jkrun: " + KrunfwBundle.load(lib).description());
            }
            System.out.println(lib);
        } catch (KrunfwFetchException | KrunfwNotFoundException | KernelFormatException | UncheckedIOException e) {
            System.err.println("jkrun: error: " + e.getMessage());
            System.exit(1);
        }
    }
}
