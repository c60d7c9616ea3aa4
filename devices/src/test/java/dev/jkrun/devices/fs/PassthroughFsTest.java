package dev.jkrun.devices.fs;

import static dev.jkrun.devices.fs.FuseClient.body;
import static org.junit.jupiter.api.Assertions.*;

import dev.jkrun.devices.fs.fuse.Fuse;
import dev.jkrun.devices.fs.fuse.FuseServer;
import dev.jkrun.devices.fs.passthrough.PassthroughFs;
import dev.jkrun.devices.fs.passthrough.PassthroughOptions;
import dev.jkrun.libc.PosixFs;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PassthroughFsTest {
    static final long ROOT = 1;
    static final int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0100, O_EXCL = 0200, O_TRUNC = 01000;

    @TempDir
    Path dir;
    PassthroughFs fs;
    FuseClient c;
    final AtomicInteger exitCode = new AtomicInteger(Integer.MAX_VALUE);

    FuseClient client(PassthroughOptions options) {
        fs = new PassthroughFs(dir, options);
        c = new FuseClient(new FuseServer(fs));
        c.init();
        return c;
    }

    FuseClient client() { return client(PassthroughOptions.defaults()); }

    @AfterEach
    void close() {
        if (fs != null) {
            fs.close();
        }
    }

    static byte[] utf8(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    static String str(FuseClient.Reply r) { return new String(r.bytes(), StandardCharsets.UTF_8); }

    // ------------------------------------------------------------------ INIT

    @Test
    void initNegotiatesMinorAndFlags() {
        fs = new PassthroughFs(dir, PassthroughOptions.defaults());
        c = new FuseClient(new FuseServer(fs));
        assertEquals(Errnos.EIO, c.lookup(ROOT, "x").error(), "requests before INIT");
        assertEquals(Errnos.EPROTO, c.init(26, 0).error());
        FuseClient.Reply r = c.init(38, Fuse.DO_READDIRPLUS | Fuse.HAS_IOCTL_DIR | Fuse.WRITEBACK_CACHE).ok();
        assertEquals(Fuse.INIT_OUT, r.length() - Fuse.OUT_HEADER);
        assertEquals(7, r.body().getInt(0));
        assertEquals(31, r.body().getInt(4));
        long flags = Integer.toUnsignedLong(r.body().getInt(12));
        assertEquals(Fuse.DO_READDIRPLUS | Fuse.HAS_IOCTL_DIR, flags, "only offered flags we support");
        assertEquals(1 << 20, r.body().getInt(20), "max_write");
        assertEquals(28, c.init(28, 0).ok().body().getInt(4));
        FuseClient.Reply newer = c.call(Fuse.INIT, 0, body().i32(8).i32(0).i32(0).i32(0)).ok();
        assertEquals(7, newer.body().getInt(0));
        assertEquals(0, c.call(Fuse.DESTROY, 0, new byte[0]).ok().body().remaining());
        assertEquals(Errnos.EIO, c.getattr(ROOT).error(), "after DESTROY");
    }

    // ------------------------------------------------------------------ lookup / attrs

    @Test
    void lookupGetattrForget() throws Exception {
        Files.writeString(dir.resolve("a.txt"), "hello");
        client();
        FuseClient.Reply e = c.lookup(ROOT, "a.txt").ok();
        long node = e.nodeId();
        assertTrue(node > 1);
        assertEquals(5, e.attrSize(40));
        assertEquals(0100000, e.attrMode(40) & 0170000);
        assertEquals(Files.getAttribute(dir.resolve("a.txt"), "unix:ino"), e.attrIno(40));
        assertEquals(node, c.lookupNode(ROOT, "a.txt"), "same inode, same node id");
        FuseClient.Reply a = c.getattr(node).ok();
        assertEquals(5, a.attrSize(16));
        assertEquals(Errnos.ENOENT, c.lookup(ROOT, "missing").error());
        int before = fs.inodeCount();
        assertNull(c.forget(node, 1));
        assertEquals(before, fs.inodeCount(), "one lookup left");
        assertNull(c.forget(node, 1));
        assertEquals(before - 1, fs.inodeCount());
        assertEquals(Errnos.ENOENT, c.getattr(node).error(), "forgotten node");
        // BATCH_FORGET
        long n1 = c.lookupNode(ROOT, "a.txt");
        c.lookupNode(ROOT, "a.txt");
        assertNull(c.call(Fuse.BATCH_FORGET, 0, body().i32(1).i32(0).i64(n1).i64(2)));
        assertEquals(before - 1, fs.inodeCount());
    }

    /** Linux's virtio-fs driver sends FORGETs on the hiprio queue with no device-writable buffer at all. */
    @Test
    void forgetWithoutReplyRoomIsStillHonoured() throws Exception {
        Files.writeString(dir.resolve("a.txt"), "hello");
        client();
        int before = fs.inodeCount();
        long node = c.lookupNode(ROOT, "a.txt");
        assertEquals(before + 1, fs.inodeCount());
        ByteBuffer forget = ByteBuffer.allocate(Fuse.IN_HEADER + 8).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        forget.putInt(Fuse.IN_HEADER + 8).putInt(Fuse.FORGET).putLong(c.nextUnique()).putLong(node).putInt(0).putInt(0)
                .putInt(1).putInt(0).putLong(1).flip();
        assertEquals(0, c.server.handle(forget, ByteBuffer.allocate(0)), "FORGET takes no reply");
        assertEquals(before, fs.inodeCount(), "FORGET without reply room dropped the lookup");

        long n1 = c.lookupNode(ROOT, "a.txt");
        ByteBuffer batch = ByteBuffer.allocate(Fuse.IN_HEADER + 8 + 16).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        batch.putInt(Fuse.IN_HEADER + 24).putInt(Fuse.BATCH_FORGET).putLong(c.nextUnique()).putLong(0).putInt(0)
                .putInt(0).putInt(1).putInt(0).putInt(1).putInt(0).putLong(n1).putLong(1).flip();
        assertEquals(0, c.server.handle(batch, ByteBuffer.allocate(0)), "BATCH_FORGET takes no reply");
        assertEquals(before, fs.inodeCount(), "BATCH_FORGET without reply room dropped the lookup");
        assertEquals(0, c.server.handle(ByteBuffer.allocate(Fuse.IN_HEADER).putInt(0, Fuse.IN_HEADER)
                .putInt(4, Fuse.GETATTR), ByteBuffer.allocate(8)), "a request that needs a reply and has no room");
    }

    @Test
    void badNamesAreRefused() {
        client();
        assertEquals(Errnos.EINVAL, c.lookup(ROOT, "..").error());
        assertEquals(Errnos.EINVAL, c.lookup(ROOT, ".").error());
        assertEquals(Errnos.EINVAL, c.lookup(ROOT, "a/b").error());
        assertEquals(Errnos.ENOENT, c.lookup(ROOT, "").error());
        assertEquals(Errnos.ENAMETOOLONG, c.lookup(ROOT, "x".repeat(256)).error());
        assertEquals(Errnos.EINVAL, c.mkdir(ROOT, "../escape", 0755).error());
        assertFalse(Files.exists(dir.getParent().resolve("escape")));
        assertEquals(Errnos.EINVAL, c.lookup(ROOT, "/etc").error());
    }

    @Test
    void setattrModeOwnerSizeTimes() throws Exception {
        Files.writeString(dir.resolve("f"), "0123456789");
        client();
        long n = c.lookupNode(ROOT, "f");
        c.setattr(n, SetAttr.FATTR_MODE, 0, 0, 0, 0, 0100600, 0, 0).ok();
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("f"))));
        c.setattr(n, SetAttr.FATTR_SIZE, 0, 4, 0, 0, 0, 0, 0).ok();
        assertEquals("0123", Files.readString(dir.resolve("f")));
        FuseClient.Reply r = c.setattr(n, SetAttr.FATTR_ATIME | SetAttr.FATTR_MTIME, 0, 0, 1000, 2000, 0, 0, 0).ok();
        assertEquals(2000, r.body().getLong(16 + 32), "mtime in attr_out");
        assertEquals(2000, Files.getLastModifiedTime(dir.resolve("f")).toMillis() / 1000);
        c.setattr(n, SetAttr.FATTR_MTIME_NOW, 0, 0, 0, 0, 0, 0, 0).ok();
        assertTrue(Files.getLastModifiedTime(dir.resolve("f")).toMillis() / 1000 > 2000);
        c.setattr(n, SetAttr.FATTR_UID | SetAttr.FATTR_GID, 0, 0, 0, 0, 0, 1234, 4321).ok();
        assertEquals(1234, Files.getAttribute(dir.resolve("f"), "unix:uid"));
        assertEquals(4321, Files.getAttribute(dir.resolve("f"), "unix:gid"));
        // on a handle
        long fh = c.openFh(n, O_RDWR);
        c.setattr(n, SetAttr.FATTR_SIZE | SetAttr.FATTR_FH, fh, 1, 0, 0, 0, 0, 0).ok();
        assertEquals("0", Files.readString(dir.resolve("f")));
        c.release(Fuse.RELEASE, n, fh).ok();
    }

    // ------------------------------------------------------------------ namespace ops

    @Test
    void createWriteReadFlushFsyncRelease() throws Exception {
        client();
        FuseClient.Reply cr = c.create(ROOT, "new.txt", O_RDWR | O_CREAT | O_EXCL, 0100644).ok();
        long node = cr.nodeId();
        long fh = FuseClient.createdFh(cr);
        assertEquals(8, c.write(node, fh, 0, utf8("contents")).ok().body().getInt(0));
        assertEquals("contents", Files.readString(dir.resolve("new.txt")));
        assertEquals("644", Integer.toOctalString((int) Files.getAttribute(dir.resolve("new.txt"), "unix:mode") & 0777));
        assertEquals("tent", str(c.read(node, fh, 3, 4).ok()));
        assertEquals("", str(c.read(node, fh, 100, 4).ok()), "EOF");
        c.call(Fuse.FLUSH, node, body().i64(fh).i32(0).i32(0).i64(0)).ok();
        c.call(Fuse.FSYNC, node, body().i64(fh).i32(0).i32(0)).ok();
        c.call(Fuse.FSYNC, node, body().i64(fh).i32(Fuse.FSYNC_FDATASYNC).i32(0)).ok();
        c.release(Fuse.RELEASE, node, fh).ok();
        assertEquals(Errnos.EBADF, c.read(node, fh, 0, 4).error(), "released fh");
        assertEquals(Errnos.EBADF, c.read(node, 999_999, 0, 4).error(), "unknown fh");
        assertEquals(Errnos.EBADF, c.read(node, -1, 0, 4).error());
        assertEquals(Errnos.EEXIST, c.create(ROOT, "new.txt", O_RDWR | O_CREAT | O_EXCL, 0100644).error());
        // OPEN with O_TRUNC
        long fh2 = c.openFh(node, O_WRONLY | O_TRUNC);
        assertEquals(0, Files.size(dir.resolve("new.txt")));
        c.release(Fuse.RELEASE, node, fh2).ok();
        assertEquals(0, fs.handleCount());
    }

    @Test
    void mkdirMknodSymlinkReadlinkLinkUnlinkRmdirRename() throws Exception {
        client();
        long d = c.mkdir(ROOT, "d", 040755).ok().nodeId();
        assertTrue(Files.isDirectory(dir.resolve("d")));
        assertEquals("755", Integer.toOctalString((int) Files.getAttribute(dir.resolve("d"), "unix:mode") & 0777));
        c.call(Fuse.MKNOD, d, body().i32(0010644).i32(0).i32(0).i32(0).str("fifo")).ok();
        assertTrue(Files.exists(dir.resolve("d/fifo")));
        assertEquals(0010000, (int) Files.getAttribute(dir.resolve("d/fifo"), "unix:mode") & 0170000);
        c.call(Fuse.MKNOD, d, body().i32(0100600).i32(0).i32(0).i32(0).str("reg")).ok();
        assertTrue(Files.isRegularFile(dir.resolve("d/reg")));
        long l = c.call(Fuse.SYMLINK, d, body().str("lnk").str("../target")).ok().nodeId();
        assertEquals("../target", Files.readSymbolicLink(dir.resolve("d/lnk")).toString());
        assertEquals("../target", str(c.call(Fuse.READLINK, l, new byte[0]).ok()));
        long reg = c.lookupNode(d, "reg");
        FuseClient.Reply link = c.call(Fuse.LINK, ROOT, body().i64(reg).str("hard")).ok();
        assertEquals(reg, link.nodeId());
        assertEquals(2, link.body().getInt(40 + 64), "nlink");
        assertEquals(Files.getAttribute(dir.resolve("d/reg"), "unix:ino"), Files.getAttribute(dir.resolve("hard"), "unix:ino"));
        c.call(Fuse.RENAME, d, body().i64(ROOT).str("reg").str("moved")).ok();
        assertTrue(Files.exists(dir.resolve("moved")));
        assertEquals(Errnos.EEXIST,
                c.call(Fuse.RENAME2, ROOT, body().i64(ROOT).i32(PosixFs.RENAME_NOREPLACE).i32(0).str("moved").str("hard"))
                        .error());
        Files.writeString(dir.resolve("moved"), "M");
        Files.writeString(dir.resolve("other"), "O");
        c.call(Fuse.RENAME2, ROOT, body().i64(ROOT).i32(PosixFs.RENAME_EXCHANGE).i32(0).str("moved").str("other")).ok();
        assertEquals("O", Files.readString(dir.resolve("moved")));
        assertEquals(Errnos.EXDEV, c.call(Fuse.RENAME, ROOT, body().i64(12345).str("moved").str("x")).error(),
                "unknown (other share's) directory");
        c.unlink(ROOT, "hard").ok();
        assertFalse(Files.exists(dir.resolve("hard")));
        assertEquals(Errnos.ENOTEMPTY, c.call(Fuse.RMDIR, ROOT, body().str("d")).error());
        c.unlink(d, "fifo").ok();
        c.unlink(d, "lnk").ok();
        c.call(Fuse.RMDIR, ROOT, body().str("d")).ok();
        assertFalse(Files.exists(dir.resolve("d")));
        assertEquals(Errnos.ENOENT, c.unlink(ROOT, "nope").error());
    }

    @Test
    void openOfSpecialFileIsRefused() throws Exception {
        client();
        long fifo = c.call(Fuse.MKNOD, ROOT, body().i32(0010644).i32(0).i32(0).i32(0).str("p")).ok().nodeId();
        assertEquals(Errnos.EACCES, c.open(fifo, O_RDONLY).error());
    }

    // ------------------------------------------------------------------ directories

    static List<String> parseDir(FuseClient.Reply r, boolean plus, long[] lastOff, List<Long> nodes) {
        List<String> names = new ArrayList<>();
        ByteBuffer b = r.body();
        int p = 0;
        while (p < b.limit()) {
            if (plus) {
                nodes.add(b.getLong(p));
                p += Fuse.ENTRY_OUT;
            }
            long off = b.getLong(p + 8);
            int len = b.getInt(p + 16);
            byte[] name = new byte[len];
            b.get(p + 24, name);
            names.add(new String(name, StandardCharsets.UTF_8));
            lastOff[0] = off;
            p += Fuse.align8(24 + len);
        }
        return names;
    }

    List<String> listAll(long node, int opcode, int size, List<Long> nodes) {
        long fh = c.opendir(node).ok().body().getLong(0);
        List<String> all = new ArrayList<>();
        long[] off = {0};
        while (true) {
            FuseClient.Reply r = c.readdir(opcode, node, fh, off[0], size).ok();
            if (r.body().remaining() == 0) {
                break;
            }
            all.addAll(parseDir(r, opcode == Fuse.READDIRPLUS, off, nodes));
        }
        c.release(Fuse.RELEASEDIR, node, fh).ok();
        return all;
    }

    @Test
    void tenThousandEntriesListedExactlyOnce() throws Exception {
        Path big = Files.createDirectory(dir.resolve("big"));
        for (int i = 0; i < 10_000; i++) {
            Files.createFile(big.resolve("entry-" + i));
        }
        client(PassthroughOptions.builder().descriptorCaps(10_001, 16).build()); // room for every entry's lookup
        long node = c.lookupNode(ROOT, "big");
        for (int opcode : new int[] {Fuse.READDIR, Fuse.READDIRPLUS}) {
            List<Long> nodes = new ArrayList<>();
            List<String> names = listAll(node, opcode, 512, nodes);
            assertEquals(10_002, names.size(), "every entry plus . and .. (opcode " + opcode + ")");
            Set<String> unique = new HashSet<>(names);
            assertEquals(10_002, unique.size(), "no duplicates");
            for (int i = 0; i < 10_000; i++) {
                assertTrue(unique.contains("entry-" + i));
            }
            if (opcode == Fuse.READDIRPLUS) {
                assertEquals(10_000, nodes.stream().filter(n -> n != 0).count(), "each entry looked up once");
                for (long n : nodes) {
                    if (n != 0) {
                        c.forget(n, 1);
                    }
                }
            }
        }
        assertEquals(2, fs.inodeCount(), "root and big only after forgets");
    }

    @Test
    void fsyncdirAndStatfsAndAccess() throws Exception {
        Files.writeString(dir.resolve("x"), "x");
        client();
        long fh = c.opendir(ROOT).ok().body().getLong(0);
        c.call(Fuse.FSYNCDIR, ROOT, body().i64(fh).i32(0).i32(0)).ok();
        c.release(Fuse.RELEASEDIR, ROOT, fh).ok();
        FuseClient.Reply s = c.call(Fuse.STATFS, ROOT, new byte[0]).ok();
        assertEquals(Fuse.STATFS_OUT, s.body().remaining());
        assertTrue(s.body().getLong(0) > 0, "blocks");
        assertEquals(255, s.body().getInt(44), "namelen");
        long x = c.lookupNode(ROOT, "x");
        c.call(Fuse.ACCESS, x, body().i32(PosixFs.R_OK | PosixFs.W_OK).i32(0)).ok();
        assertEquals(Errnos.EACCES, c.call(Fuse.ACCESS, x, body().i32(PosixFs.X_OK).i32(0)).error());
    }

    // ------------------------------------------------------------------ xattr, fallocate, lseek, copy

    @Test
    void xattrs() throws Exception {
        Files.writeString(dir.resolve("x"), "x");
        client();
        long x = c.lookupNode(ROOT, "x");
        FuseClient.Reply set = c.call(Fuse.SETXATTR, x, body().i32(3).i32(0).str("user.k").raw(utf8("abc")));
        org.junit.jupiter.api.Assumptions.assumeTrue(set.error() != Errnos.EOPNOTSUPP, "no user xattrs here");
        set.ok();
        assertEquals(3, c.call(Fuse.GETXATTR, x, body().i32(0).i32(0).str("user.k")).ok().body().getInt(0), "probe");
        assertEquals("abc", str(c.call(Fuse.GETXATTR, x, body().i32(10).i32(0).str("user.k")).ok()));
        assertEquals(Errnos.ERANGE, c.call(Fuse.GETXATTR, x, body().i32(2).i32(0).str("user.k")).error());
        int listLen = c.call(Fuse.LISTXATTR, x, body().i32(0).i32(0)).ok().body().getInt(0);
        String list = str(c.call(Fuse.LISTXATTR, x, body().i32(listLen).i32(0)).ok());
        assertTrue(list.contains("user.k\0"), list);
        c.call(Fuse.REMOVEXATTR, x, body().str("user.k")).ok();
        assertEquals(Errnos.ENODATA, c.call(Fuse.GETXATTR, x, body().i32(10).i32(0).str("user.k")).error());
    }

    @Test
    void fallocateLseekCopyFileRange() throws Exception {
        client();
        FuseClient.Reply cr = c.create(ROOT, "src", O_RDWR | O_CREAT, 0100644).ok();
        long src = cr.nodeId(), fh = FuseClient.createdFh(cr);
        c.call(Fuse.FALLOCATE, src, body().i64(fh).i64(0).i64(1 << 20).i32(0).i32(0)).ok();
        assertEquals(1 << 20, Files.size(dir.resolve("src")));
        c.write(src, fh, 0, utf8("data")).ok();
        long data = c.call(Fuse.LSEEK, src, body().i64(fh).i64(0).i32(PosixFs.SEEK_DATA).i32(0)).ok().body().getLong(0);
        assertEquals(0, data);
        long hole = c.call(Fuse.LSEEK, src, body().i64(fh).i64(0).i32(PosixFs.SEEK_HOLE).i32(0)).ok().body().getLong(0);
        assertTrue(hole > 0 && hole <= 1 << 20, "hole at " + hole);
        FuseClient.Reply dr = c.create(ROOT, "dst", O_RDWR | O_CREAT, 0100644).ok();
        long dst = dr.nodeId(), dfh = FuseClient.createdFh(dr);
        FuseClient.Reply copied = c.call(Fuse.COPY_FILE_RANGE, src,
                body().i64(fh).i64(0).i64(dst).i64(dfh).i64(0).i64(4).i64(0)).ok();
        assertEquals(4, copied.body().getInt(0));
        assertEquals("data", Files.readString(dir.resolve("dst")));
    }

    // ------------------------------------------------------------------ escapes

    @Test
    void hostSymlinkToEtcIsNotFollowed() throws Exception {
        Files.createSymbolicLink(dir.resolve("etc"), Path.of("/etc"));
        Files.createSymbolicLink(dir.resolve("passwd"), Path.of("/etc/passwd"));
        client();
        FuseClient.Reply e = c.lookup(ROOT, "etc").ok();
        assertEquals(0120000, e.attrMode(40) & 0170000, "symlink inode");
        long link = e.nodeId();
        assertEquals(Errnos.ELOOP, c.open(link, O_RDONLY).error());
        assertEquals(Errnos.ENOTDIR, c.lookup(link, "passwd").error(), "no lookup through the link");
        assertEquals(Errnos.ENOTDIR, c.opendir(link).error());
        assertEquals("/etc", str(c.call(Fuse.READLINK, link, new byte[0]).ok()));
        FuseClient.Reply a = c.getattr(link).ok();
        assertEquals(0120000, a.attrMode(16) & 0170000);
        assertEquals(4, a.attrSize(16), "size of the link text, not of /etc");
        long pw = c.lookupNode(ROOT, "passwd");
        assertEquals(Errnos.ELOOP, c.open(pw, O_RDONLY).error());
        assertEquals(Errnos.EINVAL, c.call(Fuse.READLINK, ROOT, new byte[0]).error(), "READLINK of a directory");
    }

    @Test
    void hardLinkToOutsideFileIsServed() throws Exception {
        // Documented behaviour: a host hard link is the same inode, so it is inside the share.
        Path outside = Files.createTempFile(dir.getParent(), "outside", ".txt");
        try {
            Files.writeString(outside, "outside content");
            Files.createLink(dir.resolve("hl"), outside);
            client();
            long n = c.lookupNode(ROOT, "hl");
            long fh = c.openFh(n, O_RDONLY);
            assertEquals("outside content", str(c.read(n, fh, 0, 100).ok()));
        } finally {
            Files.deleteIfExists(outside);
        }
    }

    @Test
    void directorySwappedForSymlinkAfterLookupStaysContained() throws Exception {
        Path sub = Files.createDirectory(dir.resolve("sub"));
        Files.writeString(sub.resolve("inside"), "in");
        Path outside = Files.createTempDirectory(dir.getParent(), "outside");
        Files.writeString(outside.resolve("secret"), "s");
        try {
            client();
            long s = c.lookupNode(ROOT, "sub");
            Files.move(sub, dir.resolve("sub.old"));
            Files.createSymbolicLink(dir.resolve("sub"), outside);
            assertEquals(Errnos.ENOENT, c.lookup(s, "secret").error(), "still the original directory");
            assertEquals("in", new String(readAll(c.lookupNode(s, "inside")), StandardCharsets.UTF_8));
            c.create(s, "created", O_RDWR | O_CREAT, 0100644).ok();
            assertTrue(Files.exists(dir.resolve("sub.old/created")));
            assertFalse(Files.exists(outside.resolve("created")));
            // a fresh lookup of "sub" now gives the symlink, which cannot be walked
            long link = c.lookupNode(ROOT, "sub");
            assertEquals(Errnos.ENOTDIR, c.lookup(link, "secret").error());
            assertEquals(Errnos.ENOTDIR, c.create(link, "x", O_RDWR | O_CREAT, 0100644).error());
            assertFalse(Files.exists(outside.resolve("x")));
        } finally {
            try (var w = Files.walk(outside)) {
                w.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    byte[] readAll(long node) {
        long fh = c.openFh(node, O_RDONLY);
        byte[] b = c.read(node, fh, 0, 1 << 16).ok().bytes();
        c.release(Fuse.RELEASE, node, fh).ok();
        return b;
    }

    @Test
    void procSelfFdNamesAreJustNames() throws Exception {
        client();
        assertEquals(Errnos.ENOENT, c.lookup(ROOT, "proc").error());
        assertEquals(Errnos.EINVAL, c.lookup(ROOT, "/proc/self/fd/3").error());
        long p = c.mkdir(ROOT, "proc", 040755).ok().nodeId();
        long self = c.mkdir(p, "self", 040755).ok().nodeId();
        long fd = c.mkdir(self, "fd", 040755).ok().nodeId();
        c.create(fd, "3", O_RDWR | O_CREAT, 0100644).ok();
        assertTrue(Files.exists(dir.resolve("proc/self/fd/3")));
        assertEquals(0, c.getattr(c.lookupNode(fd, "3")).ok().attrSize(16));
    }

    // ------------------------------------------------------------------ read-only

    static String treeChecksum(Path root) throws Exception {
        java.security.MessageDigest md = java.security.MessageDigest.getInstance("SHA-256");
        List<String> lines = new ArrayList<>();
        try (var w = Files.walk(root)) {
            for (Path p : (Iterable<Path>) w::iterator) {
                String line = root.relativize(p) + " " + Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS)
                        + " " + Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS)
                        + " " + Files.getLastModifiedTime(p, LinkOption.NOFOLLOW_LINKS).toMillis();
                if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
                    line += " " + java.util.HexFormat.of().formatHex(
                            java.security.MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p)));
                }
                lines.add(line);
            }
        }
        lines.sort(null);
        lines.forEach(l -> md.update(utf8(l + "\n")));
        return java.util.HexFormat.of().formatHex(md.digest());
    }

    @Test
    void readOnlyShareRefusesEveryModification() throws Exception {
        Files.writeString(dir.resolve("f"), "content");
        Files.createDirectory(dir.resolve("d"));
        String before = treeChecksum(dir);
        client(PassthroughOptions.builder().readOnly(true).build());
        long f = c.lookupNode(ROOT, "f");
        long d = c.lookupNode(ROOT, "d");
        long rfh = c.openFh(f, O_RDONLY);
        int rofs = Errnos.EROFS;
        assertEquals(rofs, c.setattr(f, SetAttr.FATTR_MODE, 0, 0, 0, 0, 0100777, 0, 0).error());
        assertEquals(rofs, c.setattr(f, SetAttr.FATTR_SIZE, 0, 0, 0, 0, 0, 0, 0).error());
        assertEquals(rofs, c.call(Fuse.SYMLINK, ROOT, body().str("s").str("f")).error());
        assertEquals(rofs, c.call(Fuse.MKNOD, ROOT, body().i32(0100644).i32(0).i32(0).i32(0).str("n")).error());
        assertEquals(rofs, c.mkdir(ROOT, "m", 040755).error());
        assertEquals(rofs, c.unlink(ROOT, "f").error());
        assertEquals(rofs, c.call(Fuse.RMDIR, ROOT, body().str("d")).error());
        assertEquals(rofs, c.call(Fuse.RENAME, ROOT, body().i64(d).str("f").str("g")).error());
        assertEquals(rofs, c.call(Fuse.RENAME2, ROOT, body().i64(ROOT).i32(0).i32(0).str("f").str("g")).error());
        assertEquals(rofs, c.call(Fuse.LINK, ROOT, body().i64(f).str("h")).error());
        assertEquals(rofs, c.create(ROOT, "c", O_RDWR | O_CREAT, 0100644).error());
        assertEquals(rofs, c.open(f, O_WRONLY).error());
        assertEquals(rofs, c.open(f, O_RDWR).error());
        assertEquals(rofs, c.open(f, O_RDONLY | O_TRUNC).error());
        assertEquals(rofs, c.write(f, rfh, 0, utf8("x")).error());
        assertEquals(rofs, c.call(Fuse.FALLOCATE, f, body().i64(rfh).i64(0).i64(4096).i32(0).i32(0)).error());
        assertEquals(rofs, c.call(Fuse.SETXATTR, f, body().i32(1).i32(0).str("user.a").raw(utf8("b"))).error());
        assertEquals(rofs, c.call(Fuse.REMOVEXATTR, f, body().str("user.a")).error());
        assertEquals(rofs, c.call(Fuse.COPY_FILE_RANGE, f, body().i64(rfh).i64(0).i64(f).i64(rfh).i64(0).i64(4).i64(0))
                .error());
        assertEquals(rofs, c.call(Fuse.ACCESS, f, body().i32(PosixFs.W_OK).i32(0)).error());
        assertEquals("content", str(c.read(f, rfh, 0, 100).ok()), "reads still work");
        assertEquals(before, treeChecksum(dir));
    }

    // ------------------------------------------------------------------ virtual files and the exit ioctl

    @Test
    void virtualFilesAreServedButNotOnHost() throws Exception {
        Files.writeString(dir.resolve("host"), "h");
        Files.writeString(dir.resolve(".jkrun-config"), "hidden host file");
        client(PassthroughOptions.builder().virtualFile("init.krun", utf8("#!init"), 0755)
                .virtualFile(".jkrun-config", utf8("{}"), 0444).build());
        FuseClient.Reply e = c.lookup(ROOT, "init.krun").ok();
        long v = e.nodeId();
        assertTrue(Long.compareUnsigned(v, PassthroughFs.VIRTUAL_BASE) >= 0);
        assertEquals(0100755, e.attrMode(40));
        assertEquals(6, e.attrSize(40));
        assertEquals(6, c.getattr(v).ok().attrSize(16));
        assertEquals("#!init", new String(readAll(v), StandardCharsets.UTF_8));
        long cfg = c.lookupNode(ROOT, ".jkrun-config");
        assertEquals("{}", new String(readAll(cfg), StandardCharsets.UTF_8), "virtual hides the host file");
        long fh = c.openFh(v, O_RDONLY);
        assertEquals("init", str(c.read(v, fh, 2, 100).ok()));
        assertEquals(Errnos.ENXIO, c.call(Fuse.LSEEK, v, body().i64(fh).i64(6).i32(PosixFs.SEEK_DATA).i32(0)).error());
        c.release(Fuse.RELEASE, v, fh).ok();
        for (int opcode : new int[] {Fuse.READDIR, Fuse.READDIRPLUS}) {
            for (int size : new int[] {176, 512, 4096}) {
                List<String> names = listAll(ROOT, opcode, size, new ArrayList<>());
                assertEquals(1, names.stream().filter("init.krun"::equals).count(), names.toString());
                assertEquals(1, names.stream().filter(".jkrun-config"::equals).count(), names.toString());
                assertEquals(1, names.stream().filter("host"::equals).count(), names.toString());
                assertEquals(5, names.size(), names.toString());
            }
        }
        assertFalse(Files.exists(dir.resolve("init.krun")));
        int rofs = Errnos.EROFS;
        assertEquals(rofs, c.open(v, O_RDWR).error());
        assertEquals(rofs, c.create(ROOT, "init.krun", O_RDWR | O_CREAT, 0100644).error());
        assertEquals(rofs, c.call(Fuse.MKNOD, ROOT, body().i32(0100644).i32(0).i32(0).i32(0).str("init.krun")).error());
        assertEquals(rofs, c.unlink(ROOT, "init.krun").error());
        assertEquals(rofs, c.unlink(ROOT, ".jkrun-config").error());
        assertTrue(Files.exists(dir.resolve(".jkrun-config")), "hidden host file untouched");
        assertEquals(rofs, c.setattr(v, SetAttr.FATTR_MODE, 0, 0, 0, 0, 0100777, 0, 0).error());
        assertEquals(rofs, c.call(Fuse.RENAME, ROOT, body().i64(ROOT).str("host").str("init.krun")).error());
        assertFalse(Files.exists(dir.resolve("init.krun")));
        assertEquals(Errnos.ENODATA, c.call(Fuse.GETXATTR, v, body().i32(10).i32(0).str("user.k")).error());
        assertEquals(Errnos.ENOENT, c.lookup(c.mkdir(ROOT, "sub", 040755).ok().nodeId(), "init.krun").error(),
                "only at the root");
    }

    FuseClient.Reply ioctl(long node, int cmd, long arg) {
        return c.call(Fuse.IOCTL, node, body().i64(0).i32(Fuse.IOCTL_DIR).i32(cmd).i64(arg).i32(0).i32(0));
    }

    @Test
    void exitCodeIoctlCallsListener() throws Exception {
        client(PassthroughOptions.builder().exitCodeListener(exitCode::set).build());
        FuseClient.Reply r = ioctl(ROOT, PassthroughFs.IOCTL_EXIT_CODE, 42).ok();
        assertEquals(Fuse.IOCTL_OUT, r.body().remaining());
        assertEquals(0, r.body().getInt(0), "result");
        assertEquals(42, exitCode.get());
        Files.writeString(dir.resolve("f"), "x");
        long f = c.lookupNode(ROOT, "f");
        assertEquals(Errnos.ENOTTY, ioctl(f, PassthroughFs.IOCTL_EXIT_CODE, 7).error(), "only on the root");
        assertEquals(Errnos.ENOTTY, ioctl(ROOT, 0x5401, 0).error());
        assertEquals(42, exitCode.get());
    }

    @Test
    void twoSharesAreIndependent(@TempDir Path other) throws Exception {
        Files.writeString(dir.resolve("a"), "a");
        client();
        try (PassthroughFs fs2 = new PassthroughFs(other, PassthroughOptions.defaults())) {
            FuseClient c2 = new FuseClient(new FuseServer(fs2));
            c2.init();
            long d2 = c2.mkdir(ROOT, "d2", 040755).ok().nodeId();
            assertEquals(Errnos.EXDEV, c.call(Fuse.RENAME, ROOT, body().i64(d2 + 1000).str("a").str("a")).error());
            assertEquals(Errnos.ENOENT, c.lookup(ROOT, "d2").error());
            assertTrue(Files.exists(dir.resolve("a")));
        }
    }
}
