package dev.jkrun.init;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiConsumer;

/**
 * Runs the built init.krun as PID 1 of new PID, mount, UTS, IPC and network namespaces, chrooted
 * into a test root that holds a static busybox:
 * {@code env -i JKRUN_INIT_TEST_*=... unshare --pid --fork --mount --uts --ipc --net chroot ROOT /init.krun}.
 * The init writes its status to a report file instead of the exit ioctl and exits instead of
 * rebooting. Needs root, unshare, chroot and a static busybox; {@link #unavailableReason()} says
 * what is missing.
 */
final class GuestInitHarness {

    static final List<String> APPLETS = List.of("sh", "cat", "echo", "env", "pwd", "hostname", "sleep", "true",
            "false", "kill", "ls", "grep", "mount", "ip");

    private static final AtomicInteger SEQ = new AtomicInteger();

    final Path root;
    private final Path unshare;
    private final Path chroot;

    record Result(int status, int processExit, String stdout, String stderr, long millis) {
        List<String> stdoutLines() {
            return stdout.lines().toList();
        }

        List<String> stderrLines() {
            return stderr.lines().toList();
        }
    }

    /** What one run gives the init besides the config. */
    static final class Run {
        byte[] config;                      // null: no config file (libkrun KRUN_* fallback)
        byte[] stdin = new byte[0];
        final Map<String, String> initEnv = new LinkedHashMap<>();
        final List<String> initArgs = new ArrayList<>();
        String wrapper;                     // a host sh script run inside the namespaces, "$@" = chroot command
        String reportPath;                  // in the test root; default /report-N
        BiConsumer<ProcessHandle, Path> whileRunning; // (unshare, file receiving stdout)
        long timeoutSeconds = 30;
    }

    static String unavailableReason() {
        if (!isRoot()) {
            return "guest init tests need root (mount, chroot and namespaces)";
        }
        if (findOnPath("unshare").isEmpty() || findOnPath("chroot").isEmpty()) {
            return "guest init tests need util-linux unshare and chroot";
        }
        if (findStaticBusybox().isEmpty()) {
            return "guest init tests need a static busybox (apt-get install busybox-static)";
        }
        return null;
    }

