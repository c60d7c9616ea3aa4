package dev.jkrun.devices.fs;

import static dev.jkrun.devices.fs.FuseClient.body;
import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jkrun.devices.fs.fuse.Fuse;
import dev.jkrun.devices.fs.fuse.FuseServer;
import dev.jkrun.devices.fs.passthrough.PassthroughFs;
import dev.jkrun.devices.fs.passthrough.PassthroughOptions;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.PosixFs;
import java.nio.charset.StandardCharsets;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What a hostile guest tries against a passthrough share: special files, privileges, host-only xattrs. */
class PassthroughFsHostileTest {
    static final long ROOT = 1;
    static final int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0100, O_EXCL = 0200, O_TRUNC = 01000;
    static final int S_IFCHR = 0020000, S_IFIFO = 0010000, S_IFREG = 0100000, S_IFDIR = 0040000;
    static final int DEV_NULL = 0x103; // makedev(1, 3), the same in glibc's and the kernel's encoding
    static final Duration QUICK = Duration.ofSeconds(5);

    @TempDir
    Path dir;
    PassthroughFs fs;
    FuseClient c;

    FuseClient client(PassthroughOptions options) { return client(dir, options); }

    FuseClient client(Path root, PassthroughOptions options) {
        fs = new PassthroughFs(root, options);
        c = new FuseClient(new FuseServer(fs, options.readOnly()));
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

    static boolean root() { return PosixFs.geteuid() == 0; }

    static byte[] utf8(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    static int hostMode(Path p) throws Exception {
        return (int) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
    }

    FuseClient.Reply mknod(long parent, String name, int mode, int rdev) {
        return c.call(Fuse.MKNOD, parent, body().i32(mode).i32(rdev).i32(0).i32(0).str(name));
    }

    /** Opening the FIFO read-write on the host never blocks, and releases an opener stuck on either end. */
    static void unblock(Path fifo) {
        try (FileDescriptor fd = PosixFs.openat(null, PosixFs.bytes(fifo.toString()), O_RDWR, 0)) {
            assertTrue(fd.isOpen());
        } catch (NativeCallException ignored) {
            // gone already
        }
    }

    // ------------------------------------------------------------------ CREATE of special files (finding 3)

    @Test
    void createOfAnExistingFifoIsRefusedWithoutBlocking() {
        client();
        mknod(ROOT, "fifo", S_IFIFO | 0666, 0).ok();
        Path fifo = dir.resolve("fifo");
        try {
            for (int flags : new int[] {O_WRONLY | O_CREAT, O_RDONLY | O_CREAT, O_RDWR | O_CREAT | O_TRUNC}) {
                FuseClient.Reply r = assertTimeoutPreemptively(QUICK, () -> c.create(ROOT, "fifo", flags, 0100644),
                        "CREATE of a FIFO must not block the worker");
                assertEquals(Errnos.EACCES, r.error(), "flags " + Integer.toOctalString(flags));
            }
            assertEquals(0, fs.handleCount());
            assertEquals(2, fs.inodeCount(), "the refused CREATE holds no lookup");
        } finally {
            unblock(fifo);
        }
        assertEquals(Errnos.EEXIST, c.create(ROOT, "fifo", O_WRONLY | O_CREAT | O_EXCL, 0100644).error());
    }

    @Test
    void createOfAnExistingDeviceNodeIsRefused() {
        assumeTrue(root(), "mknod of a device node needs root");
        PosixFs.mknodat(null, PosixFs.bytes(dir.resolve("null").toString()), S_IFCHR | 0666, DEV_NULL);
        client();
        FuseClient.Reply r = assertTimeoutPreemptively(QUICK, () -> c.create(ROOT, "null", O_RDWR | O_CREAT, 0100644));
        assertEquals(Errnos.EACCES, r.error(), "a host device node in the share is never opened");
        assertEquals(0, fs.handleCount());
    }

    @Test
    void createOfAnExistingDirectoryOrSymlinkIsRefused() throws Exception {
        Files.createDirectory(dir.resolve("d"));
        Files.createSymbolicLink(dir.resolve("l"), Path.of("/etc/passwd"));
        client();
        assertEquals(Errnos.EISDIR, c.create(ROOT, "d", O_RDONLY | O_CREAT, 0100644).error());
        assertEquals(Errnos.ELOOP, c.create(ROOT, "l", O_RDONLY | O_CREAT, 0100644).error());
        assertEquals(0, fs.handleCount());
    }

    @Test
    void createOfAnExistingRegularFileOpensIt() throws Exception {
        Files.writeString(dir.resolve("f"), "old content");
        client();
        FuseClient.Reply r = c.create(ROOT, "f", O_RDWR | O_CREAT | O_TRUNC, 0100600).ok();
        long n = r.nodeId(), fh = FuseClient.createdFh(r);
        assertEquals(0, Files.size(dir.resolve("f")), "O_TRUNC honoured");
        assertEquals("644", Integer.toOctalString(hostMode(dir.resolve("f")) & 0777), "mode of an existing file kept");
        c.write(n, fh, 0, utf8("new")).ok();
        assertEquals("new", Files.readString(dir.resolve("f")));
        c.release(Fuse.RELEASE, n, fh).ok();
    }

    /**
     * Host files are opened O_NONBLOCK: a regular file ignores it, but one that would block (a lease held on the host,
     * or a pseudo-file such as /proc/kmsg in a share of the host's /) answers EAGAIN instead of stopping the worker.
     */
    @Test
    void hostOpensNeverBlock() throws Exception {
        Files.writeString(dir.resolve("f"), "x");
        client();
        long n = c.lookupNode(ROOT, "f");
        long fh = c.openFh(n, O_RDWR);
        int checked = 0;
        for (String fd : openFdNames()) {
            Path target;
            List<String> info;
            try {
                target = Files.readSymbolicLink(Path.of("/proc/self/fd", fd));
                info = Files.readAllLines(Path.of("/proc/self/fdinfo", fd));
            } catch (java.nio.file.NoSuchFileException listing) {
                continue; // the directory stream that listed them
            }
            int flags = Integer.parseInt(info.stream().filter(l -> l.startsWith("flags:")).findFirst().orElseThrow()
                    .substring(6).trim(), 8);
            if (target.equals(dir.resolve("f")) && (flags & PosixFs.O_PATH) == 0) {
                assertTrue((flags & PosixFs.O_NONBLOCK) != 0, "flags 0" + Integer.toOctalString(flags));
                checked++;
            }
        }
        assertEquals(1, checked, "the handle's descriptor");
        assertEquals("x", new String(c.read(n, fh, 0, 10).ok().bytes(), StandardCharsets.UTF_8), "reads as usual");
        c.release(Fuse.RELEASE, n, fh).ok();
    }

    static java.util.Set<String> openFdNames() throws Exception {
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.map(p -> p.getFileName().toString()).collect(java.util.stream.Collectors.toSet());
        }
    }

    // ------------------------------------------------------------------ MKNOD of devices

    @Test
    void mknodOfDeviceNodesIsRefusedByDefault() throws Exception {
        client();
        assertEquals(Errnos.EPERM, mknod(ROOT, "null", S_IFCHR | 0666, DEV_NULL).error());
        assertEquals(Errnos.EPERM, mknod(ROOT, "sda", 0060000 | 0660, 0x800).error(), "block device");
        assertFalse(Files.exists(dir.resolve("null"), LinkOption.NOFOLLOW_LINKS));
        assertFalse(Files.exists(dir.resolve("sda"), LinkOption.NOFOLLOW_LINKS));
        assertEquals(Errnos.EPERM, mknod(ROOT, "dir", S_IFDIR | 0755, 0).error(), "MKNOD does not make directories");
        assertEquals(Errnos.EINVAL, mknod(ROOT, "lnk", 0120000 | 0777, 0).error(), "nor symlinks");
        mknod(ROOT, "fifo", S_IFIFO | 0644, 0).ok();
        mknod(ROOT, "sock", 0140000 | 0644, 0).ok();
        mknod(ROOT, "reg", S_IFREG | 0644, 0).ok();
        if (root()) {
            mknod(ROOT, "whiteout", S_IFCHR, 0).ok(); // overlayfs whiteout (0:0): nothing to open behind it
            assertEquals(S_IFCHR, hostMode(dir.resolve("whiteout")) & 0170000);
        }
    }

    @Test
    void mknodOfDeviceNodesWhenAllowed() throws Exception {
        assumeTrue(root(), "mknod of a device node needs root");
        client(PassthroughOptions.builder().allowDeviceNodes(true).build());
        long n = mknod(ROOT, "null", S_IFCHR | 0666, DEV_NULL).ok().nodeId();
        assertEquals(S_IFCHR, hostMode(dir.resolve("null")) & 0170000);
        assertEquals(Errnos.EACCES, c.open(n, O_RDWR).error(), "still never opened on the host");
        assertEquals(Errnos.EACCES, c.create(ROOT, "null", O_RDWR | O_CREAT, 0100644).error());
    }

    // ------------------------------------------------------------------ setuid / setgid

    @Test
    void setuidAndSetgidBitsAreStrippedFromGuestModes() throws Exception {
        client();
        FuseClient.Reply cr = c.create(ROOT, "suid", O_RDWR | O_CREAT | O_EXCL, 0104755).ok();
        assertEquals(0755, hostMode(dir.resolve("suid")) & 07777, "CREATE");
        assertEquals(0755, cr.attrMode(40) & 07777, "the guest sees what the host has");
        c.release(Fuse.RELEASE, cr.nodeId(), FuseClient.createdFh(cr)).ok();
        mknod(ROOT, "sgid", S_IFREG | 02755, 0).ok();
        assertEquals(0755, hostMode(dir.resolve("sgid")) & 07777, "MKNOD");
        long f = c.lookupNode(ROOT, "suid");
        FuseClient.Reply sa = c.setattr(f, SetAttr.FATTR_MODE, 0, 0, 0, 0, 0106755, 0, 0).ok();
        assertEquals(0755, hostMode(dir.resolve("suid")) & 07777, "SETATTR");
        assertEquals(0755, sa.attrMode(16) & 07777);
        long d = c.mkdir(ROOT, "shared", 042775).ok().nodeId();
        assertEquals(0775, hostMode(dir.resolve("shared")) & 07777,
                "MKDIR: set-group-ID only inherited, as Linux's mkdir(2) (its VFS never sends it)");
        c.setattr(d, SetAttr.FATTR_MODE, 0, 0, 0, 0, 046775, 0, 0).ok();
        assertEquals(02775, hostMode(dir.resolve("shared")) & 07777, "setgid directories keep their bit");
        c.setattr(d, SetAttr.FATTR_MODE, 0, 0, 0, 0, 046775, 0, 0).ok();
        assertEquals(02775, hostMode(dir.resolve("shared")) & 07777, "setuid is meaningless on directories: dropped");
    }

    /** Found by FuseServerFuzzTest: a directory's node with a file's handle kept S_ISGID (allowed on directories). */
    @Test
    void setattrWithAnotherFilesHandleIsRefused() throws Exception {
        client();
        FuseClient.Reply cr = c.create(ROOT, "f", O_RDWR | O_CREAT | O_EXCL, 0100644).ok();
        long f = cr.nodeId(), fh = FuseClient.createdFh(cr); // (a reply's body is only valid until the next call)
        long d = c.mkdir(ROOT, "d", 040755).ok().nodeId();
        int mode = SetAttr.FATTR_MODE | SetAttr.FATTR_FH, size = SetAttr.FATTR_SIZE | SetAttr.FATTR_FH;
        assertEquals(Errnos.EBADF, c.setattr(d, mode, fh, 0, 0, 0, 02755, 0, 0).error());
        assertEquals(Errnos.EBADF, c.setattr(ROOT, size, fh, 0, 0, 0, 0, 0, 0).error());
        assertEquals(0644, hostMode(dir.resolve("f")) & 07777);
        assertEquals(0755, hostMode(dir.resolve("d")) & 07777);
        c.setattr(f, mode, fh, 0, 0, 0, 02755, 0, 0).ok();
        assertEquals(0755, hostMode(dir.resolve("f")) & 07777, "its own handle: setgid still dropped");
        c.release(Fuse.RELEASE, f, fh).ok();
    }

    @Test
    void writableOpenOfAHostSetuidFileDropsItsPrivileges() throws Exception {
        Path f = dir.resolve("prog");
        Files.writeString(f, "#!/bin/sh\n");
        Files.setAttribute(f, "unix:mode", 04755);
        Path g = dir.resolve("prog2");
        Files.writeString(g, "#!/bin/sh\n");
        Files.setAttribute(g, "unix:mode", 02755);
        client();
        long n = c.lookupNode(ROOT, "prog");
        long rfh = c.openFh(n, O_RDONLY);
        assertEquals(04755, hostMode(f) & 07777, "reading changes nothing");
        long wfh = c.openFh(n, O_WRONLY);
        assertEquals(0755, hostMode(f) & 07777, "a guest that can rewrite it gets no setuid program on the host");
        c.release(Fuse.RELEASE, n, rfh).ok();
        c.release(Fuse.RELEASE, n, wfh).ok();
        FuseClient.Reply cr = c.create(ROOT, "prog2", O_WRONLY | O_CREAT | O_TRUNC, 0100755).ok();
        assertEquals(0755, hostMode(g) & 07777, "CREATE of an existing setgid file");
        c.release(Fuse.RELEASE, cr.nodeId(), FuseClient.createdFh(cr)).ok();
        Files.setAttribute(f, "unix:mode", 04755);
        c.setattr(n, SetAttr.FATTR_SIZE, 0, 0, 0, 0, 0, 0, 0).ok();
        assertEquals(0755, hostMode(f) & 07777, "truncate through SETATTR");
    }

    /** The host kernel drops a file capability on any write, even by root: nothing to do for us but rely on it. */
    @Test
    void writeDropsAHostFileCapability() throws Exception {
        assumeTrue(root(), "security.capability needs root on the host");
        Path f = dir.resolve("ping");
        Files.writeString(f, "binary");
        byte[] path = PosixFs.bytes(f.toString());
        // struct vfs_cap_data revision 2 (little-endian): effective, cap_net_raw (13) permitted
        byte[] cap = {1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        try {
            PosixFs.setxattr(path, utf8("security.capability"), cap, cap.length, 0);
        } catch (NativeCallException e) {
            assumeTrue(false, "no security xattrs here: " + e.getMessage());
        }
        client();
        long n = c.lookupNode(ROOT, "ping");
        long fh = c.openFh(n, O_RDWR);
        c.write(n, fh, 0, utf8("B")).ok();
        c.release(Fuse.RELEASE, n, fh).ok();
        NativeCallException gone = assertThrows(NativeCallException.class,
                () -> PosixFs.getxattr(path, utf8("security.capability"), null, 0));
        assertEquals(Errnos.ENODATA, gone.errno());
    }

    @Test
    void setuidAllowedWhenConfigured() throws Exception {
        client(PassthroughOptions.builder().allowSetuid(true).build());
        FuseClient.Reply cr = c.create(ROOT, "suid", O_RDWR | O_CREAT | O_EXCL, 0104755).ok();
        long n = cr.nodeId(), fh = FuseClient.createdFh(cr);
        assertEquals(04755, hostMode(dir.resolve("suid")) & 07777);
        long wfh = c.openFh(n, O_WRONLY);
        assertEquals(04755, hostMode(dir.resolve("suid")) & 07777);
        c.release(Fuse.RELEASE, n, wfh).ok();
        c.release(Fuse.RELEASE, n, fh).ok();
    }

    // ------------------------------------------------------------------ trusted.* and security.* xattrs

    FuseClient.Reply setxattr(long node, String name, String value) {
        return c.call(Fuse.SETXATTR, node, body().i32(utf8(value).length).i32(0).str(name).raw(utf8(value)));
    }

    FuseClient.Reply getxattr(long node, String name, int size) {
        return c.call(Fuse.GETXATTR, node, body().i32(size).i32(0).str(name));
    }

    String listxattr(long node) {
        int len = c.call(Fuse.LISTXATTR, node, body().i32(0).i32(0)).ok().body().getInt(0);
        if (len == 0) {
            return "";
        }
        return new String(c.call(Fuse.LISTXATTR, node, body().i32(len).i32(0)).ok().bytes(), StandardCharsets.UTF_8);
    }

    static boolean hostHas(Path p, String name) {
        try {
            PosixFs.getxattr(PosixFs.bytes(p.toString()), utf8(name), null, 0);
            return true;
        } catch (NativeCallException e) {
            return false;
        }
    }

    @Test
    void privilegedXattrsAreKeptInTheUserNamespaceOnTheHost() throws Exception {
        Path f = dir.resolve("f");
        Files.writeString(f, "x");
        try {
            PosixFs.setxattr(PosixFs.bytes(f.toString()), utf8("user.probe"), utf8("1"), 1, 0);
            PosixFs.removexattr(PosixFs.bytes(f.toString()), utf8("user.probe"));
        } catch (NativeCallException e) {
            assumeTrue(false, "no user xattrs here");
        }
        client();
        long n = c.lookupNode(ROOT, "f");
        setxattr(n, "trusted.overlay.opaque", "y").ok();
        setxattr(n, "security.capability", "caps").ok();
        setxattr(n, "user.plain", "p").ok();
        assertFalse(hostHas(f, "trusted.overlay.opaque"), "no trusted.* on the host");
        assertFalse(hostHas(f, "security.capability"), "no file capability on the host");
        assertTrue(hostHas(f, "user.jkrun.trusted.overlay.opaque"));
        assertTrue(hostHas(f, "user.jkrun.security.capability"));
        assertTrue(hostHas(f, "user.plain"));
        assertEquals("y", new String(getxattr(n, "trusted.overlay.opaque", 10).ok().bytes(), StandardCharsets.UTF_8));
        assertEquals(4, getxattr(n, "security.capability", 0).ok().body().getInt(0));
        String list = listxattr(n);
        assertTrue(list.contains("trusted.overlay.opaque\0"), list);
        assertTrue(list.contains("security.capability\0"), list);
        assertTrue(list.contains("user.plain\0"), list);
        assertFalse(list.contains("user.jkrun."), list);
        assertEquals(Errnos.ERANGE, c.call(Fuse.LISTXATTR, n, body().i32(list.length() - 1).i32(0)).error());
        assertEquals(Errnos.EPERM, setxattr(n, "user.jkrun.security.capability", "forged").error(),
                "the host-side names are not reachable directly");
        assertEquals(Errnos.ENODATA, getxattr(n, "user.jkrun.trusted.overlay.opaque", 10).error());
        c.call(Fuse.REMOVEXATTR, n, body().str("trusted.overlay.opaque")).ok();
        assertFalse(hostHas(f, "user.jkrun.trusted.overlay.opaque"));
        assertEquals(Errnos.EPERM, c.call(Fuse.REMOVEXATTR, n, body().str("user.jkrun.security.capability")).error());
        assertTrue(hostHas(f, "user.jkrun.security.capability"));
    }

    @Test
    void hostPrivilegedXattrsAreHiddenFromTheGuest() throws Exception {
        assumeTrue(root(), "trusted.* needs root on the host");
        Path f = dir.resolve("f");
        Files.writeString(f, "x");
        try {
            PosixFs.setxattr(PosixFs.bytes(f.toString()), utf8("trusted.host"), utf8("secret"), 6, 0);
        } catch (NativeCallException e) {
            assumeTrue(false, "no trusted xattrs here");
        }
        client();
        long n = c.lookupNode(ROOT, "f");
        assertEquals(Errnos.ENODATA, getxattr(n, "trusted.host", 10).error());
        assertFalse(listxattr(n).contains("trusted.host"));
        setxattr(n, "trusted.host", "guest").ok();
        assertEquals("secret", new String(readHost(f, "trusted.host"), StandardCharsets.UTF_8), "host value untouched");
        assertEquals(Errnos.ENODATA, c.call(Fuse.REMOVEXATTR, n, body().str("trusted.other")).error());
    }

    static byte[] readHost(Path p, String name) {
        byte[] buf = new byte[256];
        int len = PosixFs.getxattr(PosixFs.bytes(p.toString()), utf8(name), buf, buf.length);
        return java.util.Arrays.copyOf(buf, len);
    }

    // ------------------------------------------------------------------ host descriptor caps (finding 6)

    /**
     * This process's descriptors on files of the share: what the caps bound. Only those, not every descriptor of the
     * JVM, which the JVM opens on its own (a jar reached for the first time, the fuzzing agent's instrumentation of a
     * class loading now) whatever order the tests run in.
     */
    long processFds() throws Exception {
        String share = dir.toRealPath().toString();
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.filter(fd -> {
                try {
                    String target = Files.readSymbolicLink(fd).toString();
                    return target.equals(share) || target.startsWith(share + "/");
                } catch (IOException | UnsupportedOperationException e) {
                    return false; // closed since the listing
                }
            }).count();
        }
    }

    @Test
    void lookupsPastTheInodeCapFailEnfileUntilForgotten() throws Exception {
        Path d = Files.createDirectory(dir.resolve("d"));
        for (int i = 0; i < 200; i++) {
            Files.writeString(d.resolve("f" + i), "x");
        }
        client(PassthroughOptions.builder().descriptorCaps(8, 4).build());
        long before = processFds();
        long dn = c.lookupNode(ROOT, "d"); // one of the 8
        List<Long> nodes = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            FuseClient.Reply r = c.lookup(dn, "f" + i);
            if (r.error() == 0) {
                nodes.add(r.nodeId());
            } else {
                assertEquals(Errnos.ENFILE, r.error(), "f" + i);
            }
        }
        assertEquals(7, nodes.size());
        assertTrue(processFds() <= before + 8, "fds: " + processFds() + " after, " + before + " before");
        assertEquals(nodes.get(0), c.lookupNode(dn, "f0"), "a known inode still resolves at the cap");
        assertEquals(Errnos.ENFILE, c.mkdir(dn, "new", 040755).error());
        assertEquals(Errnos.ENFILE, mknod(dn, "new", S_IFREG | 0644, 0).error());
        assertEquals(Errnos.ENFILE, c.call(Fuse.SYMLINK, dn, body().str("new").str("t")).error());
        assertEquals(Errnos.ENFILE, c.create(dn, "new", O_RDWR | O_CREAT, 0100644).error());
        assertFalse(Files.exists(d.resolve("new"), LinkOption.NOFOLLOW_LINKS), "nothing made past the cap");
        c.forget(nodes.get(1), 1);
        assertEquals(0, c.lookup(dn, "f100").error(), "room again after FORGET");
        assertEquals(Errnos.ENFILE, c.lookup(dn, "f101").error());
        // READDIRPLUS past the cap: every name, the ones beyond it without a lookup (node id 0)
        long fh = c.opendir(dn).ok().body().getLong(0);
        Set<String> names = new HashSet<>();
        int looked = 0;
        for (long off = 0; ; ) {
            FuseClient.Reply r = c.readdir(Fuse.READDIRPLUS, dn, fh, off, 4096).ok();
            if (r.body().remaining() == 0) {
                break;
            }
            List<Long> ids = new ArrayList<>();
            long[] last = {0};
            names.addAll(PassthroughFsTest.parseDir(r, true, last, ids));
            looked += (int) ids.stream().filter(id -> id != 0).count();
            off = last[0];
        }
        c.release(Fuse.RELEASEDIR, dn, fh).ok();
        assertEquals(202, names.size(), "every entry listed");
        assertEquals(9, fs.inodeCount(), "root + the cap");
        assertTrue(processFds() <= before + 8, "fds after READDIRPLUS: " + processFds());
        assertTrue(looked <= 7, "entries with a lookup: " + looked);
    }

