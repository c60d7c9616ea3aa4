package dev.jkrun.cli;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The {@code jkrun} launcher script itself, in a checkout made up for the test (its own copy of the script, a build
 * stamp, a few sources) with a stand-in {@code mvn} and {@code java} that only record how they were called: which
 * changes make it build again before running, and which checkout it finds from the ways it may be invoked.
 */
class LauncherScriptTest {
    @TempDir
    Path tmp;
    Path root, log;

    @BeforeEach
    void checkout() throws IOException {
        root = tmp.resolve("checkout");
        log = tmp.resolve("calls.log");
        Path script = Path.of("..", "jkrun").toAbsolutePath().normalize();
        assertTrue(Files.isRegularFile(script), "the launcher at " + script);
        Files.createDirectories(root);
        Files.copy(script, root.resolve("jkrun"));
        executable(root.resolve("jkrun"));
        for (String f : List.of("pom.xml", "cli/pom.xml", "cli/src/main/java/Main.java", "cli/src/test/java/MainTest.java",
                "devices/src/test/resources/corpus/seed.java", "guests/Makefile", "guests/src/blk.c", "guests/target/obj/blk.c",
                "cli/target/jkrun-cli-0.jar", "cli/target/lib/jkrun-libc-0.jar")) {
            Files.createDirectories(root.resolve(f).getParent());
            Files.writeString(root.resolve(f), "");
        }
        Files.createDirectories(root.resolve(".jkrun"));
        Files.writeString(root.resolve(".jkrun/build-stamp"), "no-ffm\n");
        // a JDK 17 that only says how it was called (no FFM rebuild, and no archive: JKRUN_NO_CDS)
        Path jdk = tmp.resolve("jdk");
        Files.createDirectories(jdk.resolve("bin"));
        Files.writeString(jdk.resolve("release"), "JAVA_VERSION=\"17.0.9\"\n");
        stub(jdk.resolve("bin/java"), "echo \"java $*\" >>" + log);
        stub(jdk.resolve("bin/javac"), "exit 0");
        stub(tmp.resolve("bin/mvn"), "echo \"mvn $*\" >>" + log);
        stub(tmp.resolve("bin/gcc"), "exit 0");
        // every file older than the stamp, as after a build
        FileTime built = FileTime.fromMillis(System.currentTimeMillis() - 60_000);
        try (var all = Files.walk(root)) {
            for (Path p : (Iterable<Path>) all::iterator) {
                Files.setLastModifiedTime(p, built);
            }
        }
        Files.setLastModifiedTime(root.resolve(".jkrun/build-stamp"), FileTime.fromMillis(System.currentTimeMillis() - 30_000));
    }

    @Test
    void buildsAgainOnlyWhenWhatGoesIntoTheJarsOrGuestsChanged() throws Exception {
        assertEquals(List.of("java"), run(root, "./jkrun", "version"), "nothing changed");
        for (String notAnInput : List.of("cli/src/test/java/MainTest.java", "devices/src/test/resources/corpus/seed.java",
                "guests/target/obj/blk.c")) {
            touch(notAnInput);
            assertEquals(List.of("java"), run(root, "./jkrun", "version"), notAnInput + " changed");
        }
        for (String input : List.of("cli/src/main/java/Main.java", "guests/src/blk.c", "guests/Makefile", "pom.xml",
                "cli/pom.xml")) {
            touch(input);
            assertEquals(List.of("mvn", "java"), run(root, "./jkrun", "version"), input + " changed");
            assertEquals(List.of("java"), run(root, "./jkrun", "version"), "after the build that " + input + " asked for");
        }
        touch("cli/src/main/java/Main.java");
        assertEquals(List.of("java"), runEnv(root, List.of("JKRUN_NO_BUILD=1"), "./jkrun", "version"), "JKRUN_NO_BUILD=1");
    }

    @Test
    void findsItsCheckoutHoweverItIsCalled() throws Exception {
        Files.createDirectories(tmp.resolve("elsewhere/deeper"));
        String jar = root.toRealPath() + "/cli/target/jkrun-cli-0.jar";
        record Call(Path cwd, String path) {}
        for (Call c : List.of(new Call(root, "./jkrun"), new Call(root.resolve("cli"), "../jkrun"),
                new Call(tmp.resolve("elsewhere"), root + "/jkrun"), new Call(tmp.resolve("elsewhere/deeper"), "../../checkout/jkrun"),
                new Call(tmp, root + "/./jkrun"), new Call(tmp, root + "/cli/../jkrun"), new Call(tmp, "checkout/jkrun"))) {
            Files.deleteIfExists(log);
            assertEquals(List.of("java"), run(c.cwd(), c.path(), "version"), c.toString());
            String java = Files.readAllLines(log).get(0);
            assertTrue(java.contains(" -cp " + jar + ":"), c + ": " + java);
            assertTrue(java.endsWith(" dev.jkrun.cli.Main version"), java);
        }
    }

    private List<String> run(Path cwd, String... cmd) throws Exception {
        return runEnv(cwd, List.of(), cmd);
    }

    /** Runs the launcher; returns the stand-ins it called, in order. */
    private List<String> runEnv(Path cwd, List<String> env, String... cmd) throws Exception {
        Files.deleteIfExists(log);
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(cwd.toFile()).redirectErrorStream(true);
        pb.environment().keySet().removeIf(k -> k.startsWith("JKRUN_") || k.equals("JAVA_TOOL_OPTIONS")
                || k.equals("JDK_JAVA_OPTIONS"));
        pb.environment().put("PATH", tmp.resolve("bin") + ":/usr/bin:/bin");
        pb.environment().put("JAVA_HOME", tmp.resolve("jdk").toString());
        pb.environment().put("JKRUN_NO_CDS", "1");
        for (String kv : env) {
            pb.environment().put(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
        }
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "launcher did not finish");
        assertEquals(0, p.exitValue(), out);
        List<String> called = new ArrayList<>();
        if (Files.exists(log)) {
            for (String line : Files.readAllLines(log)) {
                called.add(line.substring(0, line.indexOf(' ')));
            }
        }
        return called;
    }

    private void touch(String file) throws IOException {
        Files.setLastModifiedTime(root.resolve(file), FileTime.fromMillis(System.currentTimeMillis()));
    }

    private static void stub(Path file, String body) throws IOException {
        Files.createDirectories(file.getParent());
        Files.writeString(file, "#!/bin/sh\n" + body + "\n");
        executable(file);
    }

    private static void executable(Path file) throws IOException {
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
    }
}
