import dev.jkrun.vmm.StopReason;
import dev.jkrun.vmm.VirtualMachine;
import dev.jkrun.vmm.VmBuilder;
import dev.jkrun.vmm.VmConfig;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import java.util.function.Consumer;

/**
 * Tier 3 for the embedding API: the libkrunfw kernel through VmBuilder and VirtualMachine in one JVM. Run by
 * tests/full-boot.sh where there is hardware (or nested) virtualization; prints PASS/FAIL lines, exits with the
 * number of failures. Argument: a scratch directory on a path the guest can share.
 */
public final class ApiE2E {
    private static int failed;

    public static void main(String[] args) throws Exception {
        Path work = Path.of(args[0]);
        Files.createDirectories(work);
        if (args.length > 1 && args[1].equals("krun-child")) {
            krunChild();
        }
        if (args.length > 2 && args[1].equals("krun-priv-child")) {
            krunPrivChild(Path.of(args[2]));
        }
        if (args.length > 1 && args[1].equals("krun-priv-only")) {
            krunPrivileges(work);
            System.exit(failed);
        }
        if (args.length > 2 && args[1].equals("krun-vsock-child")) {
            krunVsockChild(Path.of(args[2]));
        }
        if (args.length > 1 && args[1].equals("vsock-only")) {
            boxlitePattern(work);
            System.exit(failed);
        }
        if (args.length > 2 && args[1].equals("krun-virtual-child")) {
            krunVirtualRootChild(Path.of(args[2]));
        }
        if (args.length > 1 && args[1].equals("virtual-root-only")) {
            virtualRoot(work);
            System.exit(failed);
        }
        if (args.length > 1 && args[1].equals("dax-only")) {
            dax(work);
            System.exit(failed);
        }
        if (args.length > 1 && args[1].equals("panic-only")) {
            panicCase();
            System.exit(failed);
        }

        // 1. A command's exit status through the builder: SHUTDOWN with that status; stdout carried.
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        StopReason r = run(b -> b.exec(e -> e.path("/bin/sh").args("-c", "echo api-out; exit 7")), out);
        check("builder: SHUTDOWN with the command's status 7", r.kind() == StopReason.Kind.SHUTDOWN
                && r.exitStatus().equals(OptionalInt.of(7)), r);
        check("builder: stdout carried", text(out).contains("api-out"), text(out));

        // 2. stop() through init: the command gets SIGTERM, its status comes back as SHUTDOWN, and data it
        //    fsync'd to a share before the stop is on the host.
        Path share = Files.createDirectories(work.resolve("share"));
        Files.deleteIfExists(share.resolve("kept.txt"));
        ByteArrayOutputStream out2 = new ByteArrayOutputStream();
        VmConfig c = base(out2).fs(f -> f.tag("data").path(share))
                .exec(e -> e.path("/bin/sh").args("-c",
                        "echo fsynced > /mnt/data/kept.txt && sync /mnt/data/kept.txt; echo ready; exec sleep 1000"))
                .build();
        try (VirtualMachine vm = VirtualMachine.create(c).start()) {
            waitFor(out2, "ready", vm);
            long t0 = System.nanoTime();
            StopReason s = vm.stop(Duration.ofSeconds(60));
            long ms = (System.nanoTime() - t0) / 1_000_000;
            check("stop(): orderly SHUTDOWN via init with 128+SIGTERM (" + ms + " ms)",
                    s.kind() == StopReason.Kind.SHUTDOWN && s.exitStatus().equals(OptionalInt.of(143)), s);
        }
        String kept = Files.exists(share.resolve("kept.txt")) ? Files.readString(share.resolve("kept.txt")) : "<missing>";
        check("stop(): fsync'd data is on the host", kept.equals("fsynced\n"), kept);

        // 3. kill(): KILLED, promptly.
        ByteArrayOutputStream out3 = new ByteArrayOutputStream();
        try (VirtualMachine vm = VirtualMachine.create(base(out3).exec(e -> e.path("/bin/sh").args("-c", "echo ready; exec sleep 1000")).build()).start()) {
            waitFor(out3, "ready", vm);
            long t0 = System.nanoTime();
            vm.kill();
            StopReason k = vm.waitForStop(Duration.ofSeconds(30)).orElse(null);
            long ms = (System.nanoTime() - t0) / 1_000_000;
            check("kill(): KILLED within 30 s (" + ms + " ms)", k != null && k.kind() == StopReason.Kind.KILLED, k);
        }

        // 4. A kernel panic is a CRASH with the panic message.
        panicCase();

        // 5. Three VMs at once in this JVM, each with its own status. The three run once more together when one of
        //    them met the emulator's early-boot fault (earlyFault: their commands print nothing to tell it by).
        for (int attempt = 1; ; attempt++) {
            List<VirtualMachine> vms = new ArrayList<>();
            List<StopReason> stops = new ArrayList<>();
            try {
                for (int i = 0; i < 3; i++) {
                    int status = 20 + i;
                    vms.add(VirtualMachine.create(base(new ByteArrayOutputStream())
                            .exec(e -> e.path("/bin/sh").args("-c", "exit " + status)).build()));
                }
                vms.forEach(VirtualMachine::start);
                for (int i = 0; i < 3; i++) {
                    stops.add(awaitStop(vms.get(i), 600));
                }
            } finally {
                vms.forEach(VirtualMachine::close);
            }
            if (attempt == 1 && stops.stream().anyMatch(ApiE2E::earlyFault)) {
                System.out.println("RETRY api: concurrent VMs, the emulator's early-boot fault: " + stops);
                continue;
            }
            for (int i = 0; i < 3; i++) {
                StopReason s = stops.get(i);
                check("concurrent VM " + i + ": SHUTDOWN with status " + (20 + i), s != null
                        && s.kind() == StopReason.Kind.SHUTDOWN && s.exitStatus().equals(OptionalInt.of(20 + i)), s);
            }
            break;
        }

        // 6. The libkrun-compatible interface in a child JVM: krun_start_enter does not return and the process
        //    exits with the command's status.
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-XX:+UseSerialGC", "-XX:UseAVX=0", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-cp", System.getProperty("java.class.path"), "ApiE2E", work.toString(), "krun-child");
        pb.redirectErrorStream(true);
        Process child = pb.start();
        String childOut = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        int childStatus = child.waitFor();
        check("libkrun interface: krun_start_enter exits the process with the command's status 9",
                childStatus == 9 && childOut.contains("krun-guest-out") && !childOut.contains("RETURNED"),
                "status " + childStatus + ", output: " + childOut);