    @Test
    void opensPastTheHandleCapFailEmfileUntilReleased() throws Exception {
        Files.writeString(dir.resolve("f"), "x");
        client(PassthroughOptions.builder().descriptorCaps(16, 4).build());
        long before = processFds();
        long n = c.lookupNode(ROOT, "f");
        List<Long> fhs = new ArrayList<>();
        for (int i = 0; i < 100; i++) {
            FuseClient.Reply r = c.open(n, O_RDWR | O_TRUNC);
            if (r.error() == 0) {
                fhs.add(r.body().getLong(0));
            } else {
                assertEquals(Errnos.EMFILE, r.error());
            }
        }
        assertEquals(4, fhs.size());
        assertTrue(processFds() <= before + 1 + 4, "fds: " + processFds() + " after, " + before + " before");
        assertEquals(Errnos.EMFILE, c.opendir(ROOT).error());
        assertEquals(Errnos.EMFILE, c.create(ROOT, "g", O_RDWR | O_CREAT, 0100644).error());
        assertFalse(Files.exists(dir.resolve("g")), "CREATE past the cap makes nothing");
        c.release(Fuse.RELEASE, n, fhs.get(0)).ok();
        long dfh = c.opendir(ROOT).ok().body().getLong(0);
        assertEquals(Errnos.EMFILE, c.open(n, O_RDONLY).error());
        c.release(Fuse.RELEASEDIR, ROOT, dfh).ok();
        FuseClient.Reply cr = c.create(ROOT, "g", O_RDWR | O_CREAT, 0100644).ok();
        c.release(Fuse.RELEASE, cr.nodeId(), FuseClient.createdFh(cr)).ok();
        for (int i = 1; i < fhs.size(); i++) {
            c.release(Fuse.RELEASE, n, fhs.get(i)).ok();
        }
        assertEquals(0, fs.handleCount());
    }

