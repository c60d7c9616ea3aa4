package dev.jkrun.devices.block;

import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.fail;

/** Runs qemu-img / qemu-io for reference images; tests skip (or fail under CI=true) when they are absent. */
public final class Qemu {
    record Result(int exit, String output) {}

    private Qemu() {}

    public static boolean available() {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":")) {
            if (Files.isExecutable(Path.of(dir, "qemu-img")) && Files.isExecutable(Path.of(dir, "qemu-io"))) {
                return true;
            }
        }
        return false;
    }

    /** Skips the test when qemu-img/qemu-io are missing, unless CI=true, where that is a failure. */
    public static void require() {
        if (available()) {
            return;
        }
        String msg = "qemu-img/qemu-io not found on PATH (apt-get install qemu-utils); skipping qemu reference test";
        if ("true".equalsIgnoreCase(System.getenv("CI"))) {
            fail(msg);
        }
        Assumptions.abort(msg);
    }

    static Result run(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("timed out: " + Arrays.toString(cmd));
        }
        return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    }

    /** Runs and fails the test unless the exit status is 0. */
    public static String ok(String... cmd) throws IOException, InterruptedException {
        Result r = run(cmd);
        if (r.exit() != 0) {
            fail(String.join(" ", cmd) + " exited " + r.exit() + ": " + r.output());
        }
        return r.output();
    }

    /** qemu-io -f fmt with one -c per command. */
    static void io(Path image, String format, List<String> commands) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", format));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(image.toString());
        ok(cmd.toArray(new String[0]));
    }

    /** The image's guest-visible bytes, through qemu-img convert -O raw. */
    static byte[] toRaw(Path image, String format, Path dir) throws IOException, InterruptedException {
        Path raw = Files.createTempFile(dir, "conv", ".raw");
        ok("qemu-img", "convert", "-f", format, "-O", "raw", image.toString(), raw.toString());
        return Files.readAllBytes(raw);
    }
}
