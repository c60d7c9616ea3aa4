package dev.jkrun.init;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The built init.krun, run as PID 1 of fresh namespaces on the host (see GuestInitHarness). */
class GuestInitTest {

    @TempDir
    static Path dir;
    static GuestInitHarness h;

    @BeforeAll
    static void setUp() throws Exception {
        String why = GuestInitHarness.unavailableReason();
        assumeTrue(why == null, () -> "skipped: " + why);
        h = new GuestInitHarness(dir);
    }

    private static InitConfig.Builder sh(String script, String... args) {
        InitConfig.Builder b = InitConfig.builder("/bin/sh").arg("-c").arg(script);
        for (String a : args) {
            b.arg(a);
        }
        return b;
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 42})
    void exitStatusIsReported(int code) throws Exception {
        var r = h.run(sh("exit " + code).build());
        assertEquals(code, r.status(), r.stderr());
        assertEquals(code, r.processExit());
        assertEquals("", r.stderr());
    }

    @Test
    void theCommandsOwn126And127AreItsStatus() throws Exception {
        assertEquals(126, h.run(sh("exit 126").build()).status());
        var r = h.run(sh("exit 127").build());
        assertEquals(127, r.status());
        assertEquals("", r.stderr());
    }

    @Test
    void aNonExecutableFileIs126() throws Exception {
        Path f = h.root.resolve("bin/not-executable");
        Files.writeString(f, "#!/bin/sh\nexit 0\n");
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-r--r--"));
        var r = h.run(InitConfig.builder("/bin/not-executable").build());
        assertEquals(126, r.status());
        assertEquals(List.of("jkrun-init: /bin/not-executable: cannot execute: Permission denied"), r.stderrLines());
    }

    @Test
    void aMissingCommandIs127() throws Exception {
        var r = h.run(InitConfig.builder("no-such-command").build());
        assertEquals(127, r.status());
        assertEquals(List.of("jkrun-init: no-such-command: not found"), r.stderrLines());
    }

    @Test
    void pathSearchUsesTheConfiguredPath() throws Exception {
        var r = h.run(InitConfig.builder("echo").arg("found").env("PATH=/bin").build());
        assertEquals(0, r.status(), r.stderr());
        assertEquals("found\n", r.stdout());
    }

    @Test
    void aSignalledCommandIs128PlusTheSignal() throws Exception {
        assertEquals(137, h.run(sh("kill -9 $$").build()).status());
    }

    @Test
    void theEnvironmentIsExactlyTheConfiguredOne() throws Exception {
        InitConfig.Builder b = InitConfig.builder("env").env("PATH=/bin").env("HOME=/home/x");
        Set<String> expected = new LinkedHashSet<>(List.of("PATH=/bin", "HOME=/home/x"));
        for (int i = 0; i < 200; i++) {
            String item = "VAR_" + i + "=value " + i + " = with spaces 'quotes' \"and\" $dollars";
            b.env(item);
            expected.add(item);
        }
        var r = h.run(b.build());
        assertEquals(0, r.status(), r.stderr());
        assertEquals(expected, new LinkedHashSet<>(r.stdoutLines()));
        assertEquals(expected.size(), r.stdoutLines().size());
    }

    @Test
    void defaultEnvironmentIsPathAndHome() throws Exception {
        var r = h.run(InitConfig.builder("/bin/env").build());
        assertEquals(Set.of("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/"),
                Set.copyOf(r.stdoutLines()));
        var tty = h.run(InitConfig.builder("/bin/env").tty(true).build());
        assertTrue(tty.stdoutLines().contains("TERM=linux"), tty.stdout());
    }

    @Test
    void workdir() throws Exception {
        var r = h.run(InitConfig.builder("/bin/pwd").workdir("/var/tmp").build());
        assertEquals("/var/tmp\n", r.stdout());
    }

    @Test
    void rlimits() throws Exception {
        var r = h.run(sh("ulimit -n; ulimit -Hn; ulimit -Sc; ulimit -Hc").rlimit("NOFILE=123:456")
                .rlimit(new RLimit(RLimit.Resource.CORE, 0, RLimit.UNLIMITED)).build());
        assertEquals(0, r.status(), r.stderr());
        assertEquals(List.of("123", "456", "0", "unlimited"), r.stdoutLines());
    }

    @Test
    void hostname() throws Exception {
        assertEquals("guest-7\n", h.run(InitConfig.builder("hostname").hostname("guest-7").build()).stdout());
        // Without one, init keeps the kernel's name (here the UTS namespace's copy of the host's),
        // and only replaces the kernel default "(none)" with "localhost".
        var r = h.run(InitConfig.builder("hostname").build());
        assertEquals(0, r.status(), r.stderr());
        assertTrue(!r.stdout().isBlank() && !r.stdout().contains("(none)"), r.stdout());
    }

    @Test
    void stdinStdoutAndStderrAreSeparate() throws Exception {
        var r = h.run(sh("cat; echo err >&2").build(), "line 1\nline 2\n");
        assertEquals(0, r.status());
        assertEquals("line 1\nline 2\n", r.stdout());
        assertEquals("err\n", r.stderr());
    }

    @Test
    void hundredKibOfArguments() throws Exception {
        List<String> args = new ArrayList<>();
        int bytes = 0;
        for (int i = 0; bytes < 100 * 1024; i++) {
            String a = "argument-" + i;
            args.add(a);
            bytes += a.length() + 1;
        }
        InitConfig c = sh("echo $#; eval echo \\${$#}", "_").args(args).build();
        assertTrue(c.encode().length > 100 * 1024);
        var r = h.run(c);
        assertEquals(0, r.status(), r.stderr());
        assertEquals(List.of(Integer.toString(args.size()), args.get(args.size() - 1)), r.stdoutLines());
    }

    @Test
    void anOrphanDoesNotDelayTheExit() throws Exception {
        var r = h.run(sh("sleep 10 & exit 3").build());
        assertEquals(3, r.status());
        assertTrue(r.millis() < 5000, "took " + r.millis() + " ms");
    }

    @Test
    void zombiesAreReaped() throws Exception {
        // The orphans' parent (the sh below) exits; init must reap them or they stay zombies.
        var r = h.run(sh("sh -c 'true & true & true &'; sleep 0.3; "
                + "for s in /proc/[0-9]*/stat; do cat $s 2>/dev/null; echo; done | grep -c ') Z ' || true").build());
        assertEquals(0, r.status(), r.stderr());
        assertEquals("0\n", r.stdout());
    }

    @Test
    void aMissingWorkdirIs125WithOneLine() throws Exception {
        var r = h.run(InitConfig.builder("/bin/true").workdir("/no/such/dir").build());
        assertEquals(125, r.status());
        assertEquals(List.of("jkrun-init: workdir /no/such/dir: No such file or directory"), r.stderrLines());
    }

    @Test
    void aBadConfigIs125() throws Exception {
        GuestInitHarness.Run run = new GuestInitHarness.Run();
        run.config = "jkrun-init\0001\0exec\0/bin/true\0color\0blue\0".getBytes(StandardCharsets.UTF_8);
        var r = h.run(run);
        assertEquals(125, r.status());
        assertEquals(List.of("jkrun-init: config: unknown key 'color'"), r.stderrLines());
        run.config = "exec\0/bin/true\0".getBytes(StandardCharsets.UTF_8);
        assertEquals(125, h.run(run).status());
        run.config = "jkrun-init\0001\0exec\0/bin/true\0arg".getBytes(StandardCharsets.UTF_8);
        assertEquals(125, h.run(run).status());
    }

    @Test
    void signalsToInitReachTheCommand() throws Exception {
        GuestInitHarness.Run run = new GuestInitHarness.Run();
        run.config = sh("trap 'echo got TERM; exit 9' TERM; echo ready; while :; do sleep 0.1; done")
                .build().encode();
        run.whileRunning = (unshare, stdout) -> {
            try {
                ProcessHandle init = GuestInitHarness.initProcess(unshare);
                for (int i = 0; i < 1000 && !Files.readString(stdout).contains("ready"); i++) {
                    Thread.sleep(10); // until the trap is set
                }
                new ProcessBuilder("kill", "-TERM", Long.toString(init.pid())).start().waitFor();
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        };
        var r = h.run(run);
        assertEquals(9, r.status(), r.stdout() + r.stderr());
        assertEquals(List.of("ready", "got TERM"), r.stdoutLines());
    }

    @Test
    void aPowerOffRequestOnTheControlPortStopsTheCommandWithSigterm() throws Exception {
        Path ports = h.root.resolve("ports");
        Files.createDirectories(ports.resolve("class/vport1p4"));
        Files.writeString(ports.resolve("class/vport1p4/name"), "jkrun-control\n");
        Files.createDirectories(ports.resolve("dev"));
        Path fifo = ports.resolve("dev/vport1p4");
        Files.deleteIfExists(fifo);
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start().waitFor());
        GuestInitHarness.Run run = new GuestInitHarness.Run();
        run.config = sh("trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done").build().encode();
        run.initEnv.put("JKRUN_INIT_TEST_PORTS", "/ports/class");
        run.whileRunning = (unshare, stdout) -> {
            try {
                for (int i = 0; i < 1000 && !Files.readString(stdout).contains("ready"); i++) {
                    Thread.sleep(10); // until the trap is set
                }
                Files.writeString(fifo, "poweroff\n"); // opens once init's watcher has the port open
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        };
        try {
            var r = h.run(run);
            assertEquals(7, r.status(), r.stdout() + r.stderr());
            assertEquals(List.of("ready", "got TERM"), r.stdoutLines());
        } finally {
            Files.deleteIfExists(fifo);
        }
    }

    @Test
    void libkrunVariablesWithoutAConfigFile() throws Exception {
        GuestInitHarness.Run run = new GuestInitHarness.Run();
        run.initEnv.put("KRUN_INIT", "/bin/sh");
        run.initEnv.put("KRUN_WORKDIR", "/bin");
        run.initEnv.put("KRUN_RLIMITS", "\"7=100:200,RLIMIT_CORE:0:0\"");
        run.initEnv.put("HOSTNAME", "krun");
        run.initEnv.put("FOO", "bar");
        run.initArgs.addAll(List.of("-c", "echo \"$@\"; pwd; ulimit -n; ulimit -c; hostname; echo $FOO; exit 5",
                "zero", "one two"));
        var r = h.run(run);
        assertEquals(5, r.status(), r.stderr());
        assertEquals(List.of("one two", "/bin", "100", "0", "krun", "bar"), r.stdoutLines());
    }

    @Test
    void tsiGivesTheTsiInterfaceItsAddress() throws Exception {
        // The kernel's tsi_hijack turns init's own AF_INET sockets into TSI ones: the address goes over netlink.
        // This host has no dummy interface, so lo stands in for dummy0.
        Files.writeString(h.root.resolve("cmdline-tsi"), "console=hvc0 tsi_hijack quiet -- tsi_hijack_not_this\n");
        GuestInitHarness.Run run = new GuestInitHarness.Run();
        run.config = sh("grep -c '203.0.113.1' /proc/net/fib_trie; cat /sys/class/net/lo/operstate").build().encode();
        run.initEnv.put("JKRUN_INIT_TEST_CMDLINE", "/cmdline-tsi");
        run.initEnv.put("JKRUN_INIT_TEST_TSI_IFACE", "lo");
        var r = h.run(run);
        assertEquals(0, r.status(), r.stderr());
        assertTrue(Integer.parseInt(r.stdoutLines().get(0)) >= 1, "203.0.113.1 on lo: " + r.stdout());
    }

    /**
     * The host end of a veth pair whose other end becomes eth0 in init's network namespace, with dnsmasq serving
     * DHCP there (10.123.0.0/24, router .1, resolver .53); nothing reaches beyond the pair. The server is stopped and
     * the pair removed by the caller.
     */
    private static Process dhcpServer(ProcessHandle unshare, Path dir, boolean serve) throws Exception {
        ProcessHandle init = GuestInitHarness.initProcess(unshare);
        run("ip", "link", "add", "jkdhcp0", "type", "veth", "peer", "name", "eth0", "netns", Long.toString(init.pid()));
        run("ip", "addr", "add", "10.123.0.1/24", "dev", "jkdhcp0");
        run("ip", "link", "set", "jkdhcp0", "up");
        if (!serve) {
            return null;
        }
        return new ProcessBuilder("dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0", "--interface=jkdhcp0",
                "--bind-interfaces", "--dhcp-range=10.123.0.50,10.123.0.60,255.255.255.0,1h",
                "--dhcp-option=option:router,10.123.0.1", "--dhcp-option=option:dns-server,10.123.0.53",
                "--dhcp-option=option:mtu,9000",
                "--dhcp-leasefile=" + dir.resolve("leases"), "--pid-file=" + dir.resolve("dnsmasq.pid"))
                .redirectErrorStream(true).redirectOutput(dir.resolve("dnsmasq.log").toFile()).start();
    }

    /** Makes the veth pair (and with serve, dnsmasq) once init runs; the holder gets the server. */
    private static Process[] linkOnceRunning(GuestInitHarness.Run run, Path dir, boolean serve) {
        Process[] server = new Process[1];
        run.whileRunning = (unshare, stdout) -> {
            try {
                server[0] = dhcpServer(unshare, dir, serve);
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        };
        return server;
    }

    /** Stops the server, removes the pair and what init wrote into the shared test root's /etc. */
    private static void removeLink(Process[] server) throws Exception {
        if (server[0] != null) {
            server[0].destroy();
            server[0].waitFor();
        }
        new ProcessBuilder("ip", "link", "del", "jkdhcp0").start().waitFor();
        removeEtc();
    }

    private static void run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (p.waitFor() != 0) {
            throw new AssertionError(String.join(" ", cmd) + ": " + out);
        }
    }

    @Test
    void dhcpConfiguresTheInterfaceBeforeTheCommand(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/sbin/dnsmasq"))
                || "true".equals(System.getenv("CI")), "dnsmasq is not installed (apt install dnsmasq-base)");
        GuestInitHarness.Run run = new GuestInitHarness.Run();
        run.config = sh("ip -4 addr show eth0 | grep -o 'inet [0-9./]*'; ip route | grep default; cat /etc/resolv.conf;"
                + " echo mtu $(cat /sys/class/net/eth0/mtu)").dhcp("eth0").build().encode();
        Process[] server = linkOnceRunning(run, dir, true);
        try {
            var r = h.run(run);
            assertEquals(0, r.status(), r.stderr() + r.stdout());
            List<String> lines = r.stdoutLines();
            assertTrue(lines.get(0).matches("inet 10\\.123\\.0\\.(5[0-9]|60)/24"), r.stdout());
            assertTrue(lines.get(1).startsWith("default via 10.123.0.1 dev eth0"), r.stdout());
            assertTrue(lines.contains("nameserver 10.123.0.53"), r.stdout());
            assertTrue(lines.contains("mtu 9000"), "the lease's MTU (option 26): " + r.stdout());
        } finally {
            removeLink(server);
        }
    }

    @Test
    void aStaticAddressConfiguresTheInterfaceRouteAndResolvers(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        GuestInitHarness.Run run = new GuestInitHarness.Run();
        run.config = sh("ip -4 addr show eth0 | grep -o 'inet [0-9./]*'; ip route | grep default; cat /etc/resolv.conf;"
                + " busybox ping -c 1 -W 5 10.123.0.1 >/dev/null && echo reached")
                .ipv4(StaticIpv4.parse("eth0", "10.123.0.7/24", "10.123.0.1"))
                .resolvers(new Resolvers(List.of("10.123.0.53"), List.of("example.test"), List.of())).build().encode();
        Process[] server = linkOnceRunning(run, dir, false); // the link alone: init waits for eth0 to appear
        try {
            var r = h.run(run);
            assertEquals(0, r.status(), r.stderr() + r.stdout());
            List<String> lines = r.stdoutLines();
            assertEquals("inet 10.123.0.7/24", lines.get(0), r.stdout());
            assertTrue(lines.get(1).startsWith("default via 10.123.0.1 dev eth0"), r.stdout());
            assertTrue(lines.contains("nameserver 10.123.0.53") && lines.contains("search example.test"), r.stdout());
            assertEquals("reached", lines.get(lines.size() - 1), r.stdout());
        } finally {
            removeLink(server);
        }
    }

    @Test
    void badStaticAddressRecordsAre125WithTheirReason() throws Exception {
        GuestInitHarness.Run run = new GuestInitHarness.Run();
        String[][] cases = {
                {"eth0:10.0.0.2", "ipv4 'eth0:10.0.0.2': expected IFNAME:ADDRESS/PREFIX[:GATEWAY]"},
                {"eth0/x:10.0.0.2/24", "ipv4 'eth0/x:10.0.0.2/24': expected IFNAME:ADDRESS/PREFIX[:GATEWAY]"},
                {"eth0:10.0.0.256/24", "ipv4 eth0: '10.0.0.256' is not an IPv4 address"},
                {"eth0:10.0.0.2/33", "ipv4 eth0: prefix '33' is not 1 to 32"},
                {"eth0:10.0.0.2/+8", "ipv4 eth0: prefix '+8' is not 1 to 32"},
                {"eth0:10.0.0.2/24:gw", "ipv4 eth0: gateway 'gw' is not an IPv4 address"},
        };
        for (String[] c : cases) {
            run.config = ("jkrun-init\0001\0exec\0/bin/true\0ipv4\0" + c[0] + "\0").getBytes(StandardCharsets.UTF_8);
            var r = h.run(run);
            assertEquals(125, r.status(), c[0]);
            assertEquals(List.of("jkrun-init: " + c[1]), r.stderrLines(), c[0]);
        }
        run.config = "jkrun-init\0001\0exec\0/bin/true\0dhcp\0eth0\0ipv4\0eth0:10.0.0.2/24\0".getBytes(StandardCharsets.UTF_8);
        var r = h.run(run);
        assertEquals(List.of("jkrun-init: ipv4 eth0: the interface is configured already"), r.stderrLines());
    }

    @Test
    void noLeaseIsAClearErrorAndStatus125(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        GuestInitHarness.Run run = new GuestInitHarness.Run();
        run.config = sh("echo ran").dhcp("eth0").build().encode();
        run.initEnv.put("JKRUN_INIT_TEST_DHCP_TIMEOUT_MS", "3000");
        Process[] server = linkOnceRunning(run, dir, false); // a link, no server
        try {
            var r = h.run(run);
            assertEquals(125, r.status(), r.stderr());
            assertTrue(r.stderr().contains("dhcp: no DHCP offer on eth0 within 3 s"), r.stderr());
            assertEquals(List.of(), r.stdoutLines(), "the command does not run");
        } finally {
            removeLink(server);
        }
    }

    @Test
    void withoutTsiNoAddressIsAdded() throws Exception {
        Files.writeString(h.root.resolve("cmdline-plain"), "console=hvc0 quiet -- tsi_hijack\n");
        GuestInitHarness.Run run = new GuestInitHarness.Run();
        run.config = sh("grep -c '203.0.113.1' /proc/net/fib_trie; ip=$(cat /sys/class/net/lo/flags); echo $ip").build().encode();
        run.initEnv.put("JKRUN_INIT_TEST_CMDLINE", "/cmdline-plain");
        run.initEnv.put("JKRUN_INIT_TEST_TSI_IFACE", "lo");
        var r = h.run(run);
        assertEquals(List.of("0", "0x9"), r.stdoutLines(), r.stderr()); // lo up (IFF_UP | IFF_LOOPBACK), no TSI address
    }

    @Test
    void readOnlyRootGetsTmpfsOnTmp() throws Exception {
        GuestInitHarness.Run run = new GuestInitHarness.Run();
        run.config = sh("echo x > /tmp/f && cat /tmp/f && grep -c '^tmpfs /tmp ' /proc/mounts; "
                + "(echo y > /f) 2>/dev/null || echo read-only").build().encode();
        var r = runReadOnly(run);
        assertEquals(List.of("x", "1", "read-only"), r.stdoutLines(), r.stderr());
    }

    @Test
    void stdioPorts() throws Exception {
        Path ports = h.root.resolve("ports");
        String[][] names = {{"vport1p1", "krun-stdout"}, {"vport1p2", "krun-stderr"}, {"vport1p3", "krun-stdin"}};
        for (String[] n : names) {
            Files.createDirectories(ports.resolve("class").resolve(n[0]));
            Files.writeString(ports.resolve("class").resolve(n[0]).resolve("name"), n[1] + "\n");
            Files.createDirectories(ports.resolve("dev"));
            Files.writeString(ports.resolve("dev").resolve(n[0]), "");
        }
        Files.writeString(ports.resolve("dev/vport1p3"), "from the stdin port\n");
        GuestInitHarness.Run run = new GuestInitHarness.Run();
        run.config = sh("cat; echo err >&2").stdioPorts(true).build().encode();
        run.initEnv.put("JKRUN_INIT_TEST_PORTS", "/ports/class");
        run.stdin = "from the console\n".getBytes(StandardCharsets.UTF_8);
        var r = h.run(run);
        assertEquals(0, r.status(), r.stderr());
        assertEquals("", r.stdout());
        assertEquals("", r.stderr());
        assertEquals("from the stdin port\n", Files.readString(ports.resolve("dev/vport1p1")));
        assertEquals("err\n", Files.readString(ports.resolve("dev/vport1p2")));
    }

    @Test
    void stdioPortsWithoutTheSysfsDirectoryIs125() throws Exception {
        GuestInitHarness.Run run = new GuestInitHarness.Run();
        run.config = InitConfig.builder("/bin/true").stdioPorts(true).build().encode();
        run.initEnv.put("JKRUN_INIT_TEST_PORTS", "/no-ports");
        var r = h.run(run);
        assertEquals(125, r.status());
        assertEquals(1, r.stderrLines().size(), r.stderr());
    }

    @Test
    void rootDiskIsMountedAndBecomesTheRoot() throws Exception {
        // A tmpfs "disk": the new root is empty, so /bin/sh is no longer there; the status still
        // reaches the report file opened before the switch.
        var r = h.run(InitConfig.builder("/bin/sh").rootDisk(new RootDisk("tmpfs", "tmpfs", "size=1m")).build());
        assertEquals(127, r.status(), r.stderr());
        assertEquals(List.of("jkrun-init: /bin/sh: not found"), r.stderrLines());
        var bad = h.run(InitConfig.builder("/bin/sh").rootDisk(new RootDisk("/dev/no-such-disk", "ext4", "")).build());
        assertEquals(125, bad.status());
        assertEquals(1, bad.stderrLines().size(), bad.stderr());
    }
    // --- /etc/resolv.conf under TSI (provide_resolv_conf) ---

    private static final Resolvers DNS = new Resolvers(List.of("192.0.2.53", "2001:db8::53"), List.of("corp.example"),
            List.of("ndots:2"));
    private static final String WRITTEN = "# jkrun-init: the host's resolvers, reached through TSI\n"
            + "nameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch corp.example\noptions ndots:2\n";

    /** A run with the resolvers in the config and, when tsi, tsi_hijack on the command line. */
    private static GuestInitHarness.Run dnsRun(String script, boolean tsi) throws Exception {
        Files.writeString(h.root.resolve("cmdline-dns"), "console=hvc0 " + (tsi ? "tsi_hijack " : "") + "quiet\n");
        GuestInitHarness.Run run = new GuestInitHarness.Run();
        run.config = sh(script).resolvers(DNS).build().encode();
        run.initEnv.put("JKRUN_INIT_TEST_CMDLINE", "/cmdline-dns");
        run.initEnv.put("JKRUN_INIT_TEST_TSI_IFACE", "lo");
        run.initEnv.put("JKRUN_INIT_DEBUG", "1");
        return run;
    }

    /** Runs with the test root read-only (a read-only bind mount of it) and asserts status 0. */
    private static GuestInitHarness.Result runReadOnly(GuestInitHarness.Run run) throws Exception {
        Path out = Files.createTempDirectory("jkrun-init-ro"); // the report: outside the root, which turns read-only
        try {
            run.reportPath = "/out/report";
            run.wrapper = "set -e; r=" + h.root + "; /usr/bin/mount --bind $r $r; /usr/bin/mount -o remount,bind,ro $r; "
                    + "/usr/bin/mount --bind " + out + " $r/out; exec \"$@\"";
            var r = h.run(run);
            assertTrue(Files.exists(out.resolve("report")), r.stderr());
            assertEquals(0, Integer.parseInt(Files.readString(out.resolve("report")).trim()), r.stderr());
            return r;
        } finally {
            Files.deleteIfExists(out.resolve("report"));
            Files.delete(out);
        }
    }

    private static Path etc() throws Exception {
        return Files.createDirectories(h.root.resolve("etc"));
    }

    private static void removeEtc() throws Exception {
        Path etc = h.root.resolve("etc");
        if (Files.exists(etc, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            try (var s = Files.walk(etc)) {
                for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
                    Files.delete(p);
                }
            }
        }
    }

    @Test
    void tsiWritesAMissingResolvConf() throws Exception {
        try {
            removeEtc(); // not even /etc: init makes it
            var r = h.run(dnsRun("cat /etc/resolv.conf", true));
            assertEquals(0, r.status(), r.stderr());
            assertEquals(WRITTEN, r.stdout(), r.stderr());
            assertEquals(WRITTEN, Files.readString(h.root.resolve("etc/resolv.conf")));
        } finally {
            removeEtc();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "# nothing\n", "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n",
            "nameserver ::1\nnameserver 0.0.0.0\nnameserver ::ffff:127.0.0.1\nnameserver bogus\n"})
    void tsiReplacesAnEmptyOrLoopbackOnlyResolvConfOnAWritableRoot(String old) throws Exception {
        try {
            Files.writeString(etc().resolve("resolv.conf"), old);
            var r = h.run(dnsRun("cat /etc/resolv.conf; grep -c ' /etc/resolv.conf ' /proc/mounts || true", true));
            assertEquals(0, r.status(), r.stderr());
            assertEquals(WRITTEN + "0\n", r.stdout(), r.stderr());
            assertEquals(WRITTEN, Files.readString(h.root.resolve("etc/resolv.conf")), "written in place");
        } finally {
            removeEtc();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"nameserver 127.0.0.53\nnameserver 10.0.0.1\n", "nameserver fe80::1%eth0\n",
            "  nameserver\t198.51.100.7 # a comment\n"})
    void tsiNeverTouchesAResolvConfNamingAnotherServer(String good) throws Exception {
        try {
            Path f = Files.writeString(etc().resolve("resolv.conf"), good);
            var mtime = Files.getLastModifiedTime(f);
            var r = h.run(dnsRun("cat /etc/resolv.conf", true));
            assertEquals(0, r.status(), r.stderr());
            assertEquals(good, r.stdout(), r.stderr());
            assertEquals(good, Files.readString(f));
            assertEquals(mtime, Files.getLastModifiedTime(f));
        } finally {
            removeEtc();
        }
    }

    @Test
    void tsiOvermountsALoopbackOnlyResolvConfOnAReadOnlyRoot() throws Exception {
        try {
            Path f = Files.writeString(etc().resolve("resolv.conf"), "nameserver 127.0.0.53\n");
            var r = runReadOnly(dnsRun("cat /etc/resolv.conf; grep -c ' /etc/resolv.conf ' /proc/mounts; "
                    + "grep -c 192.0.2.53 /run/jkrun/resolv.conf", true));
            assertEquals(WRITTEN + "1\n1\n", r.stdout(), r.stderr());
            assertEquals("nameserver 127.0.0.53\n", Files.readString(f), "the root's file is not written");
        } finally {
            removeEtc();
        }
    }

    @Test
    void tsiCreatesTheTargetOfADanglingResolvConfLinkOnAReadOnlyRoot() throws Exception {
        // The host's own root behind systemd-resolved: /etc/resolv.conf -> ../run/systemd/resolve/stub-resolv.conf,
        // and the guest's /run is a fresh tmpfs.
        try {
            Path link = Files.createSymbolicLink(etc().resolve("resolv.conf"),
                    Path.of("../run/systemd/resolve/stub-resolv.conf"));
            var r = runReadOnly(dnsRun("cat /etc/resolv.conf; grep -c '' /run/systemd/resolve/stub-resolv.conf", true));
            assertEquals(WRITTEN + "5\n", r.stdout(), r.stderr());
            assertTrue(Files.isSymbolicLink(link));
            assertTrue(Files.notExists(h.root.resolve("run/systemd")), "created in the guest's /run tmpfs only");
        } finally {
            removeEtc();
        }
    }

    @Test
    void tsiSkipsAMissingResolvConfOnAReadOnlyRoot() throws Exception {
        try {
            etc();
            var r = runReadOnly(dnsRun("cat /etc/resolv.conf 2>/dev/null || echo missing", true));
            assertEquals("missing\n", r.stdout(), r.stderr());
            assertTrue(r.stderr().contains("/etc/resolv.conf") && r.stderr().contains("left missing"), r.stderr());
            assertTrue(Files.notExists(h.root.resolve("etc/resolv.conf")));
        } finally {
            removeEtc();
        }
    }

    @Test
    void withoutTsiTheResolversAreNotUsed() throws Exception {
        try {
            etc();
            var r = h.run(dnsRun("cat /etc/resolv.conf 2>/dev/null || echo missing", false));
            assertEquals(0, r.status(), r.stderr());
            assertEquals("missing\n", r.stdout());
            Path f = Files.writeString(h.root.resolve("etc/resolv.conf"), "nameserver 127.0.0.53\n");
            r = h.run(dnsRun("cat /etc/resolv.conf", false));
            assertEquals("nameserver 127.0.0.53\n", r.stdout(), r.stderr());
            assertEquals("nameserver 127.0.0.53\n", Files.readString(f));
        } finally {
            removeEtc();
        }
    }

    @Test
    void badDnsRecordsAre125() throws Exception {
        String head = "jkrun-init\0001\0exec\0/bin/true\0";
        String[][] cases = {
            {"dns-server\0localhost\0", "jkrun-init: dns-server 'localhost': not an IPv4 or IPv6 address"},
            {"dns-server\0fe80::1%eth0\0", "jkrun-init: dns-server 'fe80::1%eth0': not an IPv4 or IPv6 address"},
            {"dns-server\0001.1.1.1\0".repeat(4), "jkrun-init: config: more than 3 dns-server records"},
            {"dns-search\0a.example\0", "jkrun-init: config: dns-search or dns-options without a dns-server"},
            {"dns-server\0001.1.1.1\0dns-search\0a\nnameserver 10.0.0.1\0",
                "jkrun-init: dns-search: holds a control or non-ASCII character (byte 1)"},
            {"dns-server\0001.1.1.1\0dns-options\0a  b\0",
                "jkrun-init: dns-options 'a  b': expected words separated by single spaces"},
            {"dns-server\0001.1.1.1\0dns-options\0a\0dns-options\0b\0", "jkrun-init: config: key 'dns-options' given twice"},
        };
        for (String[] c : cases) {
            GuestInitHarness.Run run = new GuestInitHarness.Run();
            run.config = (head + c[0]).getBytes(StandardCharsets.UTF_8);
            var r = h.run(run);
            assertEquals(125, r.status(), c[0]);
            assertEquals(List.of(c[1]), r.stderrLines(), c[0]);
        }
    }
}
