package dev.jkrun.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.devices.block.ImageFormat;
import dev.jkrun.devices.virtio.vsock.VsockPort;
import dev.jkrun.vmm.DiskConfig;
import dev.jkrun.vmm.FsShare;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The option syntaxes of {@code jkrun run}: each bad spec is a UsageException (one line, status 125). */
class RunCommandParseTest {
    @TempDir
    Path dir;

    @Test
    void diskSuffixesInAnyOrder() throws Exception {
        Path img = Files.write(dir.resolve("d.img"), new byte[4096]);
        DiskConfig d = RunCommand.parseDisk("data=" + img + ":ro:qcow2");
        assertEquals("data", d.id());
        assertTrue(d.readOnly());
        assertEquals(ImageFormat.QCOW2, d.format());
        assertFalse(d.directIo());
        DiskConfig direct = RunCommand.parseDisk("x=" + img + ":direct:raw");
        assertTrue(direct.directIo());
        assertEquals(ImageFormat.RAW, direct.format());
        assertFalse(direct.readOnly());
    }

    @Test
    void directIsForRawOnly() throws Exception {
        Path img = Files.write(dir.resolve("d.img"), new byte[4096]);
        Main.UsageException e = assertThrows(Main.UsageException.class, () -> RunCommand.parseDisk("x=" + img + ":qcow2:direct"));
        assertTrue(e.getMessage().contains("raw"), e.getMessage());
    }

    @Test
    void badDiskSpecs() {
        assertThrows(Main.UsageException.class, () -> RunCommand.parseDisk("noequals"));
        assertThrows(Main.UsageException.class, () -> RunCommand.parseDisk("=x"));
        assertThrows(Main.UsageException.class, () -> RunCommand.parseDisk("id="));
        assertThrows(Main.UsageException.class, () -> RunCommand.parseDisk("id=" + dir.resolve("missing")));
    }

    @Test
    void layersMakeAnOverlayRoot() throws Exception {
        Path lower = Files.createDirectories(dir.resolve("lower")), up = Files.createDirectories(dir.resolve("upper"));
        FsShare s = RunCommand.rootShare(java.util.Optional.empty(), java.util.List.of(lower, up));
        assertTrue(s.isRoot());
        assertFalse(s.readOnly());
        assertEquals(up, s.path(), "the last layer is the writable upper one");
        assertEquals(java.util.List.of(lower), s.lowerLayers());
        assertThrows(Main.UsageException.class,
                () -> RunCommand.rootShare(java.util.Optional.of(up), java.util.List.of(lower)));
        assertThrows(Main.UsageException.class,
                () -> RunCommand.rootShare(java.util.Optional.empty(), java.util.List.of(dir.resolve("missing"), up)));
        assertTrue(RunCommand.rootShare(java.util.Optional.empty(), java.util.List.of()).readOnly(), "default: / ro");
    }

    @Test
    void shares() {
        FsShare s = RunCommand.parseShare("data=" + dir + ":ro");
        assertEquals("data", s.tag());
        assertTrue(s.readOnly());
        assertEquals(dir, s.path());
        assertThrows(Main.UsageException.class, () -> RunCommand.parseShare("/dev/root=" + dir));
        FsShare dax = RunCommand.parseShare("d=" + dir + ":dax=64M:ro");
        assertEquals(64L << 20, dax.shmSizeBytes());
        assertTrue(dax.readOnly());
        assertEquals(1L << 30, RunCommand.parseShare("d=" + dir + ":ro:dax=1G").shmSizeBytes());
        assertEquals(0, RunCommand.parseShare("d=" + dir).shmSizeBytes());
        assertFalse(RunCommand.parseShare("d=" + dir).allowSetuid(), "set-ID bits are dropped unless asked for");
        FsShare setuid = RunCommand.parseShare("d=" + dir + ":setuid:ro");
        assertTrue(setuid.allowSetuid());
        assertTrue(setuid.readOnly());
        assertThrows(Main.UsageException.class, () -> RunCommand.parseShare("d=" + dir + ":dax=lots"));
        assertThrows(Main.UsageException.class, () -> RunCommand.parseShare("d=" + dir + ":dax=0"));
        assertThrows(Main.UsageException.class, () -> RunCommand.parseShare("t=" + dir.resolve("missing")));
        assertThrows(Main.UsageException.class, () -> RunCommand.parseShare("novalue="));
    }

    @Test
    void envAndRootDisk() {
        assertEquals("A=b=c", RunCommand.parseEnv("A=b=c"));
        assertThrows(Main.UsageException.class, () -> RunCommand.parseEnv("=x"));
        assertThrows(Main.UsageException.class, () -> RunCommand.parseEnv("NOEQ"));
        assertEquals("ext4", RunCommand.parseRootDisk("/dev/vda:ext4:ro,noatime").fstype());
        assertThrows(Main.UsageException.class, () -> RunCommand.parseRootDisk(":ext4"));
    }