    @Test
    void defaultCapsLeaveMostOfTheProcessDescriptorLimit() {
        PassthroughOptions o = PassthroughOptions.defaults();
        long limit = ((com.sun.management.UnixOperatingSystemMXBean)
                java.lang.management.ManagementFactory.getOperatingSystemMXBean()).getMaxFileDescriptorCount();
        assertTrue(o.maxInodes() <= PassthroughOptions.DEFAULT_MAX_INODES && o.maxInodes() <= Math.max(64, limit / 4),
                o.maxInodes() + " inode descriptors of " + limit);
        assertTrue(o.maxHandles() <= PassthroughOptions.DEFAULT_MAX_HANDLES
                && o.maxHandles() <= Math.max(64, limit / 16), o.maxHandles() + " handles of " + limit);
    }

    // ------------------------------------------------------------------ finding 9: ioctl and ranges

    @Test
    void readOnlyShareRefusesIoctlsButReportsTheExitStatus() throws Exception {
        Files.writeString(dir.resolve("f"), "x");
        int[] status = {-1};
        client(PassthroughOptions.builder().readOnly(true).exitCodeListener(s -> status[0] = s).build());
        long f = c.lookupNode(ROOT, "f");
        long fh = c.openFh(f, O_RDONLY);
        assertEquals(Errnos.EROFS, c.call(Fuse.IOCTL, f, body().i64(fh).i32(0).i32(0x40086602).i64(0).i32(8).i32(0)
                .raw(new byte[8])).error(), "FS_IOC_SETFLAGS");
        c.call(Fuse.IOCTL, ROOT, body().i64(0).i32(Fuse.IOCTL_DIR).i32(FileSystem.IOCTL_EXIT_CODE).i64(5).i32(0).i32(0))
                .ok();
        assertEquals(5, status[0]);
        c.release(Fuse.RELEASE, f, fh).ok();
    }

