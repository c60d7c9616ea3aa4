package dev.jkrun.vmm.builder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.jkrun.devices.fs.Context;
import dev.jkrun.devices.fs.FileSystem;
import dev.jkrun.devices.fs.FsException;
import dev.jkrun.devices.virtio.fs.VirtioFs;
import dev.jkrun.init.GuestInit;
import dev.jkrun.init.InitConfig;
import dev.jkrun.init.VirtioFsMount;
import dev.jkrun.vmm.FsShare;
import dev.jkrun.vmm.VmBuilder;
import dev.jkrun.vmm.VmConfig;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What the root share serves for jkrun's init, and which shares init mounts. */
class SharesTest {
    private static final int ENOENT = 2;

    @TempDir
    Path dir;

    @Test
    void theRootServesJkrunsInitUnlessTheKernelBootsTheCallersOwn() throws Exception {
        Files.writeString(dir.resolve("init.krun"), "the root's own init");
        InitConfig exec = InitConfig.builder("/bin/true").build();
        FsShare root = new FsShare(FsShare.ROOT_TAG, dir, false);
        try (VirtioFs served = Shares.device(root, Optional.of(exec), true, s -> { })) {
            FileSystem fs = served.server().fileSystem();
            assertEquals(GuestInit.binary().length, lookup(fs, GuestInit.FILE_NAME).attr().size(), "jkrun's init shadows the root's");
            assertEquals(exec.encode().length, lookup(fs, InitConfig.FILE_NAME).attr().size());
        }
        try (VirtioFs served = Shares.device(root, Optional.of(exec), false, s -> { })) {
            FileSystem fs = served.server().fileSystem();
            assertEquals("the root's own init".length(), lookup(fs, GuestInit.FILE_NAME).attr().size(), "the root's own file");
            assertEquals(exec.encode().length, lookup(fs, InitConfig.FILE_NAME).attr().size(), "the workload config stays");
        }
        Files.delete(dir.resolve("init.krun"));
        try (VirtioFs served = Shares.device(root, Optional.of(exec), false, s -> { })) {
            FsException e = assertThrows(FsException.class, () -> lookup(served.server().fileSystem(), GuestInit.FILE_NAME));
            assertEquals(ENOENT, e.errno());
        }
    }

    /** fs.requestQueues reaches the device (its queues and config space); 1 unless asked, 1..16 accepted. */
    @Test
    void requestQueuesReachTheDevice() throws Exception {
        VmConfig c = VmBuilder.create().fs(f -> f.root(dir)).fs(f -> f.tag("mq").path(dir).requestQueues(4))
                .exec(e -> e.path("/bin/true")).build();
        for (FsShare share : c.shares()) {
            try (VirtioFs served = Shares.device(share, Optional.empty(), false, s -> { })) {
                int n = share.isRoot() ? 1 : 4;
                assertEquals(n, served.requestQueues(), share.tag());
                assertEquals(1 + n, served.queueMaxSizes().length, share.tag());
                byte[] cfg = new byte[4];
                served.readConfig(VirtioFs.TAG_BYTES, cfg);
                assertEquals(n, java.nio.ByteBuffer.wrap(cfg).order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt(), share.tag());
            }
        }
        FsShare root = new FsShare(FsShare.ROOT_TAG, dir, false);
        assertEquals(16, root.withRequestQueues(16).requestQueues());
        for (int bad : new int[] {0, -1, 17}) {
            dev.jkrun.vmm.ConfigurationException e = assertThrows(dev.jkrun.vmm.ConfigurationException.class,
                    () -> root.withRequestQueues(bad));
            assertTrue(e.getMessage().contains("fs.request_queues"), e.getMessage());
        }
    }

    /** fs.allowSetuid (the CLI's :setuid) reaches the passthrough backend; off unless asked for. */
    @Test
    void setIdBitsAreKeptOnlyOnSharesThatAllowThem() throws Exception {
        VmConfig c = VmBuilder.create().fs(f -> f.root(dir)).fs(f -> f.tag("plain").path(dir))
                .fs(f -> f.tag("setuid").path(dir).allowSetuid(true)).exec(e -> e.path("/bin/true")).build();
        for (FsShare share : c.shares()) {
            if (share.isRoot()) {
                continue;
            }
            try (VirtioFs served = Shares.device(share, Optional.empty(), true, s -> { })) {
                dev.jkrun.devices.fs.passthrough.PassthroughFs fs =
                        (dev.jkrun.devices.fs.passthrough.PassthroughFs) served.server().fileSystem();
                assertEquals(share.tag().equals("setuid"), fs.options().allowSetuid(), share.tag());
            }
        }
    }