    @Test
    void vsockBridges() {
        VsockPort connect = RunCommand.parseVsock("5000=" + dir.resolve("a.sock"));
        assertEquals(new VsockPort(5000, dir.resolve("a.sock"), false), connect);
        VsockPort listen = RunCommand.parseVsock("4294967294=" + dir.resolve("b.sock") + ":listen");
        assertEquals(new VsockPort(-2, dir.resolve("b.sock"), true), listen);
        assertTrue(RunCommand.parseVsock("7=rel.sock").path().isAbsolute(), "relative paths are made absolute");
        for (String bad : new String[] {"5000", "=x.sock", "5000=", "port=x.sock", "-1=x.sock", "4294967295=x.sock",
                "5000=/" + "p".repeat(200)}) {
            assertThrows(Main.UsageException.class, () -> RunCommand.parseVsock(bad), bad);
        }
    }

    @Test
    void portsAndNet() {
        assertEquals(8080, RunCommand.parsePort("8080:80").hostPort());
        assertEquals(80, RunCommand.parsePort("8080:80").guestPort());
        for (String bad : new String[] {"8080", "8080:", ":80", "0:80", "8080:70000", "a:b", "1:2:3"}) {
            assertThrows(Main.UsageException.class, () -> RunCommand.parsePort(bad), bad);
        }
        assertEquals(new dev.jkrun.vmm.NetDeviceConfig.UnixStreamPath(Path.of("/run/p.sock")), RunCommand.parseNic("unixstream=/run/p.sock"));
        assertEquals(new dev.jkrun.vmm.NetDeviceConfig.UnixStreamFd(5), RunCommand.parseNic("unixstream=fd=5"));
        assertEquals(new dev.jkrun.vmm.NetDeviceConfig.UnixGramPath(Path.of("/run/g.sock"), true), RunCommand.parseNic("unixgram=/run/g.sock:vfkit"));
        assertEquals(new dev.jkrun.vmm.NetDeviceConfig.UnixGramPath(Path.of("/run/g.sock"), false), RunCommand.parseNic("unixgram=/run/g.sock"));
        assertEquals(new dev.jkrun.vmm.NetDeviceConfig.UnixGramFd(3), RunCommand.parseNic("unixgram=fd=3"));
        assertEquals(new dev.jkrun.vmm.NetDeviceConfig.Passt(Path.of("/usr/bin/passt")), RunCommand.parseNic("passt"));
        assertEquals(new dev.jkrun.vmm.NetDeviceConfig.Tap("tap0"), RunCommand.parseNic("tap=tap0"));
        for (String bad : new String[] {"tap=", "tap=a/b", "unixstream=", "unixstream=fd=x", "unixgram=fd=-1", "slirp"}) {
            assertThrows(Main.UsageException.class, () -> RunCommand.parseNic(bad), bad);
        }
        assertArrayEquals(new byte[] {2, 0, 0, (byte) 0xab, 0, 1}, RunCommand.parseMac("02:00:00:ab:00:01"));
        for (String bad : new String[] {"01:00:00:00:00:01", "02:00:00:00:00", "02:00:00:00:00:0g", "2:0:0:0:0:1"}) {
            assertThrows(Main.UsageException.class, () -> RunCommand.parseMac(bad), bad);
        }
        RunCommand.NicSpec passt = new RunCommand.NicSpec(RunCommand.parseNic("passt"));
        assertTrue(passt.device(0).dhcp(), "--net passt alone is configured over DHCP");
        passt.cidr = "10.0.2.15/24";
        passt.gateway = "10.0.2.2";
        dev.jkrun.vmm.NetDeviceConfig n = passt.device(1);
        assertEquals(new dev.jkrun.init.StaticIpv4("eth1", "10.0.2.15", 24, "10.0.2.2"), n.ipv4());
        assertFalse(n.dhcp(), "--ip replaces DHCP");
        assertEquals((byte) 0xef, n.mac()[5], "the default MAC's last byte plus the index");
        RunCommand.NicSpec tap = new RunCommand.NicSpec(RunCommand.parseNic("tap=jk0"));
        tap.gateway = "10.0.0.1";
        Main.UsageException e = assertThrows(Main.UsageException.class, () -> tap.device(0));
        assertEquals("--gateway needs --ip for the same --net", e.getMessage());
        tap.cidr = "10.0.0.2/24";
        tap.gateway = "10.1.0.1";
        e = assertThrows(Main.UsageException.class, () -> tap.device(0));
        assertTrue(e.getMessage().startsWith("--ip 10.0.0.2/24 --gateway 10.1.0.1: eth0: gateway 10.1.0.1 is not another host"), e.getMessage());
        assertTrue(RunCommand.parseNet("tsi"));
        assertFalse(RunCommand.parseNet("none"));
        assertThrows(Main.UsageException.class, () -> RunCommand.parseNet("passt"));
    }
}