    @Test
    void copyFileRangeWithAHugeLengthIsClampedNotNegative() throws Exception {
        Files.writeString(dir.resolve("src"), "data");
        client();
        long s = c.lookupNode(ROOT, "src");
        long sfh = c.openFh(s, O_RDONLY);
        FuseClient.Reply dr = c.create(ROOT, "dst", O_RDWR | O_CREAT, 0100644).ok();
        long d = dr.nodeId(), dfh = FuseClient.createdFh(dr);
        FuseClient.Reply r = c.call(Fuse.COPY_FILE_RANGE, s, body().i64(sfh).i64(0).i64(d).i64(dfh).i64(0).i64(-1)
                .i64(0)).ok();
        assertEquals(4, r.body().getInt(0), "copied to the end of the source");
        assertEquals("data", Files.readString(dir.resolve("dst")));
        assertEquals(Errnos.EINVAL, c.call(Fuse.COPY_FILE_RANGE, s, body().i64(sfh).i64(-1).i64(d).i64(dfh).i64(0)
                .i64(4).i64(0)).error());
        assertEquals(Errnos.EINVAL, c.call(Fuse.FALLOCATE, d, body().i64(dfh).i64(0).i64(-4096).i32(0).i32(0)).error());
        assertEquals(Errnos.EINVAL, c.setattr(d, SetAttr.FATTR_SIZE | SetAttr.FATTR_FH, dfh, -1, 0, 0, 0, 0, 0)
                .error());
        assertEquals("data", Files.readString(dir.resolve("dst")));
    }