    GuestInitHarness(Path dir) throws IOException {
        this.root = dir;
        this.unshare = findOnPath("unshare").orElseThrow();
        this.chroot = findOnPath("chroot").orElseThrow();
        Path bin = Files.createDirectories(root.resolve("bin"));
        Files.copy(findStaticBusybox().orElseThrow(), bin.resolve("busybox"));
        for (String applet : APPLETS) {
            Files.createSymbolicLink(bin.resolve(applet), Path.of("busybox"));
        }
        for (String d : List.of("proc", "sys", "dev", "tmp", "run", "var/tmp", "out")) {
            Files.createDirectories(root.resolve(d));
        }
        Path init = root.resolve("init.krun");
        Files.write(init, GuestInit.binary());
        Files.setPosixFilePermissions(init, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    Result run(InitConfig config) throws Exception {
        Run r = new Run();
        r.config = config.encode();
        return run(r);
    }

    Result run(InitConfig config, String stdin) throws Exception {
        Run r = new Run();
        r.config = config.encode();
        r.stdin = stdin.getBytes(StandardCharsets.UTF_8);
        return run(r);
    }

    Result run(Run r) throws Exception {
        int n = SEQ.incrementAndGet();
        String configPath = "/config-" + n;
        String reportPath = r.reportPath != null ? r.reportPath : "/report-" + n;
        if (r.config != null) {
            Files.write(root.resolve(configPath.substring(1)), r.config);
        }
        Path report = root.resolve(reportPath.substring(1));
        Files.deleteIfExists(report);
        Path io = Files.createTempDirectory("jkrun-init-io");
        Path in = Files.write(io.resolve("stdin"), r.stdin);

        List<String> cmd = new ArrayList<>(List.of("/usr/bin/env", "-i"));
        // What the kernel would give init; a config run must not leak it into the workload.
        cmd.add("HOME=/");
        cmd.add("TERM=linux");
        cmd.add("JKRUN_INIT_TEST_CONFIG=" + configPath);
        cmd.add("JKRUN_INIT_TEST_REPORT=" + reportPath);
        r.initEnv.forEach((k, v) -> cmd.add(k + "=" + v));
        cmd.addAll(List.of(unshare.toString(), "--pid", "--fork", "--mount", "--uts", "--ipc", "--net"));
        if (r.wrapper != null) {
            cmd.addAll(List.of("/bin/sh", "-c", r.wrapper, "wrapper"));
        }
        cmd.addAll(List.of(chroot.toString(), root.toString(), "/init.krun"));
        cmd.addAll(r.initArgs);

        ProcessBuilder pb = new ProcessBuilder(cmd)
                .redirectInput(in.toFile())
                .redirectOutput(io.resolve("stdout").toFile())
                .redirectError(io.resolve("stderr").toFile());
        long t0 = System.nanoTime();
        Process p = pb.start();
        try {
            if (r.whileRunning != null) {
                r.whileRunning.accept(p.toHandle(), io.resolve("stdout"));
            }
            if (!p.waitFor(r.timeoutSeconds, TimeUnit.SECONDS)) {
                throw new AssertionError("init did not finish within " + r.timeoutSeconds + " s: " + cmd);
            }
        } finally {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
        }
        long millis = (System.nanoTime() - t0) / 1_000_000;
        String status = Files.exists(report) ? Files.readString(report).trim() : "";
        Result res = new Result(status.isEmpty() ? -1 : Integer.parseInt(status), p.exitValue(),
                Files.readString(io.resolve("stdout")), Files.readString(io.resolve("stderr")), millis);
        for (String f : List.of("stdin", "stdout", "stderr")) {
            Files.deleteIfExists(io.resolve(f));
        }
        Files.deleteIfExists(io);
        return res;
    }

    /** The init's host process: the child of unshare, once it exists. */
    static ProcessHandle initProcess(ProcessHandle unshare) throws InterruptedException {
        for (int i = 0; i < 500; i++) {
            Optional<ProcessHandle> child = unshare.children().findFirst();
            if (child.isPresent()) {
                return child.get();
            }
            Thread.sleep(10);
        }
        throw new AssertionError("unshare has no child");
    }

    private static boolean isRoot() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("Uid:")) {
                    return line.split("\\s+")[2].equals("0");
                }
            }
        } catch (IOException e) {
            return false;
        }
        return false;
    }

    static Optional<Path> findOnPath(String name) {
        List<String> dirs = new ArrayList<>(List.of(System.getenv().getOrDefault("PATH", "").split(":")));
        dirs.addAll(List.of("/usr/sbin", "/usr/bin", "/sbin", "/bin"));
        return dirs.stream().filter(d -> !d.isEmpty()).map(d -> Path.of(d, name))
                .filter(Files::isExecutable).findFirst();
    }

    private static Optional<Path> findStaticBusybox() {
        for (String c : List.of("/bin/busybox", "/usr/bin/busybox", "/usr/local/bin/busybox")) {
            Path p = Path.of(c);
            if (Files.isExecutable(p) && isStaticElf(p)) {
                return Optional.of(p);
            }
        }
        return Optional.empty();
    }

    /** A 64-bit little-endian ELF with no PT_INTERP program header. */
    static boolean isStaticElf(Path p) {
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "r")) {
            byte[] h = new byte[64];
            f.readFully(h);
            if (h[0] != 0x7f || h[1] != 'E' || h[2] != 'L' || h[3] != 'F' || h[4] != 2 || h[5] != 1) {
                return false;
            }
            long phoff = le(h, 0x20, 8);
            int phentsize = (int) le(h, 0x36, 2);
            int phnum = (int) le(h, 0x38, 2);
            byte[] ph = new byte[4];
            for (int i = 0; i < phnum; i++) {
                f.seek(phoff + (long) i * phentsize);
                f.readFully(ph);
                if (le(ph, 0, 4) == 3) { // PT_INTERP
                    return false;
                }
            }
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private static long le(byte[] b, int off, int n) {
        long v = 0;
        for (int i = n - 1; i >= 0; i--) {
            v = (v << 8) | (b[off + i] & 0xff);
        }
        return v;
    }
}
