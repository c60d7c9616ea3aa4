package dev.jkrun.devices.fs;

import static dev.jkrun.devices.fs.FuseClient.body;
import static dev.jkrun.devices.fs.FuseClient.suppGroup;
import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jkrun.devices.fs.fuse.Fuse;
import dev.jkrun.devices.fs.fuse.FuseServer;
import dev.jkrun.devices.fs.passthrough.PassthroughFs;
import dev.jkrun.devices.fs.passthrough.PassthroughOptions;
import dev.jkrun.libc.PosixFs;
import dev.jkrun.libc.Stat;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Whose credentials the host sees (the VMM runs as root, as CI and libkrun's users do): a request that creates a node
 * runs as the guest caller with exactly the supplementary group FUSE_CREATE_SUPP_GROUP carried, every other request
 * as the VMM, since the guest kernel (default_permissions) has checked it against the caller's full credentials. A
 * non-root caller here is uid 1000, gid 1000, and a member of 1001 as far as its guest knows.
 */
class PassthroughFsCredentialsTest {
    static final long ROOT = 1;
    static final int O_RDONLY = 0, O_WRONLY = 1, O_CREAT = 0100, O_EXCL = 0200, O_TRUNC = 01000;
    static final int USER = 1000, GROUP = 1000, OTHER_GROUP = 1001;

    @TempDir
    Path dir;
    PassthroughFs fs;
    FuseClient c;

    @BeforeEach
    void root() {
        assumeTrue(PosixFs.geteuid() == 0, "the VMM switches credentials only as root");
    }

    @AfterEach
    void close() {
        if (fs != null) {
            fs.close();
        }
    }

    /** A client that offered FUSE_CREATE_SUPP_GROUP (flags2 bit 2) and INIT_EXT at INIT, as Linux 6.x does. */
    FuseClient client(PassthroughOptions options) {
        fs = new PassthroughFs(dir, options);
        c = new FuseClient(new FuseServer(fs));
        FuseClient.Reply r = c.call(Fuse.INIT, 0, body().i32(7).i32(31).i32(128 * 1024).i32(0xFFFF_FFFFL)
                .i32(Fuse.CREATE_SUPP_GROUP >>> 32).raw(new byte[40])).ok();
        assertNotEquals(0, r.body().getInt(12) & Fuse.INIT_EXT, "INIT_EXT, so that the kernel reads flags2");
        assertEquals(Fuse.CREATE_SUPP_GROUP >>> 32, r.body().getInt(32) & 0xFFFF_FFFFL, "flags2: CREATE_SUPP_GROUP");
        c.uid = USER;
        c.gid = GROUP;
        return c;
    }

    FuseClient client() { return client(PassthroughOptions.defaults()); }

    Path hostDir(String name, int uid, int gid, int mode) throws Exception {
        Path p = Files.createDirectory(dir.resolve(name));
        own(p, uid, gid, mode);
        return p;
    }

    static void own(Path p, int uid, int gid, int mode) {
        PosixFs.fchownat(null, PosixFs.bytes(p.toString()), uid, gid, 0x100 /* AT_SYMLINK_NOFOLLOW */);
        PosixFs.fchmodat(null, PosixFs.bytes(p.toString()), mode, 0);
    }

    static Stat stat(Path p) { return PosixFs.fstatat(null, PosixFs.bytes(p.toString()), 0x100); }

    static byte[] createBody(String name, int flags, int mode) {
        return body().i32(flags).i32(mode).i32(0).i32(0).str(name).bytes();
    }

    static byte[] mkdirBody(String name, int mode) { return body().i32(mode).i32(0).str(name).bytes(); }

    @Test
    void aCreateRunsAsTheCallerWithTheSupplementaryGroupItCarried() throws Exception {
        client();
        hostDir("g", 0, OTHER_GROUP, 0770);
        long g = c.lookupNode(ROOT, "g");
        assertEquals(Errnos.EACCES, c.call(Fuse.CREATE, g, createBody("f", O_CREAT | O_EXCL | O_WRONLY, 0644)).error(),
                "without the group the host checks the directory as for a caller outside it");
        c.callWithExtensions(Fuse.CREATE, g, createBody("f", O_CREAT | O_EXCL | O_WRONLY, 0644), suppGroup(OTHER_GROUP))
                .ok();
        c.callWithExtensions(Fuse.MKDIR, g, mkdirBody("d", 0755), suppGroup(OTHER_GROUP)).ok();
        for (String n : new String[] {"f", "d"}) {
            Stat st = stat(dir.resolve("g").resolve(n));
            assertEquals(USER, st.uid(), n + ": the caller owns it");
            assertEquals(GROUP, st.gid(), n + ": the caller's gid (the directory is not set-group-ID)");
        }
    }

    @Test
    void setGroupIdDirectoriesAsOnTheHost() throws Exception {
        client(PassthroughOptions.builder().allowSetuid(true).build());
        hostDir("s", 0, OTHER_GROUP, 02777);
        long s = c.lookupNode(ROOT, "s");
        c.callWithExtensions(Fuse.MKDIR, s, mkdirBody("d", 0755), suppGroup(OTHER_GROUP)).ok();
        Stat d = stat(dir.resolve("s/d"));
        assertEquals(OTHER_GROUP, d.gid(), "a new directory takes the set-group-ID directory's group");
        assertEquals(02000, d.mode() & 02000, "and its set-group-ID bit");
        // A member keeps set-group-ID with group execute on a new file; a caller outside the group loses it.
        c.callWithExtensions(Fuse.CREATE, s, createBody("member", O_CREAT | O_EXCL | O_WRONLY, 02755),
                suppGroup(OTHER_GROUP)).ok();
        c.call(Fuse.CREATE, s, createBody("outsider", O_CREAT | O_EXCL | O_WRONLY, 02755)).ok();
        assertEquals(02755, stat(dir.resolve("s/member")).mode() & 07777);
        assertEquals(0755, stat(dir.resolve("s/outsider")).mode() & 07777);
        assertEquals(OTHER_GROUP, stat(dir.resolve("s/outsider")).gid(), "the group is inherited either way");
    }

    @Test
    void chownToAGroupTheGuestVouchedForRunsAsTheVmm() throws Exception {
        client();
        Path f = Files.writeString(dir.resolve("f"), "x");
        own(f, USER, GROUP, 0644);
        long n = c.lookupNode(ROOT, "f");
        // FATTR_GID: the guest kernel let its caller (a member of 1001) chgrp its own file; the host does it.
        c.setattr(n, SetAttr.FATTR_GID, 0, 0, 0, 0, 0, 0, OTHER_GROUP).ok();
        assertEquals(OTHER_GROUP, stat(f).gid());
        assertEquals(USER, stat(f).uid(), "uid unchanged: FATTR_UID was not set");
    }

    @Test
    void anOpenThroughASupplementaryGroupRunsAsTheVmm() throws Exception {
        client();
        Path f = Files.writeString(dir.resolve("f"), "secret");
        own(f, 0, OTHER_GROUP, 0640);
        long n = c.lookupNode(ROOT, "f");
        c.open(n, O_RDONLY).ok();
        hostDir("d", 0, OTHER_GROUP, 0750);
        c.opendir(c.lookupNode(ROOT, "d")).ok();
    }

    @Test
    void aSymlinksOwnTimesAreSet() throws Exception {
        client();
        Path target = Files.writeString(dir.resolve("t"), "x");
        Files.createSymbolicLink(dir.resolve("l"), Path.of("t"));
        long n = c.lookupNode(ROOT, "l");
        c.setattr(n, SetAttr.FATTR_ATIME | SetAttr.FATTR_MTIME, 0, 0, 946684800L, 946684801L, 0, 0, 0).ok();
        assertEquals(946684801L, stat(dir.resolve("l")).mtimeSec(), "the link's mtime");
        assertNotEquals(946684801L, stat(target).mtimeSec(), "not its target's");
    }

    @Test
    void openWithTruncateClearsSetIdForAnUnprivilegedCallerOnly() throws Exception {
        client(PassthroughOptions.builder().allowSetuid(true).build());
        Path f = Files.writeString(dir.resolve("f"), "x");
        Path g = Files.writeString(dir.resolve("g"), "x");
        Path h = Files.writeString(dir.resolve("h"), "x");
        own(f, USER, GROUP, 06755);
        own(g, USER, GROUP, 06745);
        own(h, USER, GROUP, 06755);
        c.open(c.lookupNode(ROOT, "f"), O_WRONLY | O_TRUNC).ok();
        c.open(c.lookupNode(ROOT, "g"), O_WRONLY | O_TRUNC).ok();
        c.uid = 0;
        c.gid = 0;
        c.open(c.lookupNode(ROOT, "h"), O_WRONLY | O_TRUNC).ok();
        assertEquals(0755, stat(f).mode() & 07777, "set-user-ID and (with group execute) set-group-ID cleared");
        assertEquals(02745, stat(g).mode() & 07777, "set-group-ID without group execute is not a set-ID program");
        assertEquals(06755, stat(h).mode() & 07777, "root (CAP_FSETID) keeps them");
        assertEquals(0, Files.size(f));
    }

    /**
     * CREATE without O_EXCL of a name someone made after the guest's LOOKUP found nothing: the guest kernel checked
     * only the directory (the open is FMODE_CREATED to it), so the host checks the file, as the caller.
     */
    @Test
    void aCreateThatFindsTheNameTakenOpensItAsTheCaller() throws Exception {
        client();
        Path f = Files.writeString(dir.resolve("f"), "root's");
        own(f, 0, 0, 0600);
        assertEquals(Errnos.EACCES, c.call(Fuse.CREATE, ROOT, createBody("f", O_CREAT | O_WRONLY | O_TRUNC, 0644)).error());
        assertEquals("root's", Files.readString(f), "not truncated");
        c.uid = 0;
        c.gid = 0;
        c.call(Fuse.CREATE, ROOT, createBody("f", O_CREAT | O_WRONLY, 0644)).ok();
    }

    /** (uid_t) -1 would make setfsuid a no-op, leaving the VMM's own ids; Linux never sends it. */
    @Test
    void aCallerIdOfMinusOneIsRefused() throws Exception {
        client();
        c.uid = -1;
        assertEquals(Errnos.EINVAL, c.mkdir(ROOT, "d", 0755).error());
        c.uid = USER;
        c.gid = -1;
        assertEquals(Errnos.EINVAL, c.mkdir(ROOT, "d", 0755).error());
        assertFalse(Files.exists(dir.resolve("d")));
    }

    @Test
    void malformedOrUnnegotiatedExtensionsAreEinval() throws Exception {
        client();
        byte[] mk = mkdirBody("d", 0755);
        assertEquals(Errnos.EINVAL, c.callWithExtensions(Fuse.MKDIR, ROOT, mk, body().i32(4).i32(32).bytes()).error(),
                "an extension shorter than its header");
        assertEquals(Errnos.EINVAL, c.callWithExtensions(Fuse.MKDIR, ROOT, mk, body().i32(8).i32(5).bytes()).error(),
                "a security context, never negotiated");
        assertEquals(Errnos.EINVAL, c.callWithExtensions(Fuse.MKDIR, ROOT, mk,
                body().i32(16).i32(Fuse.EXT_GROUPS).i32(2).i32(OTHER_GROUP).bytes()).error(), "two groups in 16 bytes");
        byte[] twice = body().raw(suppGroup(OTHER_GROUP)).raw(suppGroup(OTHER_GROUP)).bytes();
        assertEquals(Errnos.EINVAL, c.callWithExtensions(Fuse.MKDIR, ROOT, mk, twice).error(), "two group extensions");
        assertEquals(Errnos.EINVAL, c.callWithExtensions(Fuse.MKDIR, ROOT, new byte[0], new byte[16]).error(),
                "total_extlen past the request's body");
        assertFalse(Files.exists(dir.resolve("d"), LinkOption.NOFOLLOW_LINKS));

        PassthroughFs plain = new PassthroughFs(dir, PassthroughOptions.defaults());
        try {
            FuseClient old = new FuseClient(new FuseServer(plain));
            old.init();
            assertEquals(Errnos.EINVAL, old.callWithExtensions(Fuse.MKDIR, ROOT, mk, suppGroup(OTHER_GROUP)).error(),
                    "a group extension where FUSE_CREATE_SUPP_GROUP was not agreed");
        } finally {
            plain.close();
        }
    }
}
