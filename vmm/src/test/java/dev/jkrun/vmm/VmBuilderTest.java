package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.devices.block.ImageFormat;
import dev.jkrun.devices.block.SyncMode;
import dev.jkrun.devices.fs.FileSystem;
import dev.jkrun.devices.virtio.vsock.VsockPort;
import dev.jkrun.devices.virtio.vsock.tsi.TsiConfig;
import dev.jkrun.init.RLimit;
import dev.jkrun.libc.FileDescriptor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The builder's validation, one rule per test: each bad configuration fails at build() and names its field. */
class VmBuilderTest {
    @TempDir
    Path tmp;

    private static void rejects(String field, Consumer<VmBuilder> setup) {
        VmBuilder b = VmBuilder.create();
        setup.accept(b);
        ConfigurationException e = assertThrows(ConfigurationException.class, b::build);
        assertEquals(field, e.field(), e.getMessage());
        assertTrue(e.getMessage().startsWith(field + ": "), e.getMessage());
    }

    private Path root() throws Exception { return Files.createDirectories(tmp.resolve("root")); }

    @Test
    void overlappingOverlayLayers() throws Exception {
        Path lower = Files.createDirectories(tmp.resolve("lower"));
        Path inside = Files.createDirectories(lower.resolve("upper"));
        Path other = Files.createDirectories(tmp.resolve("other"));
        rejects("fs.layers", b -> b.fs(f -> f.tag("t").layers(List.of(lower, inside))));
        rejects("fs.layers", b -> b.fs(f -> f.tag("t").layers(List.of(inside, lower))));
        rejects("fs.layers", b -> b.fs(f -> f.tag("t").layers(List.of(lower, lower))));
        assertEquals(List.of(lower, other), VmBuilder.create().fs(f -> f.tag("t").layers(List.of(lower, other))).build()
                .shares().get(0).layers());
    }

    @Test
    void aValidConfigurationBuildsIntoData() throws Exception {
        Path root = root();
        Path data = Files.createDirectories(tmp.resolve("data"));
        Path disk = Files.write(tmp.resolve("d.img"), new byte[1 << 20]);
        VmConfig c = VmBuilder.create()
                .machine(m -> m.vcpus(2).memoryMib(256).hyperthreading(true))
                .kernel(k -> k.cmdline("loglevel=7 foo=bar"))
                .fs(fs -> fs.root(root).readOnly(true))
                .fs(fs -> fs.tag("data").path(data).shmSize(1 << 20))
                .disk(d -> d.id("vol").path(disk).format(ImageFormat.RAW).sync(SyncMode.NONE))
                .console(con -> con.output(tmp.resolve("console.log")).port("extra", 0, 1))
                .exec(e -> e.path("/bin/sh").args("-c", "true").env("A", "1").workdir("/tmp").rlimit("NOFILE", 1024, 4096))
                .smbiosOemStrings("io.systemd.credential:x=y")
                .build();
        assertEquals(new MachineConfig(2, 256, true, false), c.machine());
        assertFalse(c.machine().splitIrqchip(), "KVM's whole irqchip unless asked");
        assertTrue(VmBuilder.create().machine(m -> m.splitIrqchip(true)).build().machine().splitIrqchip());
        assertEquals(List.of("loglevel=7", "foo=bar"), c.kernel().extraCmdline());
        assertEquals(2, c.shares().size());
        assertTrue(c.root().orElseThrow().readOnly());
        assertEquals(1 << 20, c.shares().get(1).shmSizeBytes());
        assertEquals("vol", c.disks().get(0).id());
        assertEquals(SyncMode.NONE, c.disks().get(0).sync());
        assertEquals(new ConsoleConfig.ToFile(tmp.resolve("console.log")), c.console());
        assertEquals("extra", c.consolePorts().get(0).name());
        assertEquals("/bin/sh", c.exec().orElseThrow().exec());
        assertEquals(List.of("-c", "true"), c.exec().orElseThrow().args());
        assertEquals(List.of("A=1"), c.exec().orElseThrow().env());
        assertEquals(List.of(new RLimit(RLimit.Resource.NOFILE, 1024, 4096)), c.exec().orElseThrow().rlimits());
        assertEquals(List.of("io.systemd.credential:x=y"), c.smbiosOemStrings());
    }

