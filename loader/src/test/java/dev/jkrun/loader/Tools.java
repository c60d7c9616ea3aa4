package dev.jkrun.loader;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Test helpers shared by the loader tests: compiling tiny C files with the host gcc. */
public final class Tools {
    private Tools() {}

    /** Whether {@code cmd} runs (exit status ignored). */
    public static boolean available(String cmd) {
        try {
            Process p = new ProcessBuilder(cmd, "--version").redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    /** Compiles {@code source} with gcc and {@code flags} into {@code dir/out}; skips the test without gcc. */
    public static Path gcc(Path dir, String out, String source, String... flags) throws IOException, InterruptedException {
        assumeTrue(available("gcc"), "gcc is not installed: skipping a test that builds its own ELF files");
        Path c = dir.resolve(out + ".c");
        Files.writeString(c, source);
        Path o = dir.resolve(out);
        List<String> cmd = new ArrayList<>(List.of("gcc"));
        cmd.addAll(List.of(flags));
        cmd.addAll(List.of("-o", o.toString(), c.toString()));
        run(cmd);
        return o;
    }

    /** Runs a command, failing the test with its output if it exits non-zero; returns stdout+stderr. */
    public static String run(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new AssertionError(String.join(" ", cmd) + " failed:\n" + output);
        }
        return output;
    }
}