        // 7. BoxLite's vsock pattern through the libkrun interface.
        boxlitePattern(work);

        // 8. krun_setuid/krun_setgid, an extra share libkrun's rule leaves unmounted, the shutdown eventfd's orderly path.
        krunPrivileges(work);

        // 9. A root without a host directory, made of virtual entries only (init, the workload, files, directories).
        virtualRoot(work);

        // 10. A virtio-fs DAX window: the guest mounts with -o dax, reads a file and writes one through mmap.
        dax(work);

        System.out.flush();
        System.exit(failed);
    }

    /**
     * BoxLite's use of libkrun (krun_add_vsock_port2 twice): the host listens on a "ready" unix socket that a
     * listen=false bridge connects the guest to; once the guest agent said it is ready there, the host connects to
     * the listen=true "grpc" bridge and reaches the agent's vsock listener. The VM runs in a child JVM through the
     * libkrun-compatible interface (krun_start_enter does not return).
     */
    private static void boxlitePattern(Path work) throws Exception {
        // Local /tmp: under ./jkrun-nested the work directory is a 9p mount, where a socket file does not lead to
        // its listener.
        Path sockets = Files.createTempDirectory("jkrun-api-vsock");
        Path ready = sockets.resolve("ready.sock"), grpc = sockets.resolve("grpc.sock");
        try (java.nio.channels.ServerSocketChannel server =
                     java.nio.channels.ServerSocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
            server.bind(java.net.UnixDomainSocketAddress.of(ready));
            ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "-XX:+UseSerialGC", "-XX:UseAVX=0", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                    "-cp", System.getProperty("java.class.path"), "ApiE2E", work.toString(), "krun-vsock-child",
                    sockets.toString());
            pb.redirectErrorStream(true);
            pb.redirectOutput(work.resolve("vsock-child.log").toFile());
            Process child = pb.start();
            String said = "", reply = "";
            try {
                server.configureBlocking(false);
                java.nio.channels.SocketChannel agent = null;
                long deadline = System.nanoTime() + Duration.ofSeconds(600).toNanos();
                while (agent == null && child.isAlive() && System.nanoTime() < deadline) {
                    agent = server.accept();
                    if (agent == null) {
                        Thread.sleep(50);
                    }
                }
                if (agent != null) {
                    agent.configureBlocking(true);
                    said = readLine(agent);
                    agent.close();
                    try (java.nio.channels.SocketChannel c =
                                 java.nio.channels.SocketChannel.open(java.net.UnixDomainSocketAddress.of(grpc))) {
                        c.write(java.nio.ByteBuffer.wrap("hello\n".getBytes(StandardCharsets.US_ASCII)));
                        reply = readLine(c);
                    }
                }
            } finally {
                if (!child.waitFor(120, java.util.concurrent.TimeUnit.SECONDS)) {
                    child.destroyForcibly();
                }
            }
            String log = Files.exists(work.resolve("vsock-child.log")) ? Files.readString(work.resolve("vsock-child.log")) : "";
            check("libkrun vsock (BoxLite): the guest connects to the host's ready socket", said.equals("ready"),
                    "got '" + said + "'; child: " + log);
            check("libkrun vsock (BoxLite): the host reaches the guest's listener through the listening bridge",
                    reply.equals("reply-hello"), "got '" + reply + "'; child: " + log);
            check("libkrun vsock (BoxLite): the VM exits 0 and removes the listening socket",
                    !child.isAlive() && child.exitValue() == 0 && !Files.exists(grpc),
                    "status " + (child.isAlive() ? "running" : child.exitValue()) + "; child: " + log);
        }
    }

    private static String readLine(java.nio.channels.SocketChannel c) throws java.io.IOException {
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(1);
        while (line.size() < 256 && c.read(b.clear()) > 0 && b.get(0) != '\n') {
            line.write(b.get(0));
        }
        return line.toString(StandardCharsets.US_ASCII);
    }

    /** BoxLite's calls: krun_add_vsock_port2 for the agent (listen) and the ready channel (connect). */
    private static void krunVsockChild(Path sockets) {
        dev.jkrun.krun.LibKrun krun = dev.jkrun.krun.Jkrun.libkrun();
        int ctx = krun.krun_create_ctx();
        int[] rc = {
            krun.krun_set_vm_config(ctx, 1, 256),
            krun.krun_add_virtiofs3(ctx, "/dev/root", "/", 0, true),
            krun.krun_add_vsock_port2(ctx, 2695, sockets.resolve("grpc.sock").toString(), true),
            krun.krun_add_vsock_port2(ctx, 2696, sockets.resolve("ready.sock").toString(), false),
            krun.krun_set_exec(ctx, "/bin/sh", new String[] {"-c",
                "echo ready | socat -t 5 - VSOCK-CONNECT:2:2696 && socat -T 120 VSOCK-LISTEN:2695 SYSTEM:'read l; echo reply-$l'"},
                new String[0]),
        };
        enter(krun, ctx, rc);
    }

    /**
     * Through the libkrun interface in a child JVM: krun_setuid/krun_setgid(65534) switch every thread of the process
     * once the VM is built; init leaves an extra virtio-fs tag unmounted (libkrun's rule) and the guest mounts it
     * itself; a write to the shutdown eventfd (the child does it on SIGUSR2) is an orderly stop: the command's TERM
     * trap runs and its status is the process's.
     */
    private static void krunPrivileges(Path work) throws Exception {
        Path extra = Files.createDirectories(work.resolve("extra"));
        Files.writeString(extra.resolve("marker"), "extra-marker\n");
        Files.setPosixFilePermissions(extra, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.setPosixFilePermissions(extra.resolve("marker"), java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-XX:+UseSerialGC", "-XX:UseAVX=0", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-cp", System.getProperty("java.class.path"), "ApiE2E", work.toString(), "krun-priv-child", extra.toString());
        pb.redirectErrorStream(true);
        Process child = pb.start();
        child.getOutputStream().close();
        StringBuffer out = new StringBuffer();
        Thread reader = new Thread(() -> {
            try (InputStream in = child.getInputStream()) {
                byte[] buf = new byte[4096];
                for (int n; (n = in.read(buf)) > 0; ) {
                    out.append(new String(buf, 0, n, StandardCharsets.UTF_8));
                }
            } catch (java.io.IOException ignored) {
                // the child went away
            }
        });
        reader.start();
        long deadline = System.nanoTime() + 600_000_000_000L;
        while (!out.toString().contains("guest-ready") && child.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        List<String> ids = new ArrayList<>();
        try (var tasks = Files.list(Path.of("/proc/" + child.pid() + "/task"))) {
            for (Path t : tasks.toList()) {
                for (String line : Files.readAllLines(t.resolve("status"))) {
                    if (line.startsWith("Uid:") || line.startsWith("Gid:") || line.startsWith("Groups:")) {
                        ids.add(line.replaceAll("\\s+", " ").strip());
                    }
                }
            }
        } catch (java.io.IOException e) {
            ids.add("<" + e + ">");
        }
        boolean switched = !ids.isEmpty() && ids.stream().allMatch(l -> l.equals("Uid: 65534 65534 65534 65534")
                || l.equals("Gid: 65534 65534 65534 65534") || l.equals("Groups: 65534"));
        check("krun_setuid/krun_setgid: every thread of the VMM is 65534 while the guest runs ("
                + ids.size() / 3 + " threads)", switched, ids.stream().distinct().toList());
        new ProcessBuilder("kill", "-USR2", Long.toString(child.pid())).inheritIO().start().waitFor();
        boolean exited = child.waitFor(300, java.util.concurrent.TimeUnit.SECONDS);
        if (!exited) {
            child.destroyForcibly();
        }
        reader.join(5000);
        String o = out.toString();
        check("libkrun interface: init leaves an extra tag unmounted; the guest mounts it itself",
                o.contains("extra-not-mounted") && o.contains("extra-marker"), o);
        check("libkrun interface: the shutdown eventfd stops in order (TERM trap ran, status 7)",
                exited && child.exitValue() == 7 && o.contains("got-term"), (exited ? "status " + child.exitValue() : "hung") + ": " + o);
        Files.deleteIfExists(extra.resolve("marker"));
        Files.deleteIfExists(extra);
    }

    /**
     * libkrun's AugmentFs test through jkrun's libkrun interface in a child JVM: krun_add_virtiofs3 with a NULL path
     * for the root, krun_disable_implicit_init, and everything the guest runs added with krun_fs_add_overlay_file/dir:
     * init (krun_get_default_init, one-shot), a static agent (one-shot), files and nested directories. The agent
     * checks what it sees and exits 23 when all passed.
     */
    private static void virtualRoot(Path work) throws Exception {
        Path agent = Path.of(".jkrun/api-e2e/virtual-root-agent").toAbsolutePath();
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-XX:+UseSerialGC", "-XX:UseAVX=0", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-cp", System.getProperty("java.class.path"), "ApiE2E", work.toString(), "krun-virtual-child", agent.toString());
        pb.redirectErrorStream(true);
        Process child = pb.start();
        child.getOutputStream().close();
        String o = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        int status = child.waitFor();
        check("virtual root: init and the agent served from memory ran, every check passed (status 23)",
                status == 23 && o.contains("virtual-root-done 0"), "status " + status + ": " + o);
    }

    /**
     * A share with a 64 MiB DAX window ({@code FsBuilder.shmSize}): the guest kernel finds the window on the transport
     * (its range in /proc/iomem), {@code mount -o dax} succeeds, a file reads through it and an mmap store reaches the
     * host file.
     */
    private static void dax(Path work) throws Exception {
        Path share = Files.createDirectories(work.resolve("dax"));
        Files.writeString(share.resolve("hello.txt"), "dax-hello\n");
        Files.write(share.resolve("m.bin"), new byte[8192]);
        String script = "mkdir -p /tmp/d && mount -t virtiofs daxfs /tmp/d -o dax || echo mount-failed; "
                + "grep daxfs /proc/mounts; grep -i virtio /proc/iomem | sed 's/^/iomem: /'; cat /tmp/d/hello.txt; "
                + "python3 -c \"import mmap; f=open('/tmp/d/m.bin','r+b'); m=mmap.mmap(f.fileno(), 8192); "
                + "m[4096:4105]=b'from-dax!'; m.flush(); print('mmap-wrote', bytes(m[4096:4105]).decode()); m.close()\"; "
                + "umount /tmp/d; echo dax-done";
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        StopReason r = run(b -> b.fs(f -> f.tag("daxfs").path(share).shmSize(64L << 20))
                .exec(e -> e.path("/bin/sh").args("-c", script).mountShares(false)), out);
        String o = text(out);
        byte[] m = Files.readAllBytes(share.resolve("m.bin"));
        String written = new String(m, 4096, 9, StandardCharsets.US_ASCII);
        check("dax: the guest mounts with -o dax and sees the window in /proc/iomem", r.kind() == StopReason.Kind.SHUTDOWN
                && o.contains("dax") && o.contains("iomem: ") && !o.contains("mount-failed"), r + ": " + o);
        check("dax: a file reads through the window", o.contains("dax-hello"), o);
        check("dax: an mmap store reaches the host file", written.equals("from-dax!") && o.contains("mmap-wrote from-dax!"),
                written + " / " + o);
    }

    /**
     * The nested harness's emulator faulting early in boot (nested/README.md: "L2 dies early in boot without a
     * word"): a triple fault at the reset vector, or a reset. Callers also ask that the guest printed nothing.
     */
    private static boolean earlyFault(StopReason r) {
        return r != null && (r.kind() == StopReason.Kind.REBOOT || r.kind() == StopReason.Kind.CRASH
                && java.util.regex.Pattern.compile("triple fault.* at RIP 0xfff0([^0-9a-f]|$)").matcher(r.toString()).find());
    }

    private static void krunVirtualRootChild(Path agentFile) {
        dev.jkrun.krun.LibKrun krun = dev.jkrun.krun.Jkrun.libkrun();
        jnr.ffi.Runtime rt = jnr.ffi.Runtime.getSystemRuntime();
        byte[] agentBytes;
        try {
            agentBytes = Files.readAllBytes(agentFile);
        } catch (java.io.IOException e) {
            System.out.println("RETURNED: no agent " + e);
            System.exit(100);
            return;
        }
        jnr.ffi.Pointer agent = jnr.ffi.Memory.allocateDirect(rt, agentBytes.length);
        agent.put(0, agentBytes, 0, agentBytes.length);
        byte[] payloadBytes = new byte[8192];
        for (int i = 0; i < payloadBytes.length; i++) {
            payloadBytes[i] = (byte) (i % 251);
        }
        jnr.ffi.Pointer payload = jnr.ffi.Memory.allocateDirect(rt, payloadBytes.length);
        payload.put(0, payloadBytes, 0, payloadBytes.length);
        byte[] markerBytes = "virtual-file-marker-content-12345".getBytes(StandardCharsets.US_ASCII);
        jnr.ffi.Pointer marker = jnr.ffi.Memory.allocateDirect(rt, markerBytes.length);
        marker.put(0, markerBytes, 0, markerBytes.length);
        byte[] deepBytes = "deep-nested-content".getBytes(StandardCharsets.US_ASCII);
        jnr.ffi.Pointer deep = jnr.ffi.Memory.allocateDirect(rt, deepBytes.length);
        deep.put(0, deepBytes, 0, deepBytes.length);
        jnr.ffi.byref.PointerByReference init = new jnr.ffi.byref.PointerByReference();
        jnr.ffi.byref.NumberByReference initLen = new jnr.ffi.byref.NumberByReference(jnr.ffi.TypeAlias.size_t);
        int ctx = krun.krun_create_ctx();
        String root = "/dev/root";
        int[] rc = {
            krun.krun_set_vm_config(ctx, 1, 256),
            krun.krun_disable_implicit_init(ctx),
            krun.krun_get_default_init(init, initLen),
            krun.krun_add_virtiofs3(ctx, root, null, 0, false),
            krun.krun_fs_add_overlay_dir(ctx, root, "dev", 040755),
            krun.krun_fs_add_overlay_dir(ctx, root, "proc", 040755),
            krun.krun_fs_add_overlay_dir(ctx, root, "sys", 040755),
            krun.krun_fs_add_overlay_dir(ctx, root, "tmp", 041777),
            krun.krun_fs_add_overlay_file(ctx, root, "init.krun", init.getValue(), initLen.longValue(), 0100755, true),
            krun.krun_fs_add_overlay_file(ctx, root, "agent", agent, agentBytes.length, 0100755, true),
            krun.krun_fs_add_overlay_file(ctx, root, "marker.txt", marker, markerBytes.length, 0100644, false),
            krun.krun_fs_add_overlay_file(ctx, root, "testdata.bin", payload, payloadBytes.length, 0100444, false),
            krun.krun_fs_add_overlay_dir(ctx, root, "etc", 040755),
            krun.krun_fs_add_overlay_dir(ctx, root, "etc/nested", 040755),
            krun.krun_fs_add_overlay_file(ctx, root, "etc/nested/deep.txt", deep, deepBytes.length, 0100644, false),
            krun.krun_set_exec(ctx, "/agent", new String[0], new String[0]),
        };
        enter(krun, ctx, rc);
    }

    public interface Posix {
        long write(int fd, byte[] buf, long count);
    }

    private static void krunPrivChild(Path extra) {
        dev.jkrun.krun.LibKrun krun = dev.jkrun.krun.Jkrun.libkrun();
        int ctx = krun.krun_create_ctx();
        int efd = krun.krun_get_shutdown_eventfd(ctx);
        Posix posix = jnr.ffi.LibraryLoader.create(Posix.class).load("c");
        sun.misc.Signal.handle(new sun.misc.Signal("USR2"), sig -> posix.write(efd, new byte[] {1, 0, 0, 0, 0, 0, 0, 0}, 8));
        int[] rc = {
            efd < 0 ? efd : 0,
            krun.krun_set_vm_config(ctx, 1, 256),
            krun.krun_add_virtiofs3(ctx, "/dev/root", "/", 0, true),
            krun.krun_add_virtiofs(ctx, "extra", extra.toString()),
            krun.krun_setgid(ctx, 65534),
            krun.krun_setuid(ctx, 65534),
            krun.krun_set_exec(ctx, "/bin/sh", new String[] {"-c", "trap 'echo got-term; exit 7' TERM; "
                + "if [ -e /mnt/extra/marker ]; then echo extra-was-mounted; else echo extra-not-mounted; fi; "
                + "mkdir -p /tmp/e && mount -t virtiofs extra /tmp/e && cat /tmp/e/marker; "
                + "echo guest-ready; while :; do sleep 1; done"}, new String[0]),
        };
        enter(krun, ctx, rc);
    }

    /** krun_start_enter once every set-up call succeeded; it never returns unless the VM cannot start (then 101). */
    private static void enter(dev.jkrun.krun.LibKrun krun, int ctx, int[] setUp) {
        for (int r : setUp) {
            if (r < 0) {
                System.out.println("RETURNED " + r + " from set-up");
                System.exit(100);
            }
        }
        int r = krun.krun_start_enter(ctx);
        System.out.println("RETURNED " + r);
        System.exit(101);
    }

    /** Uses only the libkrun-compatible interface, as a program that bound native libkrun would. */
    private static void krunChild() {
        dev.jkrun.krun.LibKrun krun = dev.jkrun.krun.Jkrun.libkrun();
        int ctx = krun.krun_create_ctx();
        int[] rc = {
            krun.krun_set_vm_config(ctx, 1, 256),
            krun.krun_add_virtiofs3(ctx, "/dev/root", "/", 0, true),
            krun.krun_set_exec(ctx, "/bin/sh", new String[] {"-c", "echo krun-guest-out; exit 9"}, new String[0]),
        };
        enter(krun, ctx, rc);
    }

    /**
     * A kernel panic is a CRASH with the panic message. libkrunfw reboots rather than panics when init exits, and has
     * no sysrq; an init= that cannot be executed is a panic ("Requested init ... failed").
     */
    private static void panicCase() throws InterruptedException {
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        VmConfig panic = VmBuilder.create().machine(m -> m.memoryMib(256))
                .fs(f -> f.root(Path.of("/")).readOnly(true))
                .kernel(k -> k.initPath("/no/such/init"))
                .console(con -> con.streams(InputStream.nullInputStream(), console))
                .build();
        try (VirtualMachine vm = VirtualMachine.create(panic).start()) {
            StopReason p = awaitStop(vm, 300);
            check("kernel panic: CRASH with the panic message", p != null && p.kind() == StopReason.Kind.CRASH
                    && p.detail().startsWith("kernel panic: Requested init /no/such/init failed"), p);
        }
    }

    private static VmBuilder base(ByteArrayOutputStream out) {
        return VmBuilder.create().machine(m -> m.memoryMib(256)).fs(f -> f.root(Path.of("/")).readOnly(true))
                .console(con -> con.piped(InputStream.nullInputStream(), out, out));
    }

    /**
     * Runs one VM. A triple fault at the reset vector, or a reset, before the guest printed anything is the nested
     * harness's emulator faulting early in boot (nested/README.md: "L2 dies early in boot without a word"), not the
     * case's: that VM runs once more, with a RETRY line, as full-boot.sh does for its own runs.
     */
    private static StopReason run(Consumer<VmBuilder> setup, ByteArrayOutputStream out) throws InterruptedException {
        for (int attempt = 1; ; attempt++) {
            out.reset();
            VmBuilder b = base(out);
            setup.accept(b);
            StopReason r;
            try (VirtualMachine vm = VirtualMachine.create(b.build()).start()) {
                r = awaitStop(vm, 300);
            }
            if (attempt == 1 && out.size() == 0 && earlyFault(r)) {
                System.out.println("RETRY api: the emulator's early-boot fault: " + r);
                continue;
            }
            return r;
        }
    }

    /**
     * The VM's stop reason, or after {@code seconds} a KILLED "timed out" one, with where its vCPUs were and every
     * thread's stack on stderr first ("ApiE2E: VM hung": full-boot.sh reruns the suite once on that line).
     */
    private static StopReason awaitStop(VirtualMachine vm, int seconds) throws InterruptedException {
        return vm.waitForStop(Duration.ofSeconds(seconds)).orElseGet(() -> {
            vm.vcpuState().forEach(l -> System.err.println("ApiE2E: " + l));
            dumpThreads();
            vm.kill();
            return StopReason.of(StopReason.Kind.KILLED, "timed out after " + seconds + " s");
        });
    }

    /** On a hang: every thread's CPU time and stack on stderr (a spinning vCPU shows as CPU time close to wall time). */
    private static void dumpThreads() {
        java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
        System.err.println("ApiE2E: VM hung; threads (cpu ms, state, top frames):");
        for (java.lang.management.ThreadInfo t : mx.dumpAllThreads(false, false)) {
            System.err.printf("  \"%s\" cpu=%d ms %s%n", t.getThreadName(), mx.getThreadCpuTime(t.getThreadId()) / 1_000_000,
                    t.getThreadState());
            StackTraceElement[] st = t.getStackTrace();
            for (int i = 0; i < Math.min(6, st.length); i++) {
                System.err.println("      at " + st[i]);
            }
        }
    }

    private static void waitFor(ByteArrayOutputStream out, String text, VirtualMachine vm) throws InterruptedException {
        long deadline = System.nanoTime() + 300_000_000_000L;
        while (!text(out).contains(text) && System.nanoTime() < deadline && !vm.stopped().isDone()) {
            Thread.sleep(20);
        }
    }

    private static String text(ByteArrayOutputStream out) {
        synchronized (out) {
            return out.toString(StandardCharsets.UTF_8);
        }
    }

    private static void check(String name, boolean ok, Object detail) {
        if (ok) {
            System.out.println("PASS api: " + name);
        } else {
            failed++;
            System.out.println("FAIL api: " + name);
            System.out.println("  " + detail);
        }
    }
}