    @Test
    void serialConsolesAreComPortsNotVirtioDevices() {
        VmConfig c = VmBuilder.create().console(x -> x.serial(0, 1).serial(-1, 2)).rng(false).balloon(false).build();
        assertEquals(java.util.List.of(new SerialConsoleConfig(0, 1), new SerialConsoleConfig(-1, 2)), c.serialConsoles());
        assertTrue(c.attachOrder().stream().noneMatch(d -> d instanceof SerialConsoleConfig), "no virtio-mmio slot");
    }

    @Test
    void multiportConsolePortsMayBeUnnamedButNotTwiceNamed() {
        ConsolePortConfig a = new ConsolePortConfig.Fds("", 0, 1, false), b = new ConsolePortConfig.Fds("", 0, 1, false);
        VmConfig c = VmBuilder.create().console(x -> x.multiport(a, b)).build();
        assertEquals(java.util.List.of(new VirtioConsolePortsConfig(java.util.List.of(a, b))),
                c.devices().stream().filter(d -> d instanceof VirtioConsolePortsConfig).toList());
        ConsolePortConfig named = new ConsolePortConfig.Fds("x", 0, 1, false);
        assertEquals("console.port", assertThrows(ConfigurationException.class,
                () -> VmBuilder.create().console(y -> y.multiport(named, named))).field());
        assertEquals("console.port", assertThrows(ConfigurationException.class,
                () -> VmBuilder.create().console(y -> y.multiport())).field());
        rejects("console.port", x -> x.console(y -> y.port("", 0, 1)));
    }

    @Test
    void atMostFourSerialConsoles() {
        rejects("serial", b -> b.console(x -> x.serial(0, 1).serial(0, 1).serial(0, 1).serial(0, 1).serial(0, 1)));
    }

    @Test
    void zeroVcpus() { rejects("machine.vcpus", b -> b.machine(m -> m.vcpus(0))); }

    @Test
    void oddVcpusWithHyperthreading() { rejects("machine.vcpus", b -> b.machine(m -> m.vcpus(3).hyperthreading(true))); }

    @Test
    void zeroMemory() { rejects("machine.memory_mib", b -> b.machine(m -> m.memoryMib(0))); }

    @Test
    void rootSetTwiceInTwoCalls() throws Exception {
        Path root = root();
        rejects("fs.root", b -> b.fs(fs -> fs.root(root)).fs(fs -> fs.root(root)));
    }

    @Test
    void rootSetTwiceInOneCall() throws Exception {
        Path root = root();
        rejects("fs.root", b -> b.fs(fs -> fs.root(root).root(root)));
    }

    @Test
    void duplicateTag() throws Exception {
        Path root = root();
        rejects("fs.tag", b -> b.fs(fs -> fs.tag("a").path(root)).fs(fs -> fs.tag("a").path(root)));
    }

    @Test
    void tagTooLong() throws Exception {
        Path root = root();
        rejects("fs.tag", b -> b.fs(fs -> fs.tag("x".repeat(37)).path(root)));
    }

    @Test
    void shareWithoutTag() throws Exception {
        Path root = root();
        rejects("fs.tag", b -> b.fs(fs -> fs.path(root)));
    }

    @Test
    void shareThatIsNoDirectory() { rejects("fs.path", b -> b.fs(fs -> fs.tag("a").path(tmp.resolve("missing")))); }

    @Test
    void shareWithPathAndCustomBackend() throws Exception {
        Path root = root();
        rejects("fs.custom", b -> b.fs(fs -> fs.tag("a").path(root).custom(() -> new FileSystem() {})));
    }

    @Test
    void aCustomRootServesInitForACommand() {
        // jkrun's init and its config are served over the custom backend (AugmentFs); see SharesTest
        assertTrue(VmBuilder.create().fs(fs -> fs.tag(FsShare.ROOT_TAG).custom(() -> new FileSystem() {}))
                .exec(e -> e.path("/bin/true")).build().root().orElseThrow().backend().isPresent());
    }

    @Test
    void negativeShmSize() throws Exception {
        Path root = root();
        rejects("fs.shm_size", b -> b.fs(fs -> fs.tag("a").path(root).shmSize(-1)));
    }

