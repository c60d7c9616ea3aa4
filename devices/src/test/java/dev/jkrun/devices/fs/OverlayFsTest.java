package dev.jkrun.devices.fs;

import static org.junit.jupiter.api.Assertions.*;

import dev.jkrun.devices.fs.overlay.OverlayFs;
import dev.jkrun.devices.fs.passthrough.PassthroughOptions;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.PosixFs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link OverlayFs} against real layer directories, through the FileSystem interface: two read-only lower layers
 * (the middle one an OCI layer with {@code .wh.} whiteouts and an opaque directory) and an empty upper layer.
 * Every test ends by checking that the lower layers are byte for byte what they were.
 */
class OverlayFsTest {
    static final long ROOT = FileSystem.ROOT_ID;
    static final int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_TRUNC = 01000, O_EXCL = 0200;
    static final int S_IFREG = 0100000, S_IFDIR = 0040000;
    static final Context CTX = Context.ROOT;

    @TempDir
    Path tmp;
    Path bottom, middle, upper, outside;
    OverlayFs fs;
    Map<String, String> lowerBefore;

    @BeforeEach
    void layers() throws IOException {
        bottom = Files.createDirectories(tmp.resolve("bottom"));
        middle = Files.createDirectories(tmp.resolve("middle"));
        upper = Files.createDirectories(tmp.resolve("upper"));
        outside = Files.createDirectories(tmp.resolve("outside"));
        Files.writeString(outside.resolve("canary"), "outside");
        write(bottom, "etc/hostname", "bottom-host");
        write(bottom, "etc/passwd", "root:x:0:0");
        write(bottom, "etc/removed-by-middle", "old");
        write(bottom, "bin/sh", "#!sh-bottom");
        write(bottom, "opaque/hidden", "from bottom");
        write(bottom, "keep/a", "a");
        write(bottom, "keep/sub/deep", "deep");
        write(bottom, "top.txt", "top");
        Files.setPosixFilePermissions(bottom.resolve("bin/sh"), PosixFilePermissions.fromString("rwxr-x---"));
        Files.createSymbolicLink(bottom.resolve("escape"), outside);
        Files.createSymbolicLink(bottom.resolve("bin/link"), Path.of("sh"));
        // The middle layer as an OCI tarball unpacks: .wh. whiteouts, an opaque marker, a replaced file.
        write(middle, "etc/.wh.removed-by-middle", "");
        write(middle, "etc/hostname", "middle-host");
        write(middle, "opaque/.wh..wh..opq", "");
        write(middle, "opaque/shown", "from middle");
        write(middle, ".wh.top.txt", "");
        lowerBefore = snapshot(bottom);
        lowerBefore.putAll(snapshot(middle));
        lowerBefore.putAll(snapshot(outside));
    }

    @AfterEach
    void lowerUnchanged() throws IOException {
        if (fs != null) {
            fs.close();
            assertEquals(0, fs.handleCount());
        }
        Map<String, String> after = snapshot(bottom);
        after.putAll(snapshot(middle));
        after.putAll(snapshot(outside));
        assertEquals(lowerBefore, after, "lower layers and the outside directory are unchanged");
    }

    OverlayFs open() { return open(PassthroughOptions.defaults()); }

    OverlayFs open(PassthroughOptions options) {
        fs = new OverlayFs(List.of(bottom, middle, upper), options);
        return fs;
    }

    static void write(Path root, String rel, String content) throws IOException {
        Path p = root.resolve(rel);
        Files.createDirectories(p.getParent());
        Files.writeString(p, content);
    }

