package dev.jkrun.init;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * init's DHCP reply parser (src/main/c/dhcp.c) under src/test/c/dhcp_fuzz.c, built with AddressSanitizer and
 * UBSan: two million mutated replies from fixed seeds, plus the committed inputs in src/test/resources/.../dhcp-inputs
 * (findings and seeds from libFuzzer runs, see dhcp_fuzz.c). A read past a reply, an overflow, or an accepted reply
 * breaking the parser's contract fails the test with the sanitizer's report.
 */
class DhcpParserFuzzTest {

    @Test
    void mutatedRepliesNeverBreakTheParser(@TempDir Path dir) throws Exception {
        Path module = Path.of("").toAbsolutePath();
        Path exe = dir.resolve("dhcp_fuzz");
        run(dir, List.of("gcc", "-g", "-O1", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
                "-fno-sanitize-recover=all", "-I" + module.resolve("src/main/c"),
                module.resolve("src/test/c/dhcp_fuzz.c").toString(), module.resolve("src/main/c/dhcp.c").toString(),
                "-o", exe.toString()));
        List<String> cmd = new ArrayList<>(List.of(exe.toString(), "2000000"));
        Path inputs = module.resolve("src/test/resources/dev/jkrun/init/dhcp-inputs");
        if (Files.isDirectory(inputs)) {
            try (var s = Files.list(inputs)) {
                s.sorted().forEach(p -> cmd.add(p.toString()));
            }
        }
        String out = run(dir, cmd);
        assertTrue(out.matches("(?s).*dhcp_fuzz: 2000000 inputs, [1-9][0-9]* accepted as replies, no finding.*"), out);
    }

    private static String run(Path dir, List<String> cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "timed out: " + cmd);
        assertEquals(0, p.exitValue(), String.join(" ", cmd) + ":\n" + out);
        return out;
    }
}