    // ------------------------------------------------------------------ host pseudo file systems

    static int run(String... cmd) throws Exception {
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .start().waitFor();
    }

    /** A sealed mount point: an empty directory the guest can mount over, with nothing of the host inside. */
    void assertSealed(long node, String... inside) {
        FuseClient.Reply a = c.getattr(node).ok();
        assertEquals(S_IFDIR, a.attrMode(16) & 0170000);
        for (String name : inside) {
            assertEquals(Errnos.ENOENT, c.lookup(node, name).error(), name);
        }
        long fh = c.opendir(node).ok().body().getLong(0);
        List<String> names = PassthroughFsTest.parseDir(c.readdir(Fuse.READDIR, node, fh, 0, 4096).ok(), false,
                new long[1], new ArrayList<>());
        assertTrue(names.stream().allMatch(n -> n.equals(".") || n.equals("..")), "listed: " + names);
        c.release(Fuse.RELEASEDIR, node, fh).ok();
        assertEquals(Errnos.EACCES, c.open(node, O_RDONLY).error());
    }

    @Test
    void procBindMountedIntoTheShareIsSealed() throws Exception {
        assumeTrue(root(), "bind mounts need root");
        Path p = Files.createDirectory(dir.resolve("p"));
        assumeTrue(run("mount", "--bind", "/proc", p.toString()) == 0, "bind mount refused here");
        try {
            client();
            long pn = c.lookupNode(ROOT, "p");
            assertSealed(pn, "kcore", "self", "1", "sys");
            // READDIRPLUS gives the name without a lookup or the mount's attributes
            long fh = c.opendir(ROOT).ok().body().getLong(0);
            List<Long> ids = new ArrayList<>();
            List<String> names = PassthroughFsTest.parseDir(c.readdir(Fuse.READDIRPLUS, ROOT, fh, 0, 4096).ok(),
                    true, new long[1], ids);
            assertEquals(0L, ids.get(names.indexOf("p")));
            c.release(Fuse.RELEASEDIR, ROOT, fh).ok();
        } finally {
            if (fs != null) {
                fs.close();
                fs = null;
            }
            assertEquals(0, run("umount", "-l", p.toString()));
        }
    }

    @Test
    void hostRootShareSealsProcAndSys() {
        client(Path.of("/"), PassthroughOptions.builder().readOnly(true).build());
        assertSealed(c.lookupNode(ROOT, "proc"), "kcore", "self", "1");
        assertSealed(c.lookupNode(ROOT, "sys"), "kernel", "fs", "class");
        long usr = c.lookupNode(ROOT, "usr");
        long bin = c.lookupNode(usr, "bin");
        assertEquals(S_IFDIR, c.getattr(bin).ok().attrMode(16) & 0170000);
        assertEquals(0, c.lookup(bin, "sh").error());
    }

    @Test
    void aShareOfProcItselfIsServed() {
        client(Path.of("/proc"), PassthroughOptions.builder().readOnly(true).build());
        long one = c.lookupNode(ROOT, "1");
        assertEquals(0, c.lookup(one, "status").error());
        assertEquals(0, c.lookup(ROOT, "self").error());
    }
}