    /** Path to type, mode, size, mtime and content of every entry under {@code root}. */
    static Map<String, String> snapshot(Path root) throws IOException {
        Map<String, String> m = new TreeMap<>();
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                String desc = Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS) + " "
                        + Files.getLastModifiedTime(p, LinkOption.NOFOLLOW_LINKS) + " ";
                if (Files.isSymbolicLink(p)) {
                    desc += "-> " + Files.readSymbolicLink(p);
                } else if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
                    desc += Files.readString(p);
                }
                m.put(p.toString(), desc);
            }
        }
        return m;
    }

    static byte[] b(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    long lookup(long parent, String name) throws FsException { return fs.lookup(CTX, parent, b(name)).nodeId(); }

    long path(String p) throws FsException {
        long n = ROOT;
        for (String part : p.split("/")) {
            n = lookup(n, part);
        }
        return n;
    }

    int errno(Executable e) {
        try {
            e.run();
        } catch (FsException x) {
            return x.errno();
        }
        fail("expected an errno");
        return 0;
    }

    interface Executable {
        void run() throws FsException;
    }

    String read(long node) throws FsException {
        Opened o = fs.open(CTX, node, O_RDONLY);
        try {
            ByteBuffer buf = ByteBuffer.allocate(4096);
            int n = fs.read(node, o.fh(), 0, buf);
            return new String(buf.array(), 0, n, StandardCharsets.UTF_8);
        } finally {
            fs.release(node, o.fh());
        }
    }

    void writeAt(long node, int flags, String s) throws FsException {
        Opened o = fs.open(CTX, node, flags);
        try {
            fs.write(node, o.fh(), 0, ByteBuffer.wrap(b(s)), 0);
        } finally {
            fs.release(node, o.fh());
        }
    }

    List<String> list(long node) throws FsException {
        Opened o = fs.opendir(CTX, node, 0);
        List<String> names = new ArrayList<>();
        long[] offset = {0};
        boolean[] more = {true};
        while (more[0]) {
            more[0] = false;
            fs.readdir(node, o.fh(), offset[0], new DirSink() {
                int room = 3; // a small reply: continuation cookies are exercised

                @Override
                public boolean fits(int nameLength) { return room > 0; }

                @Override
                public boolean plus() { return false; }

                @Override
                public boolean add(long ino, long nextOffset, int type, byte[] name, Entry entry) {
                    room--;
                    String s = new String(name, StandardCharsets.UTF_8);
                    if (!s.equals(".") && !s.equals("..")) {
                        names.add(s);
                    }
                    offset[0] = nextOffset;
                    more[0] = true;
                    return true;
                }
            });
        }
        fs.releasedir(node, o.fh());
        names.sort(null);
        return names;
    }

    // ------------------------------------------------------------------ merged view

    @Test
    void mergedViewHonoursOciWhiteoutsAndOpaqueDirectories() throws Exception {
        open();
        assertEquals(List.of("bin", "escape", "etc", "keep", "opaque"), list(ROOT), "top.txt whited out by .wh.");
        assertEquals(List.of("hostname", "passwd"), list(path("etc")));
        assertEquals("middle-host", read(path("etc/hostname")), "the upper of two layers wins");
        assertEquals("root:x:0:0", read(path("etc/passwd")));
        assertEquals(Errnos.ENOENT, errno(() -> path("etc/removed-by-middle")));
        assertEquals(Errnos.ENOENT, errno(() -> lookup(ROOT, "top.txt")));
        assertEquals(List.of("shown"), list(path("opaque")), "the opaque directory hides the bottom one");
        assertEquals(Errnos.ENOENT, errno(() -> path("opaque/hidden")));
        assertEquals(S_IFDIR, fs.getattr(path("keep/sub"), -1).mode() & 0170000);
    }

    @Test
    void nodesAndHandlesAreCappedAsPassthroughFsCapsThem() throws Exception {
        open(PassthroughOptions.builder().descriptorCaps(3, 2).build());
        long etc = lookup(ROOT, "etc");
        long hostname = lookup(etc, "hostname");
        long passwd = lookup(etc, "passwd");
        assertEquals(etc, lookup(ROOT, "etc"), "a node the guest holds again takes no new place");
        assertEquals(Errnos.ENFILE, errno(() -> lookup(ROOT, "keep")), "a fourth node");
        assertEquals(Errnos.ENFILE, errno(() -> fs.mkdir(Context.ROOT, ROOT, b("new"), 0755, 0)));
        fs.forget(hostname, 1);
        fs.forget(passwd, 1);
        fs.forget(etc, 2);
        long keep = lookup(ROOT, "keep");
        long f1 = fs.opendir(Context.ROOT, keep, 0).fh();
        long f2 = fs.opendir(Context.ROOT, ROOT, 0).fh();
        assertEquals(Errnos.EMFILE, errno(() -> fs.opendir(Context.ROOT, ROOT, 0)), "a third handle");
        fs.releasedir(keep, f1);
        fs.releasedir(ROOT, f2);
        fs.releasedir(ROOT, fs.opendir(Context.ROOT, ROOT, 0).fh());
    }

    @Test
    void characterDeviceWhiteoutAndXattrOpaqueAreHonoured() throws Exception {
        Files.createDirectories(middle.resolve("bin"));
        try {
            PosixFs.mknodat(null, b(middle.resolve("bin/sh").toString()), 0020000, 0);
            Files.createDirectories(middle.resolve("keep"));
            PosixFs.setxattr(b(middle.resolve("keep").toString()), b("user.overlay.opaque"), b("y"), 1, 0);
        } catch (NativeCallException e) {
            org.junit.jupiter.api.Assumptions.assumeTrue(false, "no unprivileged whiteouts or user xattrs here: " + e);
        }
        lowerBefore = snapshot(bottom);
        lowerBefore.putAll(snapshot(middle));
        lowerBefore.putAll(snapshot(outside));
        open();
        assertEquals(Errnos.ENOENT, errno(() -> path("bin/sh")));
        assertEquals(List.of("link"), list(path("bin")));
        assertEquals(List.of(), list(path("keep")));
    }

    @Test
    void symlinksAreNotFollowedAndHostileNamesAreRefused() throws Exception {
        open();
        long esc = lookup(ROOT, "escape");
        assertEquals(0120000, fs.getattr(esc, -1).mode() & 0170000);
        assertEquals(outside.toString(), new String(fs.readlink(esc), StandardCharsets.UTF_8));
        assertEquals(Errnos.ENOTDIR, errno(() -> lookup(esc, "canary")));
        assertEquals(Errnos.ELOOP, errno(() -> fs.open(CTX, esc, O_RDONLY)));
        assertEquals(Errnos.EINVAL, errno(() -> lookup(ROOT, "..")));
        assertEquals(Errnos.EINVAL, errno(() -> lookup(ROOT, ".")));
        assertEquals(Errnos.EINVAL, errno(() -> lookup(ROOT, "escape/canary")));
        assertEquals(Errnos.ENOENT, errno(() -> lookup(ROOT, ".wh.top.txt")), "metadata is invisible");
        assertEquals(Errnos.ENOENT, errno(() -> lookup(path("opaque"), ".wh..wh..opq")));
        assertEquals(Errnos.EINVAL, errno(() -> fs.mkdir(CTX, ROOT, b(".wh.etc"), 0755, 0)), "cannot fake a whiteout");
        assertEquals(Errnos.EINVAL, errno(() -> fs.create(CTX, ROOT, b(".wh..wh..opq"), O_RDWR, 0644, 0)));
        assertEquals(Errnos.EINVAL, errno(() -> fs.rename(ROOT, b("keep"), ROOT, b(".wh.bin"), 0)));
        assertEquals(Errnos.EPERM, errno(() -> fs.mknod(CTX, ROOT, b("wh"), 0020000, 0, 0)), "no guest 0:0 nodes");
        assertEquals(Errnos.ENAMETOOLONG, errno(() -> lookup(ROOT, "x".repeat(256))));
        // writing through the symlink's node never reaches outside
        assertEquals(Errnos.ELOOP, errno(() -> fs.open(CTX, esc, O_WRONLY)));
        assertFalse(Files.exists(upper.resolve("escape/canary")));
    }

    // ------------------------------------------------------------------ copy-up

    @Test
    void writingALowerFileCopiesItUpAndKeepsItsNode() throws Exception {
        open();
        long etc = path("etc");
        long passwd = lookup(etc, "passwd");
        Attr before = fs.getattr(passwd, -1);
        writeAt(passwd, O_WRONLY | O_TRUNC, "root:x:0:0:changed");
        assertEquals("root:x:0:0:changed", read(passwd));
        assertEquals("root:x:0:0:changed", Files.readString(upper.resolve("etc/passwd")));
        assertEquals(passwd, lookup(etc, "passwd"), "copy-up keeps the node");
        assertEquals(before.ino(), fs.getattr(passwd, -1).ino(), "and st_ino");
        assertEquals(Files.getAttribute(bottom.resolve("etc"), "unix:mode"),
                Files.getAttribute(upper.resolve("etc"), "unix:mode"), "the parent was copied up with its mode");
        assertFalse(Files.exists(upper.resolve("etc/hostname")), "only what changed is copied");
        assertEquals(List.of("etc"), listDir(upper));
    }

    @Test
    void setattrCopiesUpWithModeAndTimes() throws Exception {
        open();
        long sh = path("bin/sh");
        assertEquals(0750, fs.getattr(sh, -1).mode() & 07777);
        long mtime = fs.getattr(sh, -1).mtime();
        Attr a = fs.setattr(CTX, sh, new SetAttr(SetAttr.FATTR_MODE, 0, 0, 0, 0, 0, 0, 0700, 0, 0));
        assertEquals(0700, a.mode() & 07777);
        assertEquals(mtime, a.mtime(), "copy-up keeps the lower mtime");
        assertEquals("#!sh-bottom", Files.readString(upper.resolve("bin/sh")));
        a = fs.setattr(CTX, sh, new SetAttr(SetAttr.FATTR_SIZE, 0, 3, 0, 0, 0, 0, 0, 0, 0));
        assertEquals(3, a.size());
        assertEquals("#!s", read(sh));
        // a symlink is copied up as a symlink
        long link = path("bin/link");
        fs.rename(path("bin"), b("link"), path("bin"), b("link2"), 0);
        assertEquals("sh", Files.readSymbolicLink(upper.resolve("bin/link2")).toString());
        assertEquals(Errnos.ENOENT, errno(() -> path("bin/link")));
        assertEquals("sh", new String(fs.readlink(link), StandardCharsets.UTF_8), "the renamed node follows");
    }

    @Test
    void copyUpDropsSetuidAsAGuestModeWould() throws Exception {
        write(bottom, "bin/su", "#!su");
        Files.setAttribute(bottom.resolve("bin/su"), "unix:mode", 04755);
        lowerBefore = snapshot(bottom);
        lowerBefore.putAll(snapshot(middle));
        lowerBefore.putAll(snapshot(outside));
        open();
        long su = path("bin/su");
        assertEquals(04755, fs.getattr(su, -1).mode() & 07777, "the lower file as it is");
        // a utimes alone copies up: no write, so no write-time setuid clearing would happen
        Attr a = fs.setattr(CTX, su, new SetAttr(SetAttr.FATTR_MTIME, 0, 0, 0, 0, 5, 0, 0, 0, 0));
        assertEquals(0755, a.mode() & 07777, "the copy is not setuid");
        assertEquals(0755, (int) Files.getAttribute(upper.resolve("bin/su"), "unix:mode") & 07777);
    }

    // ------------------------------------------------------------------ removal and whiteouts

    @Test
    void unlinkOfALowerFileLeavesAWhiteoutAndCreateReplacesIt() throws Exception {
        open();
        long etc = path("etc");
        fs.unlink(etc, b("passwd"));
        assertEquals(Errnos.ENOENT, errno(() -> lookup(etc, "passwd")));
        assertEquals(List.of("hostname"), list(etc));
        assertTrue(Files.exists(upper.resolve("etc/.wh.passwd")));
        FileSystem.Created c = fs.create(CTX, etc, b("passwd"), O_RDWR | O_EXCL, S_IFREG | 0600, 0);
        fs.write(c.entry().nodeId(), c.opened().fh(), 0, ByteBuffer.wrap(b("new")), 0);
        fs.release(c.entry().nodeId(), c.opened().fh());
        assertEquals("new", read(lookup(etc, "passwd")));
        assertFalse(Files.exists(upper.resolve("etc/.wh.passwd")), "the whiteout made way");
        assertEquals(0600, fs.getattr(c.entry().nodeId(), -1).mode() & 07777);
        assertEquals(Errnos.EEXIST, errno(() -> fs.create(CTX, etc, b("hostname"), O_RDWR | O_EXCL, 0644, 0)));
        // an upper-only file goes without a whiteout
        fs.create(CTX, ROOT, b("scratch"), O_RDWR, 0644, 0);
        fs.destroy();
        fs.unlink(ROOT, b("scratch"));
        assertFalse(Files.exists(upper.resolve(".wh.scratch")));
        assertFalse(Files.exists(upper.resolve("scratch")));
    }

    @Test
    void rmdirNeedsAnEmptyMergedDirectoryAndAMkdirOverItIsOpaque() throws Exception {
        open();
        long keep = path("keep");
        assertEquals(Errnos.ENOTEMPTY, errno(() -> fs.rmdir(ROOT, b("keep"))));
        assertEquals(Errnos.EISDIR, errno(() -> fs.unlink(ROOT, b("keep"))));
        assertEquals(Errnos.ENOTDIR, errno(() -> fs.rmdir(keep, b("a"))));
        fs.unlink(keep, b("a"));
        fs.unlink(path("keep/sub"), b("deep"));
        fs.rmdir(keep, b("sub"));
        assertEquals(List.of(), list(keep));
        fs.rmdir(ROOT, b("keep"));
        assertEquals(Errnos.ENOENT, errno(() -> lookup(ROOT, "keep")));
        assertEquals(Errnos.ENOENT, errno(() -> fs.getattr(keep, -1)), "the removed node is stale");
        assertEquals(List.of("bin", "escape", "etc", "opaque"), list(ROOT));
        long again = fs.mkdir(CTX, ROOT, b("keep"), 0750, 0).nodeId();
        assertNotEquals(keep, again);
        assertEquals(List.of(), list(again), "the new directory does not show the old one's lower entries");
        assertEquals(0750, fs.getattr(again, -1).mode() & 07777);
        assertTrue(Files.exists(upper.resolve("keep/.wh..wh..opq")));
        fs.mkdir(CTX, again, b("x"), 0755, 0);
        assertEquals(List.of("x"), list(again));
    }

    // ------------------------------------------------------------------ rename and link

    @Test
    void renameFollowsOverlayfsWithoutRedirectDir() throws Exception {
        open();
        long etc = path("etc");
        long host = lookup(etc, "hostname");
        fs.rename(etc, b("hostname"), ROOT, b("hostname.moved"), 0);
        assertEquals("middle-host", read(lookup(ROOT, "hostname.moved")));
        assertEquals(host, lookup(ROOT, "hostname.moved"), "the node moves with the name");
        assertEquals(Errnos.ENOENT, errno(() -> lookup(etc, "hostname")));
        assertEquals(Errnos.EXDEV, errno(() -> fs.rename(ROOT, b("etc"), ROOT, b("etc2"), 0)), "lower directory");
        long d = fs.mkdir(CTX, ROOT, b("fresh"), 0755, 0).nodeId();
        fs.create(CTX, d, b("f"), O_RDWR, 0644, 0);
        fs.rename(ROOT, b("fresh"), ROOT, b("fresh2"), 0);
        assertEquals(List.of("f"), list(lookup(ROOT, "fresh2")));
        assertEquals(Errnos.EXDEV, errno(() -> fs.rename(ROOT, b("fresh2"), ROOT, b("keep"), 0)));
        assertEquals(Errnos.EEXIST, errno(() -> fs.rename(ROOT, b("hostname.moved"), etc, b("passwd"), 1)));
        fs.rename(ROOT, b("hostname.moved"), etc, b("passwd"), 0);
        assertEquals("middle-host", read(path("etc/passwd")));
        assertEquals(Errnos.EINVAL, errno(() -> fs.rename(ROOT, b("fresh2"), path("fresh2"), b("in"), 0)));
        fs.rename(etc, b("passwd"), etc, b("passwd"), 0);
        assertEquals("middle-host", read(path("etc/passwd")), "a rename onto itself changes nothing");
        // a new directory moved over a removed lower one does not merge with it
        fs.unlink(path("opaque"), b("shown"));
        fs.rmdir(ROOT, b("opaque"));
        fs.rename(ROOT, b("fresh2"), ROOT, b("opaque"), 0);
        assertEquals(List.of("f"), list(lookup(ROOT, "opaque")));
        // hard links are made in the upper layer
        long linked = fs.link(path("etc/passwd"), ROOT, b("passwd.link")).nodeId();
        assertEquals("middle-host", read(linked));
        assertEquals(2, fs.getattr(linked, -1).nlink());
    }

    @Test
    void guestCallersOwnWhatTheyMakeAndCopyUpKeepsLowerOwners() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(PosixFs.geteuid() == 0, "credential switching needs root");
        Files.setOwner(bottom.resolve("keep"), bottom.getFileSystem().getUserPrincipalLookupService()
                .lookupPrincipalByName("nobody"));
        Files.setPosixFilePermissions(bottom.resolve("keep"), PosixFilePermissions.fromString("rwxrwxrwx"));
        lowerBefore = snapshot(bottom);
        lowerBefore.putAll(snapshot(middle));
        lowerBefore.putAll(snapshot(outside));
        open();
        Context user = new Context(1234, 1234, 1);
        FileSystem.Created c = fs.create(user, path("keep"), b("mine"), O_RDWR, 0644, 0);
        fs.release(c.entry().nodeId(), c.opened().fh());
        assertEquals(1234, c.entry().attr().uid());
        assertEquals(Files.getAttribute(bottom.resolve("keep"), "unix:uid"),
                Files.getAttribute(upper.resolve("keep"), "unix:uid"), "the copied-up parent keeps its owner");
        assertEquals(1234, Files.getAttribute(upper.resolve("keep/mine"), "unix:uid"));
        assertEquals(Errnos.EACCES, errno(() -> fs.open(user, path("etc/passwd"), O_WRONLY)),
                "the caller's permissions apply");
        assertFalse(Files.exists(upper.resolve("etc/passwd")), "a refused open copies nothing up");
    }

    // ------------------------------------------------------------------ options

    @Test
    void readOnlyOverlayRefusesEveryChange() throws Exception {
        open(PassthroughOptions.builder().readOnly(true).build());
        long passwd = path("etc/passwd");
        assertEquals(Errnos.EROFS, errno(() -> fs.open(CTX, passwd, O_WRONLY)));
        assertEquals(Errnos.EROFS, errno(() -> fs.unlink(path("etc"), b("passwd"))));
        assertEquals(Errnos.EROFS, errno(() -> fs.mkdir(CTX, ROOT, b("n"), 0755, 0)));
        assertEquals(Errnos.EROFS, errno(() -> fs.setattr(CTX, passwd, new SetAttr(SetAttr.FATTR_MODE, 0, 0, 0, 0, 0, 0,
                0600, 0, 0))));
        assertEquals("root:x:0:0", read(passwd));
        assertEquals(List.of(), listDir(upper));
    }

    @Test
    void virtualRootFilesShadowTheLayersAndExitCodeIoctlWorks() throws Exception {
        int[] code = {-1};
        open(PassthroughOptions.builder().virtualFile("init.krun", b("ELF"), 0755).virtualFile("bin", b("x"), 0444)
                .exitCodeListener(c -> code[0] = c).build());
        assertEquals(List.of("bin", "escape", "etc", "init.krun", "keep", "opaque"), list(ROOT));
        long init = lookup(ROOT, "init.krun");
        assertEquals("ELF", read(init));
        assertEquals(Errnos.EROFS, errno(() -> fs.open(CTX, init, O_WRONLY)));
        assertEquals(S_IFREG | 0444, fs.getattr(lookup(ROOT, "bin"), -1).mode());
        fs.ioctl(ROOT, 0, 0, FileSystem.IOCTL_EXIT_CODE, 7, ByteBuffer.allocate(0), 0);
        assertEquals(7, code[0]);
    }

    @Test
    void forgottenNodesAreDropped() throws Exception {
        open();
        long deep = path("keep/sub/deep");
        assertEquals(4, fs.nodeCount());
        fs.forget(path("keep"), 2);
        assertEquals(4, fs.nodeCount(), "a child holds its parents");
        fs.forget(deep, 1);
        fs.forget(path("keep/sub"), 2);
        assertEquals(2, fs.nodeCount(), "keep is held once more by the lookup above");
        fs.forget(lookup(ROOT, "keep"), 2);
        assertEquals(1, fs.nodeCount());
    }

    static List<String> listDir(Path p) throws IOException {
        try (Stream<Path> s = Files.list(p)) {
            return s.map(x -> x.getFileName().toString()).sorted().toList();
        }
    }
}
