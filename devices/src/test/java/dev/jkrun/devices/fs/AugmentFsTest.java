package dev.jkrun.devices.fs;

import static dev.jkrun.devices.fs.NullFsTest.errno;
import static org.junit.jupiter.api.Assertions.*;

import dev.jkrun.devices.fs.augment.AugmentFs;
import dev.jkrun.devices.fs.augment.VirtualEntry;
import dev.jkrun.devices.fs.fuse.Fuse;
import dev.jkrun.devices.fs.fuse.FuseServer;
import dev.jkrun.devices.fs.nullfs.NullFs;
import dev.jkrun.devices.fs.passthrough.PassthroughFs;
import dev.jkrun.devices.fs.passthrough.PassthroughOptions;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Virtual files and directories on top of a share (libkrun's krun_fs_add_overlay_file/dir). */
class AugmentFsTest {
    private static final byte[] MARKER = "virtual-file-marker".getBytes(StandardCharsets.UTF_8);
    private static final byte[] PAYLOAD = payload();

    private static byte[] payload() {
        byte[] b = new byte[8192];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) (i % 251);
        }
        return b;
    }

    private static List<VirtualEntry> entries() {
        return List.of(VirtualEntry.dir("dev", 040755), VirtualEntry.file("marker.txt", MARKER, 0100644, false),
                VirtualEntry.file("/testdata.bin", PAYLOAD, 0444, false), VirtualEntry.file("agent", MARKER, 0755, true),
                VirtualEntry.dir("etc", 0755), VirtualEntry.dir("etc/nested", 0700),
                VirtualEntry.file("etc/nested/deep.txt", "deep".getBytes(StandardCharsets.UTF_8), 0644, false));
    }

    private static byte[] name(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    @Test
    void aRootOfVirtualEntriesOnly() throws Exception {
        AtomicInteger exit = new AtomicInteger(-1);
        AugmentFs fs = new AugmentFs(new NullFs(), entries(), exit::set);
        Entry marker = fs.lookup(Context.ROOT, FileSystem.ROOT_ID, name("marker.txt"));
        assertEquals(0100644, marker.attr().mode());
        assertEquals(MARKER.length, marker.attr().size());
        assertTrue(marker.nodeId() >= AugmentFs.NODE_BASE);
        Opened o = fs.open(Context.ROOT, marker.nodeId(), 0);
        ByteBuffer dst = ByteBuffer.allocate(100);
        assertEquals(MARKER.length, fs.read(marker.nodeId(), o.fh(), 0, dst));
        assertArrayEquals(MARKER, Arrays.copyOf(dst.array(), MARKER.length));

        Entry data = fs.lookup(Context.ROOT, FileSystem.ROOT_ID, name("testdata.bin"));
        assertEquals(0100444, data.attr().mode(), "the type comes from the kind, only permission bits from the mode");
        ByteBuffer range = ByteBuffer.allocate(100);
        assertEquals(100, fs.read(data.nodeId(), 0, 5000, range));
        assertArrayEquals(Arrays.copyOfRange(PAYLOAD, 5000, 5100), range.array());
        ByteBuffer tail = ByteBuffer.allocate(100);
        assertEquals(92, fs.read(data.nodeId(), 0, 8100, tail), "a read that crosses the end is short");
        assertEquals(0, fs.read(data.nodeId(), 0, 8192, ByteBuffer.allocate(10)));
        assertEquals(0, fs.read(data.nodeId(), 0, -1, ByteBuffer.allocate(10)), "an offset past 2^63 is past the end");
        assertEquals(5000, fs.lseek(data.nodeId(), 0, 5000, 3));
        assertEquals(8192, fs.lseek(data.nodeId(), 0, 5000, 4));
        assertEquals(Errnos.ENXIO, errno(() -> fs.lseek(data.nodeId(), 0, 8192, 3)));

        // read-only, whatever the guest tries
        assertEquals(Errnos.EACCES, errno(() -> fs.open(Context.ROOT, marker.nodeId(), 1)));
        assertEquals(Errnos.EACCES, errno(() -> fs.open(Context.ROOT, marker.nodeId(), 01000)), "O_TRUNC");
        assertEquals(Errnos.EPERM, errno(() -> fs.setattr(Context.ROOT, marker.nodeId(), null)));
        assertEquals(Errnos.EPERM, errno(() -> fs.write(marker.nodeId(), 0, 0, ByteBuffer.wrap(MARKER), 0)));
        assertEquals(Errnos.EPERM, errno(() -> fs.setxattr(marker.nodeId(), name("user.x"), MARKER, 0)));
        assertEquals(Errnos.EPERM, errno(() -> fs.link(marker.nodeId(), FileSystem.ROOT_ID, name("l"))));
        assertEquals(Errnos.EEXIST, errno(() -> fs.mkdir(Context.ROOT, FileSystem.ROOT_ID, name("marker.txt"), 0755, 0)));
        assertEquals(Errnos.EROFS, errno(() -> fs.unlink(FileSystem.ROOT_ID, name("marker.txt"))));
        assertEquals(Errnos.EROFS, errno(() -> fs.rename(FileSystem.ROOT_ID, name("marker.txt"), FileSystem.ROOT_ID,
                name("m2"), 0)));
        assertEquals(Errnos.EACCES, errno(() -> fs.access(Context.ROOT, marker.nodeId(), 2)));
        assertEquals(Errnos.EACCES, errno(() -> fs.access(Context.ROOT, marker.nodeId(), 1)), "not executable");
        assertEquals(Errnos.EXDEV, errno(() -> fs.copyFileRange(marker.nodeId(), 0, 0, data.nodeId(), 0, 0, 10, 0)));
        assertEquals(Errnos.ENODATA, errno(() -> fs.getxattr(marker.nodeId(), name("user.x"), ByteBuffer.allocate(8))));

        // nested directories
        Entry etc = fs.lookup(Context.ROOT, FileSystem.ROOT_ID, name("etc"));
        assertEquals(040755, etc.attr().mode());
        Entry nested = fs.lookup(Context.ROOT, etc.nodeId(), name("nested"));
        assertEquals(040700, nested.attr().mode());
        Entry deep = fs.lookup(Context.ROOT, nested.nodeId(), name("deep.txt"));
        ByteBuffer d = ByteBuffer.allocate(10);
        assertEquals(4, fs.read(deep.nodeId(), 0, 0, d));
        assertEquals(Errnos.ENOENT, errno(() -> fs.lookup(Context.ROOT, etc.nodeId(), name("absent"))));
        assertEquals(Errnos.EROFS, errno(() -> fs.mkdir(Context.ROOT, etc.nodeId(), name("new"), 0755, 0)));
        assertEquals(Errnos.EROFS, errno(() -> fs.create(Context.ROOT, etc.nodeId(), name("new"), 1, 0644, 0)));
        assertEquals(Errnos.EISDIR, errno(() -> fs.open(Context.ROOT, etc.nodeId(), 0)));
        assertEquals(Errnos.ENOTDIR, errno(() -> fs.opendir(Context.ROOT, deep.nodeId(), 0)));
        DirNames names = new DirNames();
        fs.readdir(etc.nodeId(), fs.opendir(Context.ROOT, etc.nodeId(), 0).fh(), 0, names);
        assertEquals(List.of(".", "..", "nested"), names.names);

        // one-shot: one lookup, then gone (from lookups and listings); an open file stays readable
        Entry agent = fs.lookup(Context.ROOT, FileSystem.ROOT_ID, name("agent"));
        assertEquals(0, agent.entryTimeoutNanos(), "the guest must not cache a one-shot name");
        assertEquals(Errnos.ENOENT, errno(() -> fs.lookup(Context.ROOT, FileSystem.ROOT_ID, name("agent"))));
        assertEquals(MARKER.length, fs.read(agent.nodeId(), fs.open(Context.ROOT, agent.nodeId(), 0).fh(), 0,
                ByteBuffer.allocate(64)));

        DirNames root = new DirNames();
        long fh = fs.opendir(Context.ROOT, FileSystem.ROOT_ID, 0).fh();
        fs.readdir(FileSystem.ROOT_ID, fh, 0, root);
        fs.readdir(FileSystem.ROOT_ID, fh, 2, root); // after NullFs's "." and "..": the virtual entries
        assertEquals(List.of(".", "..", "dev", "marker.txt", "testdata.bin", "etc"), root.names);

        // the root takes init's exit status for a NullFs, which has no such ioctl
        fs.ioctl(FileSystem.ROOT_ID, 0, 0, FileSystem.IOCTL_EXIT_CODE, 42, ByteBuffer.allocate(0), 0);
        assertEquals(42, exit.get());
        assertEquals(Errnos.ENOTTY, errno(() -> fs.ioctl(marker.nodeId(), 0, 0, FileSystem.IOCTL_EXIT_CODE, 1,
                ByteBuffer.allocate(0), 0)));
    }

    /** A sink with room for {@code room} entries that records cookies, as a guest with a small buffer sees them. */
    private static final class Small implements DirSink {
        final List<String> names = new ArrayList<>();
        long last;
        int room;

        @Override
        public boolean fits(int nameLength) { return room > 0; }

        @Override
        public boolean plus() { return true; }

        @Override
        public boolean add(long ino, long nextOffset, int type, byte[] name, Entry entry) {
            if (room == 0) {
                return false;
            }
            room--;
            names.add(new String(name, StandardCharsets.UTF_8));
            last = nextOffset;
            return true;
        }
    }

    @Test
    void virtualNamesHideHostNamesAndKeepThemSafe(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("marker.txt"), "host"); // hidden by the virtual one
        Files.createDirectory(dir.resolve("etc"));
        Files.writeString(dir.resolve("etc/passwd"), "root");
        for (int i = 0; i < 5; i++) {
            Files.writeString(dir.resolve("f" + i), "x");
        }
        PassthroughFs inner = new PassthroughFs(dir, PassthroughOptions.builder().build());
        AugmentFs fs = new AugmentFs(inner, entries(), null);
        FuseClient c = new FuseClient(new FuseServer(fs, false));
        c.init();
        long m = c.lookupNode(1, "marker.txt");
        long fh = c.openFh(m, 0);
        assertArrayEquals(MARKER, c.read(m, fh, 0, 100).ok().bytes());
        assertEquals(Errnos.EROFS, c.unlink(1, "marker.txt").error(), "the hidden host file must not be removable");
        assertEquals(Errnos.EEXIST, c.create(1, "marker.txt", 1, 0644).error());
        assertEquals("host", Files.readString(dir.resolve("marker.txt")));
        // the virtual etc hides the host's, and its contents
        long etc = c.lookupNode(1, "etc");
        assertEquals(Errnos.ENOENT, c.lookup(etc, "passwd").error());
        // host names are still writable
        assertEquals(0, c.create(1, "new", 1, 0644).error());
        assertTrue(Files.exists(dir.resolve("new")));

        // the root listing, a few entries per call as a small guest buffer: host names once, hidden ones not at all,
        // then the virtual entries
        long dfh = fs.opendir(Context.ROOT, FileSystem.ROOT_ID, 0).fh();
        List<String> all = new ArrayList<>();
        long cookie = 0;
        for (int call = 0; call < 20; call++) {
            Small s = new Small();
            s.room = 3;
            s.last = cookie;
            fs.readdir(FileSystem.ROOT_ID, dfh, cookie, s);
            if (s.names.isEmpty()) {
                break;
            }
            all.addAll(s.names);
            cookie = s.last;
        }
        List<String> sorted = new ArrayList<>(all);
        sorted.sort(null);
        assertEquals(List.of(".", "..", "agent", "dev", "etc", "f0", "f1", "f2", "f3", "f4", "marker.txt", "new",
                "testdata.bin"), sorted, "a one-shot name not looked up yet is listed");
        assertEquals(List.of("dev", "marker.txt", "testdata.bin", "agent", "etc"), all.subList(all.size() - 5, all.size()));
        fs.close();
    }

    @Test
    void aUsedUpOneShotStillHidesAndGuardsTheHostFile(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("agent"), "host-agent");
        Files.writeString(dir.resolve("zz"), "z"); // listed last by nobody in particular: hidden names may end a listing
        AugmentFs fs = new AugmentFs(new PassthroughFs(dir, PassthroughOptions.builder().build()),
                List.of(VirtualEntry.file("agent", MARKER, 0755, true), VirtualEntry.file("zz", MARKER, 0644, false)), null);
        fs.lookup(Context.ROOT, FileSystem.ROOT_ID, name("agent"));
        assertEquals(Errnos.ENOENT, errno(() -> fs.lookup(Context.ROOT, FileSystem.ROOT_ID, name("agent"))),
                "not the host file behind it");
        assertEquals(Errnos.EROFS, errno(() -> fs.unlink(FileSystem.ROOT_ID, name("agent"))));
        assertEquals(Errnos.EEXIST, errno(() -> fs.create(Context.ROOT, FileSystem.ROOT_ID, name("agent"), 1, 0644, 0)));
        assertEquals(Errnos.EROFS, errno(() -> fs.rename(FileSystem.ROOT_ID, name("zz"), FileSystem.ROOT_ID, name("agent"), 0)));
        assertEquals("host-agent", Files.readString(dir.resolve("agent")));
        // a listing whose last inner names are hidden still goes on to the virtual entries
        long fh = fs.opendir(Context.ROOT, FileSystem.ROOT_ID, 0).fh();
        List<String> all = new ArrayList<>();
        long cookie = 0;
        for (int call = 0; call < 10; call++) {
            DirNames names = new DirNames();
            fs.readdir(FileSystem.ROOT_ID, fh, cookie, names);
            if (names.names.isEmpty()) {
                break;
            }
            all.addAll(names.names);
            cookie = names.next;
        }
        all.sort(null);
        assertEquals(List.of(".", "..", "zz"), all, "the virtual zz once, the used-up agent and the host names hidden");
        fs.close();
    }

    @Test
    void anInnerNodeIdInTheVirtualRangeIsRefused() {
        FileSystem rogue = new FileSystem() {
            @Override
            public Entry lookup(Context ctx, long parent, byte[] name) {
                return new Entry(AugmentFs.NODE_BASE, 0, null, 0, 0);
            }
        };
        AugmentFs fs = new AugmentFs(rogue, entries(), null);
        assertEquals(Errnos.EIO, errno(() -> fs.lookup(Context.ROOT, FileSystem.ROOT_ID, name("other"))));
    }

    @Test
    void entriesFollowLibkrunsPathRules() {
        List<VirtualEntry> before = List.of(VirtualEntry.dir("etc", 0755), VirtualEntry.file("init", MARKER, 0755, true));
        assertNull(VirtualEntry.problem(before, VirtualEntry.file("etc/hostname", MARKER, 0644, false)));
        assertNull(VirtualEntry.problem(before, VirtualEntry.dir("/usr", 0755)));
        assertEquals(Errnos.ENOENT, VirtualEntry.problem(before, VirtualEntry.dir("usr/lib", 0755)).errno());
        assertEquals(Errnos.ENOTDIR, VirtualEntry.problem(before, VirtualEntry.dir("init/x", 0755)).errno());
        assertEquals(Errnos.EEXIST, VirtualEntry.problem(before, VirtualEntry.dir("/etc", 0755)).errno());
        for (String bad : List.of("", "/", "a//b", "etc/", "..", "etc/../x", ".", "x".repeat(256))) {
            assertEquals(Errnos.EINVAL, VirtualEntry.problem(before, VirtualEntry.dir(bad, 0755)).errno(), bad);
        }
        assertThrows(IllegalArgumentException.class, () -> new AugmentFs(new NullFs(),
                List.of(VirtualEntry.dir("a/b", 0755)), null));
    }

    @Test
    void throughTheFuseServerAVirtualDirectoryListsItsEntries() {
        FuseClient c = new FuseClient(new FuseServer(new AugmentFs(new NullFs(), entries(), null), true));
        c.init();
        long etc = c.lookupNode(1, "etc");
        long fh = c.call(Fuse.OPENDIR, etc, FuseClient.body().i32(0).i32(0)).ok().body().getLong(0);
        String listing = new String(c.readdir(Fuse.READDIRPLUS, etc, fh, 0, 4096).ok().bytes(), StandardCharsets.ISO_8859_1);
        assertTrue(listing.contains("nested"), listing);
        assertEquals(Errnos.ENOENT, c.lookup(1, "nothing").error());
    }
}