    @Test
    void missingExecPath() throws Exception {
        Path root = root();
        rejects("exec.path", b -> b.fs(fs -> fs.root(root)).exec(e -> e.args("x")));
    }

    @Test
    void commandWithoutRoot() { rejects("fs.root", b -> b.exec(e -> e.path("/bin/true"))); }

    @Test
    void relativeWorkdir() throws Exception {
        Path root = root();
        rejects("exec.workdir", b -> b.fs(fs -> fs.root(root)).exec(e -> e.path("/bin/true").workdir("tmp")));
    }

    @Test
    void badEnvName() throws Exception {
        Path root = root();
        rejects("exec.env", b -> b.fs(fs -> fs.root(root)).exec(e -> e.path("/bin/true").env("A=B", "1")));
    }

    @Test
    void unknownRlimit() throws Exception {
        Path root = root();
        rejects("exec.rlimit", b -> b.fs(fs -> fs.root(root)).exec(e -> e.path("/bin/true").rlimit("NOPE", 1, 1)));
    }

    @Test
    void rlimitSoftAboveHard() throws Exception {
        Path root = root();
        rejects("exec.rlimit", b -> b.fs(fs -> fs.root(root)).exec(e -> e.path("/bin/true").rlimit("NOFILE", 10, 5)));
    }

    @Test
    void hostnameTooLong() throws Exception {
        Path root = root();
        rejects("exec.hostname", b -> b.fs(fs -> fs.root(root)).exec(e -> e.path("/bin/true").hostname("h".repeat(65))));
    }

    @Test
    void rootDiskWithoutCommand() { rejects("root_disk", b -> b.rootDisk("/dev/vda", "ext4", "")); }

    @Test
    void rootDiskWithColonInDevice() throws Exception {
        Path root = root();
        rejects("root_disk", b -> b.fs(fs -> fs.root(root)).exec(e -> e.path("/bin/true")).rootDisk("/dev/v:da", "ext4", ""));
    }

    @Test
    void diskWithoutPath() { rejects("disk.path", b -> b.disk(d -> d.id("a"))); }

    @Test
    void diskThatIsMissing() { rejects("disk.path", b -> b.disk(d -> d.path(tmp.resolve("missing.img")))); }

    @Test
    void diskFdGrantsNoMoreThanTheDescriptorDoes() throws Exception {
        // /proc/self/fd/N opens the file anew with what its permissions allow: a read-only descriptor must not
        // become a writable disk, nor a write-only one a readable disk
        String img = Files.write(tmp.resolve("fd.img"), new byte[4096]).toString();
        try (FileDescriptor ro = FileDescriptor.open(img, FileDescriptor.O_RDONLY);
                FileDescriptor wo = FileDescriptor.open(img, FileDescriptor.O_WRONLY);
                FileDescriptor rw = FileDescriptor.open(img, FileDescriptor.O_RDWR)) {
            rejects("disk.fd", b -> b.disk(d -> d.id("ro").fd(ro.raw())));
            rejects("disk.fd", b -> b.disk(d -> d.id("ro").readOnly(false).fd(ro.raw())));
            ConfigurationException e = assertThrows(ConfigurationException.class,
                    () -> VmBuilder.create().disk(d -> d.fd(ro.raw())).build());
            assertTrue(e.getMessage().contains("read-only") && e.getMessage().contains("readOnly"), e.getMessage());
            assertTrue(VmBuilder.create().disk(d -> d.fd(ro.raw()).readOnly(true)).build().disks().get(0).readOnly());
            assertFalse(VmBuilder.create().disk(d -> d.fd(rw.raw())).build().disks().get(0).readOnly());
            ConfigurationException w = assertThrows(ConfigurationException.class,
                    () -> VmBuilder.create().disk(d -> d.fd(wo.raw()).readOnly(true)));
            assertEquals("disk.fd", w.field(), w.getMessage());
            assertTrue(w.getMessage().contains("write-only"), w.getMessage());
        }
        for (int bad : new int[] {-1, 999_999}) {
            ConfigurationException e = assertThrows(ConfigurationException.class, () -> VmBuilder.create().disk(d -> d.fd(bad)));
            assertEquals("disk.fd", e.field(), e.getMessage());
        }
        ConfigurationException closed = assertThrows(ConfigurationException.class, () -> VmBuilder.create().disk(d -> d.fd(999_999)));
        assertTrue(closed.getMessage().contains("descriptor 999999 is not open"), closed.getMessage());
    }