    @Test
    void nicsWithDhcpAreConfiguredByInit() {
        VmConfig c = VmBuilder.create().fs(f -> f.root(dir)).exec(e -> e.path("/bin/true"))
                .net(n -> n.unixstreamPath(dir.resolve("a.sock")))
                .net(n -> n.passt())
                .net(n -> n.unixgramPath(dir.resolve("g.sock"), false).dhcp(true))
                .build();
        assertEquals(List.of("eth1", "eth2"), Shares.completeInit(c.exec().orElseThrow(), c).dhcp(),
                "passt's NIC by default, eth2 as asked, not eth0");
        String records = new String(Shares.completeInit(c.exec().orElseThrow(), c).encode(), java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(records.contains("dhcp\0eth1\0") && records.contains("dhcp\0eth2\0"), records);
    }

    @Test
    void staticAddressesAndTheirResolversAreConfiguredByInit() {
        VmConfig c = VmBuilder.create().fs(f -> f.root(dir)).exec(e -> e.path("/bin/true").dns("10.0.2.3"))
                .net(n -> n.passt().ipv4("10.0.2.15/24", "10.0.2.2"))
                .net(n -> n.tap("jk0").ipv4("192.168.7.2/30", null))
                .build();
        InitConfig init = Shares.completeInit(c.exec().orElseThrow(), c);
        assertEquals(List.of(), init.dhcp());
        String records = new String(init.encode(), java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(records.contains("ipv4\0eth0:10.0.2.15/24:10.0.2.2\0ipv4\0eth1:192.168.7.2/30\0"), records);
        assertTrue(records.contains("dns-server\u000010.0.2.3\0"), records);
    }

    @Test
    void theBuilderMountsSharesAtMntTagUnlessToldNot() throws Exception {
        Path data = Files.createDirectory(dir.resolve("data"));
        VmConfig mounted = VmBuilder.create().fs(f -> f.root(dir)).fs(f -> f.tag("data").path(data))
                .exec(e -> e.path("/bin/true")).build();
        assertEquals(List.of(new VirtioFsMount("data", "/mnt/data")), mounted.exec().orElseThrow().mounts());
        assertEquals(mounted.exec().orElseThrow().mounts(), Shares.completeInit(mounted.exec().orElseThrow(), mounted).mounts());
        VmConfig unmounted = VmBuilder.create().fs(f -> f.root(dir)).fs(f -> f.tag("data").path(data))
                .exec(e -> e.path("/bin/true").mountShares(false)).build();
        assertEquals(List.of(), unmounted.exec().orElseThrow().mounts());
        assertEquals(List.of(), Shares.completeInit(unmounted.exec().orElseThrow(), unmounted).mounts(), "the VM adds none");
    }

    @Test
    void aRootWithoutAHostDirectoryServesInitItsConfigAndTheCallersEntries() throws Exception {
        InitConfig exec = InitConfig.builder("/agent").build();
        java.util.concurrent.atomic.AtomicInteger status = new java.util.concurrent.atomic.AtomicInteger(-1);
        VmConfig config = VmBuilder.create()
                .fs(f -> f.tag(FsShare.ROOT_TAG).custom(dev.jkrun.devices.fs.nullfs.NullFs::new).readOnly(true)
                        .virtualDir("dev", 0755).virtualFile("agent", new byte[] {1, 2, 3}, 0755, true))
                .exec(e -> e.path("/agent")).build();
        FsShare root = config.root().orElseThrow();
        try (VirtioFs served = Shares.device(root, Optional.of(exec), true, status::set)) {
            FileSystem fs = served.server().fileSystem();
            assertEquals(GuestInit.binary().length, lookup(fs, GuestInit.FILE_NAME).attr().size());
            assertEquals(exec.encode().length, lookup(fs, InitConfig.FILE_NAME).attr().size());
            assertEquals(040755, lookup(fs, "dev").attr().mode());
            assertEquals(3, lookup(fs, "agent").attr().size());
            assertEquals(ENOENT, assertThrows(FsException.class, () -> lookup(fs, "agent")).errno(), "one-shot");
            fs.ioctl(FileSystem.ROOT_ID, 0, 0, FileSystem.IOCTL_EXIT_CODE, 7, java.nio.ByteBuffer.allocate(0), 0);
            assertEquals(7, status.get(), "init's exit status reaches the VM");
        }
        // the caller's own init.krun wins over jkrun's, on a host root too
        FsShare host = new FsShare(FsShare.ROOT_TAG, Optional.of(dir), Optional.empty(), false, 0, List.of(),
                List.of(dev.jkrun.devices.fs.augment.VirtualEntry.file("init.krun", new byte[] {9}, 0755, false)));
        try (VirtioFs served = Shares.device(host, Optional.of(exec), true, s -> { })) {
            assertEquals(1, lookup(served.server().fileSystem(), GuestInit.FILE_NAME).attr().size());
        }
        assertThrows(dev.jkrun.vmm.ConfigurationException.class, () -> VmBuilder.create()
                .fs(f -> f.root(dir).virtualFile("etc/hostname", new byte[0], 0644, false)).build(), "etc is no virtual dir");
    }

    private static dev.jkrun.devices.fs.Entry lookup(FileSystem fs, String name) throws FsException {
        return fs.lookup(Context.ROOT, FileSystem.ROOT_ID, name.getBytes(StandardCharsets.UTF_8));
    }
}
