package dev.jkrun.krun;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.guests.TestGuests;
import dev.jkrun.kvm.testing.KvmAvailable;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * krun_start_enter's contract on real KVM: it does not return on success and the process exits with the guest's
 * status. Each case runs {@link StartEnterMain} (a program that uses only {@link LibKrun}) in a child JVM and checks
 * its exit status and that nothing ran after krun_start_enter.
 */
class LibKrunStartEnterTest {
    record Child(int status, String stdout, String stderr) {
        @Override
        public String toString() {
            return "status " + status + "\n--- stdout\n" + stdout + "--- stderr\n" + stderr;
        }
    }

    @BeforeEach
    void kvm() {
        KvmAvailable.assumeKvm();
    }

    @Test
    void aCrashingGuestExitsTheProcessWithStatus1() throws Exception {
        Child c = run(TestGuests.path("triple_fault"), "jkrun.test.none");
        assertEquals(1, c.status(), c.toString());
        assertEquals("ENTER\n", c.stdout(), "nothing after krun_start_enter\n" + c);
    }

    @Test
    void aGuestThatResetsTheMachineThroughTheI8042ExitsTheProcessWithStatus0() throws Exception {
        // The console guest sends a line on hvc0 and then writes 0xFE to port 0x64 (jkrun.test.reset).
        Child c = run(TestGuests.path("console"), "jkrun.test.reset");
        assertEquals(0, c.status(), c.toString());
        assertEquals("ENTER\n", c.stdout(), "nothing after krun_start_enter (hvc0 is stdout's only when it is a terminal)\n" + c);
    }

    @Test
    void aWriteToTheShutdownEventfdStopsTheVmAndExitsTheProcess() throws Exception {
        // spin never stops by itself: only the eventfd (written 1 s after entering) can end it.
        Child c = run(TestGuests.path("spin"), "jkrun.test.none", "eventfd");
        assertEquals(137, c.status(), "stopped from the host\n" + c);
        assertEquals("ENTER\n", c.stdout(), c.toString());
    }

    /**
     * krun_setuid/krun_setgid: once the VM is built and before the guest runs, every thread of the process (the JVM's
     * and the VM's) has uid and gid 65534 and no other group, while the VM keeps running.
     */
    @Test
    void krunSetuidAndSetgidSwitchEveryThreadOfTheProcess() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(procIds("self").contains("Uid: 0 0 0 0"), "needs root to switch ids");
        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), StartEnterMain.class.getName(),
                TestGuests.path("spin").toString(), "jkrun.test.none", "setuid");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try {
            p.getOutputStream().close();
            String want = "[Gid: 65534 65534 65534 65534, Groups: 65534, Uid: 65534 65534 65534 65534]";
            String ids = "";
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (System.nanoTime() < deadline && p.isAlive()) {
                ids = procIds(Long.toString(p.pid()));
                if (ids.equals(want)) {
                    break;
                }
                Thread.sleep(50);
            }
            assertEquals(want, ids, "the distinct id lines of the child's threads");
            Thread.sleep(300);
            assertTrue(p.isAlive(), "the VM runs on after the switch");
            long vcpus = Files.list(Path.of("/proc/" + p.pid() + "/task")).filter(t -> {
                try {
                    return Files.readString(t.resolve("comm")).startsWith("jkrun-vm");
                } catch (IOException e) {
                    return false;
                }
            }).count();
            assertTrue(vcpus > 0, "the VM's threads are among them");
        } finally {
            p.destroyForcibly();
            p.waitFor(30, TimeUnit.SECONDS);
        }
    }

    /** The distinct Uid/Gid/Groups lines of every thread of a process, whitespace collapsed, sorted. */
    private static String procIds(String pid) throws IOException {
        java.util.TreeSet<String> lines = new java.util.TreeSet<>();
        try (var tasks = Files.list(Path.of("/proc/" + pid + "/task"))) {
            for (Path t : tasks.toList()) {
                try {
                    for (String l : Files.readAllLines(t.resolve("status"))) {
                        if (l.startsWith("Uid:") || l.startsWith("Gid:") || l.startsWith("Groups:")) {
                            lines.add(l.replaceAll("\\s+", " ").strip());
                        }
                    }
                } catch (IOException e) {
                    // a thread that ended meanwhile
                }
            }
        }
        return lines.toString();
    }

    @Test
    void krunStartEnterReturnsOnlyWhenTheVmCannotBeBuilt() throws Exception {
        Child c = run(Path.of("/nonexistent/vmlinux"), "x");
        assertEquals(99, c.status(), c.toString());
        assertEquals("ENTER\nRETURNED -22\n", c.stdout(), c.toString());
        assertTrue(c.stderr().contains("kernel.path"), "the reason is logged at error\n" + c);
    }

    private static Child run(Path kernel, String cmdline, String... extra) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), StartEnterMain.class.getName(), kernel.toString(), cmdline));
        cmd.addAll(List.of(extra));
        Process p = new ProcessBuilder(cmd).start();
        p.getOutputStream().close();
        CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> read(p.getInputStream()));
        CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> read(p.getErrorStream()));
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("the child did not exit in 120 s; stdout so far: " + out.getNow("?"));
        }
        return new Child(p.exitValue(), out.join(), err.join());
    }

    private static String read(java.io.InputStream in) {
        try {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "<" + e + ">";
        }
    }
}