    @Test
    void diskIdTooLong() throws Exception {
        Path img = Files.write(tmp.resolve("a.img"), new byte[512]);
        rejects("disk.id", b -> b.disk(d -> d.id("x".repeat(21)).path(img)));
    }

    @Test
    void duplicateDiskId() throws Exception {
        Path img = Files.write(tmp.resolve("a.img"), new byte[512]);
        rejects("disk.id", b -> b.disk(d -> d.id("a").path(img).readOnly(true)).disk(d -> d.id("a").path(img).readOnly(true)));
    }

    @Test
    void directIoPassesThroughToTheDisk() throws Exception {
        Path img = Files.write(tmp.resolve("a.img"), new byte[4096]);
        VmConfig c = VmBuilder.create().fs(fs -> fs.root(tmp)).disk(d -> d.id("fast").path(img).directIo(true))
                .disk(d -> d.id("cached").path(img).readOnly(true)).build();
        assertTrue(c.disks().get(0).directIo());
        assertFalse(c.disks().get(1).directIo(), "off unless asked for");
        assertFalse(DiskConfig.of("x", img, true, ImageFormat.RAW).directIo());
        assertFalse(new DiskConfig("x", img, true, ImageFormat.RAW, SyncMode.FULL, false).directIo());
    }

    @Test
    void directIoOnQcow2() throws Exception {
        Path img = Files.write(tmp.resolve("a.qcow2"), new byte[4096]);
        rejects("disk.direct_io", b -> b.disk(d -> d.id("q").path(img).format(ImageFormat.QCOW2).directIo(true)));
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> new DiskConfig("q", img, false, ImageFormat.VMDK, SyncMode.FULL, false, true));
        assertEquals("disk.direct_io", e.field());
        assertTrue(e.getMessage().contains("'q'") && e.getMessage().contains("raw images only"), e.getMessage());
    }

    @Test
    void duplicateConsolePort() { rejects("console.port", b -> b.console(c -> c.port("p", 0, 1).port("p", 0, 1))); }

    @Test
    void reservedConsolePortName() { rejects("console.port", b -> b.console(c -> c.port("krun-stdout", -1, 1))); }

    @Test
    void missingKrunfw() { rejects("kernel.krunfw_path", b -> b.kernel(k -> k.krunfwPath(tmp.resolve("nope.so")))); }

    @Test
    void relativeInitPath() { rejects("kernel.init_path", b -> b.kernel(k -> k.initPath("sbin/init"))); }

    @Test
    void smbiosStringWithNul() { rejects("smbios_oem_strings", b -> b.smbiosOemStrings("a\0b")); }

    @Test
    void tapRules() {
        rejects("net.eth0.backend", b -> b.net(n -> n.tap("a/b")));
        rejects("net.eth0.backend", b -> b.net(n -> n.tap("sixteen-chars-xx")));
        rejects("net.eth0.features", b -> b
                .net(n -> n.tap("tap0").features(1L << dev.jkrun.devices.virtio.net.VirtioNet.F_GUEST_TSO4)));
    }

    @Test
    void nicsAreEth0Eth1InOrderAndTurnTsiOff() throws Exception {
        Path root = root();
        VmConfig c = VmBuilder.create().fs(f -> f.root(root)).exec(e -> e.path("/bin/true"))
                .net(n -> n.unixstreamPath(Path.of("/run/passt.sock")))
                .net(n -> n.unixgramPath(Path.of("/run/gv.sock"), true).mac(new byte[] {2, 0, 0, 0, 0, 9}).features(0))
                .build();
        List<NetDeviceConfig> nics = c.devices().stream().filter(d -> d instanceof NetDeviceConfig).map(d -> (NetDeviceConfig) d).toList();
        assertEquals(List.of("eth0", "eth1"), nics.stream().map(NetDeviceConfig::name).toList());
        assertArrayEquals(new byte[] {0x5a, (byte) 0x94, (byte) 0xef, (byte) 0xe4, 0x0c, (byte) 0xee}, nics.get(0).mac());
        assertEquals(dev.jkrun.devices.virtio.net.VirtioNet.COMPAT_FEATURES, nics.get(0).features());
        assertArrayEquals(new byte[] {2, 0, 0, 0, 0, 9}, nics.get(1).mac());
        assertEquals(0, nics.get(1).features());
        assertTrue(c.devices().stream().noneMatch(d -> d instanceof VsockDeviceConfig), "no TSI (so no vsock) with a NIC");
        VmConfig both = VmBuilder.create().fs(f -> f.root(root)).exec(e -> e.path("/bin/true"))
                .net(n -> n.passt()).network(n -> n.tsi(true)).build();
        assertTrue(both.devices().stream().anyMatch(d -> d instanceof VsockDeviceConfig), "TSI asked for explicitly stays");
    }

    @Test
    void badNicsNameTheirField() {
        rejects("net.eth0.backend", b -> b.net(n -> n.mac(new byte[] {2, 0, 0, 0, 0, 1})));
        rejects("net.eth0.mac", b -> b.net(n -> n.passt().dhcp(false).mac(new byte[] {1, 0, 0, 0, 0, 1})));
        rejects("net.eth0.mac", b -> b.net(n -> n.passt().dhcp(false).mac(new byte[5])));
        rejects("net.eth1.features", b -> b.net(n -> n.passt().dhcp(false)).net(n -> n.passt().features(1L << 15)));
        rejects("net.eth0.dhcp", b -> b.net(n -> n.passt()));
    }

    @Test
    void staticAddressesReachInitAndTurnPasstsDhcpOff() throws Exception {
        Path root = root();
        VmConfig c = VmBuilder.create().fs(f -> f.root(root)).exec(e -> e.path("/bin/true").dns("10.0.2.3"))
                .net(n -> n.passt().ipv4("10.0.2.15/24", "10.0.2.2"))
                .net(n -> n.tap("jk0").ipv4("192.168.7.2/30", null))
                .build();
        List<NetDeviceConfig> nics = c.devices().stream().filter(d -> d instanceof NetDeviceConfig).map(d -> (NetDeviceConfig) d).toList();
        assertEquals(new dev.jkrun.init.StaticIpv4("eth0", "10.0.2.15", 24, "10.0.2.2"), nics.get(0).ipv4());
        assertFalse(nics.get(0).dhcp(), "a static address replaces passt's default DHCP");
        assertEquals(new dev.jkrun.init.StaticIpv4("eth1", "192.168.7.2", 30, null), nics.get(1).ipv4());
        assertEquals(List.of("10.0.2.3"), c.exec().orElseThrow().resolvers().servers());
    }

    @Test
    void badStaticAddressesNameTheirField() {
        rejects("net.eth0.ipv4", b -> b.net(n -> n.tap("jk0").ipv4("10.0.0.2", null)));
        rejects("net.eth0.ipv4", b -> b.net(n -> n.tap("jk0").ipv4("10.0.0.0/24", null)));
        rejects("net.eth0.ipv4", b -> b.net(n -> n.tap("jk0").ipv4("10.0.0.255/24", null)));
        rejects("net.eth0.ipv4", b -> b.net(n -> n.tap("jk0").ipv4("10.0.0.2/33", null)));
        rejects("net.eth0.ipv4", b -> b.net(n -> n.tap("jk0").ipv4("10.0.0.2/24", "10.0.1.1")));
        rejects("net.eth0.ipv4", b -> b.net(n -> n.tap("jk0").ipv4("10.0.0.2/24", "10.0.0.2")));
        rejects("net.eth0.ipv4", b -> b.net(n -> n.tap("jk0").ipv4("fe80::1/64", null)));
        rejects("net.eth0.ipv4", b -> b.net(n -> n.passt().dhcp(true).ipv4("10.0.0.2/24", null)));
    }

    @Test
    void vsockBridgesBecomeOneDevice() {
        VmConfig c = VmBuilder.create().vsock(v -> v.port(1024, tmp.resolve("a.sock")))
                .vsock(v -> v.port(2695, tmp.resolve("b.sock"), true).maxConnections(8)).build();
        List<VsockDeviceConfig> vs = c.devices().stream().filter(d -> d instanceof VsockDeviceConfig)
                .map(d -> (VsockDeviceConfig) d).toList();
        assertEquals(1, vs.size());
        assertEquals(List.of(new VsockPort(1024, tmp.resolve("a.sock"), false), new VsockPort(2695, tmp.resolve("b.sock"), true)),
                vs.get(0).vsock().ports());
        assertEquals(8, vs.get(0).vsock().maxConnections());
    }

    @Test
    void tsiIsOnByDefaultAsLibkrunWithoutANic() {
        VmConfig c = VmBuilder.create().build();
        TsiConfig tsi = c.devices().stream().filter(d -> d instanceof VsockDeviceConfig)
                .map(d -> ((VsockDeviceConfig) d).vsock().tsi()).findFirst().orElseThrow();
        assertEquals(TsiConfig.HIJACK_INET, tsi.scope());
        assertEquals(List.of(), tsi.ports(), "nothing published unless asked");
        assertTrue(VmBuilder.create().network(n -> n.none()).build().devices().stream().noneMatch(d -> d instanceof VsockDeviceConfig),
                "none(): no vsock device");
        VmConfig p = VmBuilder.create().network(n -> n.publish(8080, 80).unixSockets(true)).build();
        TsiConfig t = ((VsockDeviceConfig) p.devices().get(0)).vsock().tsi();
        assertEquals(TsiConfig.HIJACK_INET | TsiConfig.HIJACK_UNIX, t.scope());
        assertEquals(8080, t.hostPort(80));
    }

    /**
     * libkrun attaches virtio-rng to every VM: so does the builder, near the end of the attach order (only the balloon
     * after it), unless rng(false).
     */
    @Test
    void rngIsOnByDefaultAndLast() {
        VmConfig c = VmBuilder.create().build();
        assertEquals(new RngDeviceConfig(), c.attachOrder().get(c.attachOrder().size() - 2));
        assertEquals(1, c.devices().stream().filter(d -> d instanceof RngDeviceConfig).count());
        VmConfig none = VmBuilder.create().network(n -> n.none()).build();
        assertEquals(List.of(new RngDeviceConfig(), new BalloonDeviceConfig()), none.devices(),
                "the only other devices without networking");
        assertTrue(VmBuilder.create().rng(false).build().devices().stream().noneMatch(d -> d instanceof RngDeviceConfig));
        assertEquals(List.of(), VmBuilder.create().rng(false).balloon(false).network(n -> n.none()).build().devices());
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> c.withDevice(new RngDeviceConfig()));
        assertEquals("rng", e.field());
    }

    /** libkrun attaches virtio-balloon to every (non-TEE) VM: so does the builder, last, unless balloon(false). */
    @Test
    void balloonIsOnByDefaultAndLast() {
        VmConfig c = VmBuilder.create().build();
        assertEquals(new BalloonDeviceConfig(), c.attachOrder().get(c.attachOrder().size() - 1));
        assertEquals(1, c.devices().stream().filter(d -> d instanceof BalloonDeviceConfig).count());
        assertTrue(VmBuilder.create().balloon(false).build().devices().stream().noneMatch(d -> d instanceof BalloonDeviceConfig));
        assertEquals(List.of(new BalloonDeviceConfig()), VmBuilder.create().rng(false).network(n -> n.none()).build().devices());
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> c.withDevice(new BalloonDeviceConfig()));
        assertEquals("balloon", e.field());
    }

    @Test
    void publishedHostPortTwice() {
        rejects("tsi.ports[1].hostPort", b -> b.network(n -> n.publish(8080, 80).publish(8080, 81)));
    }

    @Test
    void publishedPortOutOfRange() { rejects("network.publish[0]", b -> b.network(n -> n.publish(70000, 80))); }

    @Test
    void vsockPortBridgedTwice() {
        rejects("vsock.ports[1].port", b -> b.vsock(v -> v.port(1024, tmp.resolve("a.sock")).port(1024, tmp.resolve("b.sock"))));
    }

    @Test
    void vsockRelativePath() { rejects("vsock.ports", b -> b.vsock(v -> v.port(1024, Path.of("rel.sock")))); }

    @Test
    void vsockListenPathExists() throws IOException {
        Path p = Files.createFile(tmp.resolve("exists.sock"));
        rejects("vsock.ports[0].path", b -> b.vsock(v -> v.port(1024, p, true)));
    }
}
