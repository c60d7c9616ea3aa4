package dev.jkrun.devices.fs.passthrough;

import static dev.jkrun.devices.fs.passthrough.HostCalls.checkName;
import static dev.jkrun.devices.fs.passthrough.HostCalls.sys;
import static dev.jkrun.libc.PosixFs.*;

import dev.jkrun.devices.fs.Attr;
import dev.jkrun.devices.fs.Context;
import dev.jkrun.devices.fs.DirSink;
import dev.jkrun.devices.fs.Entry;
import dev.jkrun.devices.fs.Errnos;
import dev.jkrun.devices.fs.FileSystem;
import dev.jkrun.devices.fs.FsException;
import dev.jkrun.devices.fs.IoctlResult;
import dev.jkrun.devices.fs.Opened;
import dev.jkrun.devices.fs.SetAttr;
import dev.jkrun.devices.fs.StatFs;
import dev.jkrun.devices.fs.fuse.Fuse;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.PosixFs;
import dev.jkrun.libc.Stat;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntConsumer;

/**
 * Serves a host directory to the guest, the way virtiofsd / libkrun's passthrough do.
 *
 * <p><b>Containment.</b> Every inode holds an {@code O_PATH|O_NOFOLLOW} descriptor opened with openat(2) relative
 * to its parent's descriptor, one name at a time; no path string is ever joined. Names that are empty, ".", "..",
 * contain '/', or are longer than 255 bytes are refused, so a lookup cannot leave the share (".." at the root
 * included). Host symlinks are never followed: a symlink is an inode of its own whose READLINK returns its text,
 * whose GETATTR describes the link, and whose OPEN fails ELOOP. Replacing a directory by a symlink on the host
 * after the guest looked it up does not redirect anything: later operations use the directory's descriptor.
 * Files are (re)opened through {@code /proc/self/fd/N} of the inode's descriptor, which names the inode, not a
 * path. Only regular files and directories are ever opened; device nodes, FIFOs and sockets stay inert on the
 * host (the guest kernel handles them itself). CREATE makes a new file with O_EXCL and takes a name that exists
 * through the same checked path as OPEN, so it never opens (or blocks on) an existing FIFO or device node (the class
 * of QEMU virtiofsd's CVE-2020-35517). MKNOD of character and block devices fails EPERM unless
 * {@link PassthroughOptions#allowDeviceNodes()} (the 0:0 overlayfs whiteout excepted).
 *
 * <p><b>Host pseudo file systems.</b> A mount of proc, sysfs, debugfs, cgroupfs and the like ({@code PSEUDO_FS})
 * met inside the share (a bind mount, or /proc and /sys of a share rooted at /) is sealed: LOOKUP of it answers an
 * empty root-owned directory with no host descriptor behind it (so the guest can still mount its own /proc and
 * /sys there), LOOKUP inside it ENOENT, every other operation EACCES; a pseudo file mounted over a name fails
 * EACCES. READDIRPLUS lists such names without a lookup. A share whose root is on that kind of file system (a
 * deliberate share of /sys) serves it. fstatfs runs only when a lookup crosses to another st_dev, once per device.
 *
 * <p><b>Hard links.</b> A file inside the share that is a hard link to a file elsewhere on the host (made on the
 * host) is the same inode, so its content is served and writable; this is inherent to sharing inodes and is why
 * shares should not contain links to sensitive files. The guest cannot create such links: LINK only names inodes
 * it already reached inside the share, and node ids are per server, so nothing links two shares (a RENAME or
 * LINK to an unknown node fails EXDEV).
 *
 * <p><b>Identity.</b> Inodes are keyed by (st_dev, st_ino) with a lookup count; FORGET drops counts. Every request
 * holds a use of the inodes and handles it works with, and a descriptor is closed only when FORGET/RELEASE/DESTROY
 * and the last such use are done, so a request on one virtio-fs queue never reaches a descriptor number that a
 * FORGET on the other closed and something else reopened. An open handle keeps its inode's descriptor. Node ids
 * are allocated from 2 (the root is 1); {@link #VIRTUAL_BASE} and up are the virtual files.
 * The guest's uid/gid become this thread's fsuid/fsgid while it creates or checks access, when the VMM runs as
 * root (the way virtiofsd does), so new files get the guest caller's ownership.
 *
 * <p><b>Descriptor caps.</b> Each inode the guest has looked up holds a host descriptor until it forgets it, each
 * open handle another. {@link PassthroughOptions#maxInodes()} and {@link PassthroughOptions#maxHandles()} bound them
 * per share, so a guest cannot exhaust the descriptors of the JVM that runs other VMs: past them LOOKUP and the
 * operations that make a name fail ENFILE (before making it), OPEN/CREATE/OPENDIR fail EMFILE (before opening),
 * and READDIRPLUS lists the remaining entries without looking them up (node id 0, which Linux accepts).
 *
 * <p><b>Privileges.</b> Unless {@link PassthroughOptions#allowSetuid()}, the guest cannot leave a setuid or setgid
 * program on the host: S_ISUID (and S_ISGID on non-directories) is dropped from every mode it sets, and a file that
 * has them loses them when the guest opens it for writing (as root the VMM writes with CAP_FSETID, so the host
 * kernel would keep them; it drops {@code security.capability} on any write by itself). The guest's
 * {@code trusted.*} and {@code security.*} extended attributes live on the host as {@code user.jkrun.trusted.*} and
 * {@code user.jkrun.security.*} (virtiofsd's xattrmap prefix idea): the guest sees its own values there, the host
 * never applies them (no file capabilities, no overlayfs or SELinux attributes written by a guest), and the host's
 * own attributes of those namespaces are hidden from the guest. Other names pass through.
 */
public final class PassthroughFs implements FileSystem, AutoCloseable {
    /** Node ids (and st_ino) of the virtual root files: {@code VIRTUAL_BASE + index}. */
    public static final long VIRTUAL_BASE = 0xFFFF_FFFF_0000_0000L;
    /** READDIR cookies of the virtual root entries (virtual entry i continues at {@code VIRTUAL_DIR_COOKIE + i + 1}). */
    static final long VIRTUAL_DIR_COOKIE = 0x7FFF_FFFF_FFFF_F000L;
    /** The host prefix of the guest's trusted.* and security.* extended attributes. */
    private static final byte[] XATTR_HOST_PREFIX = PosixFs.bytes("user.jkrun.");
    private static final byte[][] XATTR_REMAPPED = {PosixFs.bytes("trusted."), PosixFs.bytes("security.")};
    /** XATTR_LIST_MAX: the longest name list listxattr(2) returns. */
    private static final int XATTR_LIST_MAX = 65536;
    private static final int GETDENTS_BUFFER = 16384;

    private final PassthroughOptions options;
    private final Inode root;
    private final Object lock = new Object();
    private final Map<Long, Inode> inodes = new HashMap<>();
    private final Map<Key, Inode> byKey = new HashMap<>();
    private final Map<Long, Handle> handles = new ConcurrentHashMap<>();
    private final AtomicLong nextNode = new AtomicLong(2);
    private final AtomicLong nextFh = new AtomicLong(1);
    private final List<Inode> virtuals = new ArrayList<>();
    private final Map<String, Inode> virtualByName = new HashMap<>();
    private final Cap inodeCap;
    private final Cap handleCap;
    private final boolean switchCredentials;
    private final int processUmask;
    private final long createdSec = System.currentTimeMillis() / 1000;
    /** f_type of the share's root: a share deliberately rooted on a pseudo file system serves that kind. */
    private final long rootFsType;
    /** Per st_dev: may the guest see inside it (asked once per device, when a lookup crosses a mount)? */
    private final Map<Long, Boolean> deviceAllowed = new ConcurrentHashMap<>();

    private record Key(long dev, long ino) {}

    /**
     * A host descriptor and its uses: the table that names it (inodes by node id, handles by fh) holds one, every
     * request working with it holds another while it runs. FORGET, RELEASE and DESTROY only drop the table's use,
     * so a descriptor is closed when the last request using it is done, never under a request on the other queue
     * (whose number could meanwhile name another file, even in another, read-only share).
     */
    private abstract static class Pinned implements AutoCloseable {
        private final AtomicInteger uses = new AtomicInteger(1);

        /** One more use; false once the last one has ended (the descriptor is closed or closing). */
        final boolean pin() {
            for (int u = uses.get(); u > 0; u = uses.get()) {
                if (uses.compareAndSet(u, u + 1)) {
                    return true;
                }
            }
            return false;
        }

        /** Ends one use; the last one frees what this holds. */
        @Override
        public final void close() {
            if (uses.decrementAndGet() == 0) {
                freed();
            }
        }

        abstract void freed();
    }

    /** Places under one of the share's descriptor caps; past it the guest gets {@code errno}. */
    private static final class Cap {
        private final AtomicInteger held = new AtomicInteger();
        private final int max;
        private final int errno;

        Cap(int max, int errno) {
            this.max = max;
            this.errno = errno;
        }

        /** Takes a place before anything is opened, or fails. */
        void take() throws FsException {
            for (int n = held.get(); ; n = held.get()) {
                if (n >= max) {
                    throw full();
                }
                if (held.compareAndSet(n, n + 1)) {
                    return;
                }
            }
        }

        void give() { held.decrementAndGet(); }

        boolean isFull() { return held.get() >= max; }

        FsException full() { return new FsException(errno, "descriptor cap of " + max + " reached"); }
    }

    private static final class Inode extends Pinned {
        final long nodeId;
        final FileDescriptor fd; // null for virtual files
        final Key key;
        final int type;
        final byte[] name; // virtual files only
        final VirtualFile virtual;
        final Cap cap; // where fd counts; null for the root and virtual files
        /**
         * The root of a refused pseudo file system mount: no host descriptor, served as an empty directory (so the
         * guest can mount its own /proc or /sys over it); every other operation on it fails EACCES.
         */
        final boolean sealed;
        long lookups; // guarded by PassthroughFs.lock

        Inode(long nodeId, FileDescriptor fd, Key key, int type, byte[] name, VirtualFile virtual, Cap cap) {
            this(nodeId, fd, key, type, name, virtual, cap, false);
        }

        Inode(long nodeId, FileDescriptor fd, Key key, int type, byte[] name, VirtualFile virtual, Cap cap,
              boolean sealed) {
            this.sealed = sealed;
            this.nodeId = nodeId;
            this.fd = fd;
            this.key = key;
            this.type = type;
            this.name = name;
            this.virtual = virtual;
            this.cap = cap;
        }

        boolean isDir() { return type == Stat.S_IFDIR; }

        @Override
        void freed() {
            if (fd != null) {
                fd.close();
            }
            if (cap != null) {
                cap.give();
            }
        }
    }

    private static final class Handle extends Pinned {
        final Inode inode;
        final FileDescriptor fd; // null for virtual files
        final boolean dir;
        final boolean writable;
        final Cap cap;

        /**
         * Takes over {@code fd} and a place the caller took under {@code cap}; holds a use of {@code inode} (which
         * the caller holds one of) until freed.
         */
        Handle(Inode inode, FileDescriptor fd, boolean dir, boolean writable, Cap cap) {
            if (!inode.pin()) {
                throw new IllegalStateException("handle of a freed inode");
            }
            this.inode = inode;
            this.fd = fd;
            this.dir = dir;
            this.writable = writable;
            this.cap = cap;
        }

        @Override
        void freed() {
            if (fd != null) {
                fd.close();
            }
            inode.close();
            cap.give();
        }
    }

    /** One more lookup of an inode, plus a use of it for the caller: closing this ends the use, not the lookup. */
    private record Found(Inode inode, Entry entry) implements AutoCloseable {
        @Override
        public void close() { inode.close(); }
    }

    /** Opens {@code root} (which must be a directory; a symlink there is not followed). */
    public PassthroughFs(Path root, PassthroughOptions options) {
        this.options = options;
        FileDescriptor fd = PosixFs.openat(null, PosixFs.bytes(root.toString()), O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
        Stat st = PosixFs.fstat(fd);
        this.rootFsType = PosixFs.fstatfsType(fd);
        deviceAllowed.put(st.dev(), true);
        this.root = new Inode(ROOT_ID, fd, new Key(st.dev(), st.ino()), st.type(), null, null, null);
        inodes.put(ROOT_ID, this.root);
        byKey.put(this.root.key, this.root);
        long i = 0;
        for (Map.Entry<String, VirtualFile> e : options.virtualFiles().entrySet()) {
            byte[] name = e.getKey().getBytes(StandardCharsets.UTF_8);
            Inode v = new Inode(VIRTUAL_BASE + i++, null, null, Stat.S_IFREG, name, e.getValue(), null);
            virtuals.add(v);
            virtualByName.put(key(name), v);
        }
        this.inodeCap = new Cap(options.maxInodes(), Errnos.ENFILE);
        this.handleCap = new Cap(options.maxHandles(), Errnos.EMFILE);
        this.switchCredentials = PosixFs.geteuid() == 0;
        this.processUmask = readUmask();
    }

    public PassthroughOptions options() { return options; }

    // ---------------------------------------------------------------- helpers

    /**
     * Runs a request that creates a node (MKNOD, MKDIR, SYMLINK, CREATE) as the guest caller: the host then gives
     * the node the caller's owner and group (or the directory's, set-group-ID) and checks the directory as it would
     * for a local caller. Every other request runs as the VMM: virtio-fs mounts with default_permissions, so the
     * guest kernel has already checked it against the caller's full credentials, supplementary groups included,
     * which the host cannot (FUSE carries only uid, gid and, for creates, one supplementary group).
     */
    private <T> T as(Context ctx, HostCalls.Op<T> op) throws FsException {
        return HostCalls.as(switchCredentials, ctx, op);
    }

    /**
     * OPEN with O_TRUNC by a guest caller other than root: the host clears set-user-ID, and set-group-ID with group
     * execute, as it does for a truncate without CAP_FSETID. The guest kernel does it for ftruncate and write (a
     * SETATTR of the mode), but not for OPEN's own truncate (ATOMIC_O_TRUNC), and the VMM opens as root.
     */
    private static void killSetIdOnTruncate(FileDescriptor fd) {
        Stat st = PosixFs.fstat(fd);
        int mode = st.mode() & 07777;
        int kill = (mode & 04000) | ((mode & 02010) == 02010 ? 02000 : 0);
        if (st.isRegular() && kill != 0) {
            PosixFs.fchmod(fd, mode & ~kill);
        }
    }

    private static String key(byte[] name) { return new String(name, StandardCharsets.ISO_8859_1); }

    private static int readUmask() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("Umask:")) {
                    return Integer.parseInt(line.substring(6).trim(), 8);
                }
            }
        } catch (IOException | RuntimeException e) {
            // fall through: assume the common default
        }
        return 022;
    }

    /** Node ids are unsigned: VIRTUAL_BASE is negative as a Java long, so compare the distance. */
    private boolean isVirtualId(long node) {
        long index = node - VIRTUAL_BASE;
        return index >= 0 && index < virtuals.size();
    }

    /** The inode of {@code node} with a use for the caller, who must close it; EACCES for a sealed one. */
    private Inode inode(long node) throws FsException {
        Inode i = inodeOrSealed(node);
        if (i.sealed) {
            i.close();
            throw new FsException(Errnos.EACCES, "pseudo file system");
        }
        return i;
    }

    /** Like {@link #inode}, sealed mount points included (for the few operations that serve them). */
    private Inode inodeOrSealed(long node) throws FsException {
        Inode i;
        if (isVirtualId(node)) {
            i = virtuals.get((int) (node - VIRTUAL_BASE));
        } else {
            synchronized (lock) {
                i = inodes.get(node);
            }
        }
        if (i == null || !i.pin()) {
            throw new FsException(Errnos.ENOENT, "unknown node " + node);
        }
        return i;
    }

    /** A directory node for a target of RENAME/LINK: unknown (e.g. another share's) → EXDEV. */
    private Inode targetDir(long node) throws FsException {
        try {
            return inode(node);
        } catch (FsException e) {
            throw new FsException(Errnos.EXDEV, "unknown node " + node);
        }
    }

    /** The handle {@code fh} with a use for the caller, who must close it. */
    private Handle handle(long fh) throws FsException {
        Handle h = handleOrSealed(fh);
        if (h.inode.sealed) {
            h.close();
            throw new FsException(Errnos.EACCES, "pseudo file system");
        }
        return h;
    }

    private Handle handleOrSealed(long fh) throws FsException {
        Handle h = fh > 0 ? handles.get(fh) : null;
        if (h == null || !h.pin()) {
            throw new FsException(Errnos.EBADF, "unknown handle " + fh);
        }
        return h;
    }

    /** Like {@link #handle}, null for an unknown handle. */
    private Handle optionalHandle(long fh) {
        Handle h = handles.get(fh);
        return h != null && h.pin() ? h : null;
    }

    /**
     * A new handle of {@code i} (which the caller holds a use of) on the descriptor {@code open} returns (null for
     * a virtual file); its place under the handle cap is taken before {@code open} runs.
     */
    private long openHandle(Inode i, boolean dir, boolean writable, HostCalls.Op<FileDescriptor> open) throws FsException {
        handleCap.take();
        FileDescriptor fd;
        try {
            fd = open.run();
        } catch (RuntimeException | FsException e) {
            handleCap.give();
            throw e;
        }
        return addHandle(new Handle(i, fd, dir, writable, handleCap));
    }

    private long addHandle(Handle h) {
        long fh = nextFh.getAndIncrement();
        handles.put(fh, h);
        return fh;
    }

    /** Fails ENFILE before an operation makes a name whose inode the cap has no room for. */
    private void roomForInode() throws FsException {
        if (inodeCap.isFull()) {
            throw inodeCap.full();
        }
    }

    private Inode virtualAt(Inode parent, byte[] name) {
        return parent == root && !virtuals.isEmpty() ? virtualByName.get(key(name)) : null;
    }

    /** Checks a name that the operation would create or remove in {@code parent}; the caller closes the result. */
    private Inode modifiableDir(long parent, byte[] name) throws FsException {
        if (options.readOnly()) {
            throw new FsException(Errnos.EROFS);
        }
        return modifiable(inode(parent), name);
    }

    /** {@link #modifiableDir} for the target directory of RENAME/LINK. */
    private Inode modifiableTargetDir(long parent, byte[] name) throws FsException {
        if (options.readOnly()) {
            throw new FsException(Errnos.EROFS);
        }
        return modifiable(targetDir(parent), name);
    }

    /** Checks {@code name} in {@code p}, whose use passes to the caller, or is ended on refusal. */
    private Inode modifiable(Inode p, byte[] name) throws FsException {
        try {
            checkName(name);
            if (virtualAt(p, name) != null) {
                throw new FsException(Errnos.EROFS, "virtual file");
            }
            if (p.virtual != null) {
                throw new FsException(Errnos.ENOTDIR);
            }
            return p;
        } catch (FsException e) {
            p.close();
            throw e;
        }
    }

    private void checkWritable(Inode i) throws FsException {
        if (options.readOnly() || i.virtual != null) {
            throw new FsException(Errnos.EROFS);
        }
    }

    private static Attr attr(Stat s) { return HostCalls.attr(s.ino(), s); }

    private Attr virtualAttr(Inode v) {
        long size = v.virtual.content().length;
        return new Attr(v.nodeId, size, (size + 511) / 512, createdSec, 0, createdSec, 0, createdSec, 0,
                Stat.S_IFREG | v.virtual.permissions(), 1, 0, 0, 0, 4096);
    }

    private Attr attrOf(Inode i) {
        return i.virtual != null ? virtualAttr(i) : i.sealed ? sealedAttr(i) : attr(PosixFs.fstat(i.fd));
    }

    /** A sealed mount point: an empty root-owned directory; nothing of the host's mount. */
    private Attr sealedAttr(Inode i) {
        return new Attr(i.nodeId, 0, 0, createdSec, 0, createdSec, 0, createdSec, 0, Stat.S_IFDIR | 0555, 2, 0, 0,
                0, 4096);
    }

    /** Whether inodes of {@code dev} (whose file {@code fd} is) may be served: not a host pseudo file system. */
    private boolean deviceAllowed(long dev, FileDescriptor fd) {
        Boolean ok = deviceAllowed.get(dev);
        if (ok == null) {
            long type = PosixFs.fstatfsType(fd);
            ok = type == rootFsType || !HostCalls.PSEUDO_FS.contains(type);
            deviceAllowed.put(dev, ok);
        }
        return ok;
    }

    private Entry entry(Inode i, Attr a) {
        return new Entry(i.nodeId, 0, a, options.entryTimeoutNanos(), options.attrTimeoutNanos());
    }

    /** Adds one lookup of the inode behind {@code fd} (taking ownership of {@code fd}); ENFILE past the cap. */
    private Found register(FileDescriptor fd, long parentDev) throws FsException {
        Stat st;
        boolean sealed;
        try {
            st = PosixFs.fstat(fd);
            // fstatfs only where a mount is crossed: inside an allowed device everything is allowed
            sealed = st.dev() != parentDev && !deviceAllowed(st.dev(), fd);
        } catch (RuntimeException e) {
            fd.close();
            throw e;
        }
        if (sealed && st.type() != Stat.S_IFDIR) {
            fd.close(); // a pseudo file bind-mounted over a name: nothing to mount over, refuse it
            throw new FsException(Errnos.EACCES, "pseudo file system");
        }
        Key k = new Key(st.dev(), st.ino());
        Inode i;
        synchronized (lock) {
            i = byKey.get(k);
            if (i != null && i.pin()) {
                i.lookups++;
            } else {
                try {
                    inodeCap.take();
                } catch (FsException full) {
                    fd.close();
                    throw full;
                }
                i = new Inode(nextNode.getAndIncrement(), sealed ? null : fd, k, st.type(), null, null, inodeCap,
                        sealed);
                i.pin();
                i.lookups = 1;
                inodes.put(i.nodeId, i);
                byKey.put(k, i);
            }
        }
        if (i.fd != fd) {
            fd.close();
        }
        return new Found(i, entry(i, i.sealed ? sealedAttr(i) : attr(st)));
    }

    private Found lookupHost(Inode p, byte[] name) throws FsException {
        return register(PosixFs.openat(p.fd, name, O_PATH | O_NOFOLLOW, 0), p.key.dev());
    }

    /** A lookup that the guest does not get after all (the operation that made it failed). */
    private void undo(Found f) {
        f.close();
        forget(f.inode().nodeId, 1);
    }

    /**
     * Restores permission bits the host process umask took away from the inode just made as {@code type}; through
     * its own descriptor, since by name chmod would follow a symlink swapped in meanwhile.
     */
    private void fixMode(Inode i, int type, int perms) {
        if ((processUmask & perms & 0777) != 0 && i.type == type) {
            PosixFs.fchmodat(null, procPath(i.fd), unmasked(PosixFs.fstat(i.fd).mode(), perms), 0);
        }
    }

    /**
     * A new node's mode with the VMM's umask undone (the guest applied its own): the permission bits the guest
     * asked for, and the set-ID bits the host gave it, which follow the directory and the caller's groups
     * (set-group-ID inherited by a directory, dropped from a file of a group its creator is not in).
     */
    private static int unmasked(int created, int perms) { return (created & 07000) | (perms & 0777); }

    private int perms(int mode, boolean dir) { return HostCalls.perms(mode, dir, options.allowSetuid()); }

    private void dropSetuid(FileDescriptor fd) { HostCalls.dropSetuid(fd, options.allowSetuid()); }

    // ---------------------------------------------------------------- FileSystem

    @Override
    public long init(long kernelFlags) {
        // FUSE_CREATE_SUPP_GROUP: a caller creating a node in a directory of one of its supplementary groups has
        // that group checked (and set-group-ID kept) by the host, as for a local caller.
        return Fuse.DO_READDIRPLUS | Fuse.READDIRPLUS_AUTO | (switchCredentials ? Fuse.CREATE_SUPP_GROUP : 0);
    }

    @Override
    public long attrTimeoutNanos() { return options.attrTimeoutNanos(); }

    @Override
    public void destroy() {
        // each handle closed by whoever removes it from the table (a RELEASE racing this closes it, or this does)
        for (Long fh : new ArrayList<>(handles.keySet())) {
            Handle h = handles.remove(fh);
            if (h != null) {
                h.close();
            }
        }
        List<Inode> gone = new ArrayList<>();
        synchronized (lock) {
            for (Inode i : inodes.values()) {
                if (i != root) {
                    gone.add(i);
                }
            }
            inodes.clear();
            byKey.clear();
            inodes.put(ROOT_ID, root);
            byKey.put(root.key, root);
        }
        gone.forEach(Inode::close);
    }

    @Override
    public void close() {
        destroy();
        synchronized (lock) {
            inodes.remove(ROOT_ID);
            byKey.remove(root.key);
        }
        root.close();
    }

    /** Inodes currently held (the root included), for tests and leak checks. */
    public int inodeCount() {
        synchronized (lock) {
            return inodes.size();
        }
    }

    public int handleCount() { return handles.size(); }

    @Override
    public Entry lookup(Context ctx, long parent, byte[] name) throws FsException {
        try (Inode p = inodeOrSealed(parent)) {
            checkName(name);
            if (p.sealed) {
                throw new FsException(Errnos.ENOENT, "sealed mount point"); // it is listed empty
            }
            Inode v = virtualAt(p, name);
            if (v != null) {
                return entry(v, virtualAttr(v));
            }
            if (p.virtual != null) {
                throw new FsException(Errnos.ENOTDIR);
            }
            return sys(() -> {
                try (Found f = lookupHost(p, name)) {
                    return f.entry();
                }
            });
        }
    }

    @Override
    public void forget(long node, long nlookup) {
        if (node == ROOT_ID || isVirtualId(node)) {
            return;
        }
        Inode gone = null;
        synchronized (lock) {
            Inode i = inodes.get(node);
            if (i == null) {
                return;
            }
            // nlookup is a u64: anything at or above the count drops the inode
            if (Long.compareUnsigned(nlookup, i.lookups) >= 0) {
                inodes.remove(node);
                byKey.remove(i.key, i);
                gone = i;
            } else {
                i.lookups -= nlookup;
            }
        }
        if (gone != null) {
            gone.close();
        }
    }

    @Override
    public Attr getattr(long node, long fh) throws FsException {
        try (Inode i = inodeOrSealed(node)) {
            return sys(() -> attrOf(i));
        }
    }

    @Override
    public Attr setattr(Context ctx, long node, SetAttr s) throws FsException {
        try (Inode i = inode(node); Handle h = s.has(SetAttr.FATTR_FH) ? optionalHandle(s.fh()) : null) {
            checkWritable(i);
            if (h != null && h.inode != i && (h.inode.key == null || !h.inode.key.equals(i.key))) {
                // Linux sends the node's own handle; another file's would get the node's checks (e.g. its type's)
                throw new FsException(Errnos.EBADF, "handle of another file");
            }
            return sys(() -> setattr(i, h, s));
        }
    }

    private Attr setattr(Inode i, Handle h, SetAttr s) throws FsException {
        byte[] proc = procPath(i.fd);
        if (s.has(SetAttr.FATTR_MODE)) {
            int perms = perms(s.mode(), i.isDir());
            if (h != null && h.fd != null && !h.dir) {
                PosixFs.fchmod(h.fd, perms);
            } else if (i.type == Stat.S_IFLNK) {
                throw new FsException(Errnos.EOPNOTSUPP, "chmod of a symlink");
            } else {
                PosixFs.fchmodat(null, proc, perms, 0);
            }
        }
        if (s.has(SetAttr.FATTR_UID) || s.has(SetAttr.FATTR_GID)) {
            PosixFs.fchownat(i.fd, null, s.has(SetAttr.FATTR_UID) ? s.uid() : -1,
                    s.has(SetAttr.FATTR_GID) ? s.gid() : -1, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
        }
        if (s.has(SetAttr.FATTR_SIZE)) {
            if (h != null && h.fd != null && h.writable) {
                PosixFs.ftruncate(h.fd, s.size());
            } else if (i.isDir()) {
                throw new FsException(Errnos.EISDIR);
            } else if (i.type != Stat.S_IFREG) {
                throw new FsException(Errnos.EINVAL, "truncate of a special file");
            } else {
                try (FileDescriptor w = PosixFs.openat(null, proc, O_WRONLY | O_NONBLOCK, 0)) {
                    dropSetuid(w);
                    PosixFs.ftruncate(w, s.size());
                }
            }
        }
        int times = SetAttr.FATTR_ATIME | SetAttr.FATTR_MTIME | SetAttr.FATTR_ATIME_NOW | SetAttr.FATTR_MTIME_NOW;
        if ((s.valid() & times) != 0) {
            long aSec = s.atime(), aNs = s.atimensec(), mSec = s.mtime(), mNs = s.mtimensec();
            if (s.has(SetAttr.FATTR_ATIME_NOW)) {
                aNs = UTIME_NOW;
            } else if (!s.has(SetAttr.FATTR_ATIME)) {
                aNs = UTIME_OMIT;
            }
            if (s.has(SetAttr.FATTR_MTIME_NOW)) {
                mNs = UTIME_NOW;
            } else if (!s.has(SetAttr.FATTR_MTIME)) {
                mNs = UTIME_OMIT;
            }
            if (i.type == Stat.S_IFLNK) {
                PosixFs.utimensat(i.fd, null, aSec, aNs, mSec, mNs, AT_EMPTY_PATH); // the link itself (lutimes)
            } else {
                PosixFs.utimensat(null, proc, aSec, aNs, mSec, mNs, 0);
            }
        }
        return attrOf(i);
    }

    @Override
    public byte[] readlink(long node) throws FsException {
        try (Inode i = inode(node)) {
            if (i.type != Stat.S_IFLNK) {
                throw new FsException(Errnos.EINVAL, "not a symlink");
            }
            return sys(() -> PosixFs.readlinkat(i.fd, null));
        }
    }

    @Override
    public Entry symlink(Context ctx, long parent, byte[] name, byte[] target) throws FsException {
        try (Inode p = modifiableDir(parent, name)) {
            if (target.length == 0) {
                throw new FsException(Errnos.ENOENT, "empty symlink target");
            }
            roomForInode();
            return as(ctx, () -> {
                PosixFs.symlinkat(target, p.fd, name);
                try (Found f = lookupHost(p, name)) {
                    return f.entry();
                }
            });
        }
    }

    @Override
    public Entry mknod(Context ctx, long parent, byte[] name, int mode, int rdev, int umask) throws FsException {
        try (Inode p = modifiableDir(parent, name)) {
            int type = mode & Stat.S_IFMT;
            switch (type) {
                case 0, Stat.S_IFREG, Stat.S_IFIFO, Stat.S_IFSOCK -> { }
                case Stat.S_IFCHR, Stat.S_IFBLK -> {
                    // A device node hands the host device to whoever opens it on the host (the share never does);
                    // 0:0 is the overlayfs whiteout, which opens nothing.
                    if (!options.allowDeviceNodes() && !(type == Stat.S_IFCHR && rdev == 0)) {
                        throw new FsException(Errnos.EPERM, "device node");
                    }
                }
                case Stat.S_IFDIR -> throw new FsException(Errnos.EPERM, "MKNOD of a directory");
                default -> throw new FsException(Errnos.EINVAL, "MKNOD type " + Integer.toOctalString(type));
            }
            int perms = perms(mode, false);
            roomForInode();
            return as(ctx, () -> {
                PosixFs.mknodat(p.fd, name, type | perms, Integer.toUnsignedLong(rdev));
                return made(lookupHost(p, name), type == 0 ? Stat.S_IFREG : type, perms);
            });
        }
    }

    /** The entry of an inode just made, with the permission bits the host umask took away restored. */
    private Entry made(Found f, int type, int perms) {
        try (f) {
            fixMode(f.inode(), type, perms);
            return f.entry();
        } catch (RuntimeException e) {
            forget(f.inode().nodeId, 1);
            throw e;
        }
    }

    @Override
    public Entry mkdir(Context ctx, long parent, byte[] name, int mode, int umask) throws FsException {
        int perms = perms(mode, true);
        try (Inode p = modifiableDir(parent, name)) {
            roomForInode();
            return as(ctx, () -> {
                PosixFs.mkdirat(p.fd, name, perms);
                return made(lookupHost(p, name), Stat.S_IFDIR, perms);
            });
        }
    }

    @Override
    public void unlink(long parent, byte[] name) throws FsException {
        try (Inode p = modifiableDir(parent, name)) {
            sys(() -> {
                PosixFs.unlinkat(p.fd, name, 0);
                return null;
            });
        }
    }

    @Override
    public void rmdir(long parent, byte[] name) throws FsException {
        try (Inode p = modifiableDir(parent, name)) {
            sys(() -> {
                PosixFs.unlinkat(p.fd, name, AT_REMOVEDIR);
                return null;
            });
        }
    }

    @Override
    public void rename(long parent, byte[] name, long newParent, byte[] newName, int flags) throws FsException {
        try (Inode p = modifiableDir(parent, name); Inode np = modifiableTargetDir(newParent, newName)) {
            if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)) != 0) {
                throw new FsException(Errnos.EINVAL, "rename flags " + flags);
            }
            sys(() -> {
                PosixFs.renameat2(p.fd, name, np.fd, newName, flags);
                return null;
            });
        }
    }

    @Override
    public Entry link(long node, long newParent, byte[] newName) throws FsException {
        try (Inode i = inode(node); Inode np = modifiableTargetDir(newParent, newName)) {
            if (i.virtual != null) {
                throw new FsException(Errnos.EROFS, "virtual file");
            }
            if (i.isDir()) {
                throw new FsException(Errnos.EPERM, "hard link to a directory");
            }
            return sys(() -> {
                try {
                    PosixFs.linkat(i.fd, null, np.fd, newName, AT_EMPTY_PATH);
                } catch (NativeCallException e) {
                    if (e.errno() != Errnos.ENOENT && e.errno() != Errnos.EPERM) {
                        throw e;
                    }
                    // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the /proc magic link names the same inode.
                    PosixFs.linkat(null, procPath(i.fd), np.fd, newName, AT_SYMLINK_FOLLOW);
                }
                try (Found f = lookupHost(np, newName)) {
                    return f.entry();
                }
            });
        }
    }

    private static boolean writes(int flags) {
        return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0;
    }

    @Override
    public Opened open(Context ctx, long node, int flags) throws FsException {
        try (Inode i = inode(node)) {
            return openInode(ctx, i, flags, false);
        }
    }

    @Override
    public boolean supportsMapping() { return true; }

    /** A regular file opened as OPEN would open it (the caller's permissions), for a DAX mapping; closed by the caller. */
    @Override
    public MapSource mapSource(Context ctx, long node, boolean writable) throws FsException {
        try (Inode i = inode(node)) {
            if (i.virtual != null) {
                if (writable) {
                    throw new FsException(Errnos.EROFS, "virtual file");
                }
                return new MapSource.Bytes(i.virtual.content());
            }
            if (options.readOnly() && writable) {
                throw new FsException(Errnos.EROFS);
            }
            if (i.type != Stat.S_IFREG) {
                throw new FsException(i.isDir() ? Errnos.EISDIR : Errnos.EACCES, "mapping of a non-regular file");
            }
            int hostFlags = (writable ? 2 /* O_RDWR */ : 0 /* O_RDONLY */) | O_NONBLOCK;
            FileDescriptor fd = sys(() -> PosixFs.openat(null, procPath(i.fd), hostFlags, 0));
            if (writable) {
                try {
                    writableMappingAllowed(fd);
                } catch (NativeCallException | FsException e) {
                    fd.close();
                    throw e instanceof NativeCallException n ? new FsException(n.errno(), n.call()) : (FsException) e;
                }
            }
            return new MapSource.HostFile(fd);
        }
    }

    /**
     * A store through a mapping is not a write(2): the kernel neither clears setuid/setgid bits nor drops file
     * capabilities for it. So a file keeps a writable mapping only when, after the bits were dropped as a write-open
     * drops them, it carries neither (EPERM otherwise; the guest then writes it through FUSE).
     */
    private void writableMappingAllowed(FileDescriptor fd) throws FsException {
        dropSetuid(fd);
        if (options.allowSetuid()) {
            return;
        }
        if ((PosixFs.fstat(fd).mode() & 06000) != 0) {
            throw new FsException(Errnos.EPERM, "writable mapping of a setuid/setgid file");
        }
        try {
            PosixFs.getxattr(procPath(fd), SECURITY_CAPABILITY, null, 0);
            throw new FsException(Errnos.EPERM, "writable mapping of a file with capabilities");
        } catch (NativeCallException e) {
            if (e.errno() != Errnos.ENODATA && e.errno() != Errnos.EOPNOTSUPP) {
                throw e;
            }
        }
    }

    private static final byte[] SECURITY_CAPABILITY = "security.capability".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

    /**
     * OPEN, and CREATE of a name that exists: only regular files and directories are opened, never followed.
     * {@code asCaller}: a CREATE that found the name taken opens it as the caller. The guest sent CREATE after a
     * LOOKUP that found nothing, so its kernel checked only the directory, never this file (it marks the open
     * FMODE_CREATED and skips may_open): the host must check it, as it would a local open(O_CREAT) of a file
     * another process made in between.
     */
    private Opened openInode(Context ctx, Inode i, int flags, boolean asCaller) throws FsException {
        if (i.virtual != null) {
            if (writes(flags)) {
                throw new FsException(Errnos.EROFS, "virtual file");
            }
            return new Opened(openHandle(i, false, false, () -> null), 0);
        }
        if (options.readOnly() && writes(flags)) {
            throw new FsException(Errnos.EROFS);
        }
        if (i.type == Stat.S_IFLNK) {
            throw new FsException(Errnos.ELOOP, "open of a symlink");
        }
        if (i.type != Stat.S_IFREG && !i.isDir()) {
            throw new FsException(Errnos.EACCES, "open of a special file");
        }
        // O_NONBLOCK: regular files ignore it, but an open or read that would wait (a lease held on the host, a
        // pseudo-file such as /proc/kmsg in a share of the host's /) fails EAGAIN instead of holding the worker.
        int hostFlags = flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW | O_PATH) | O_NONBLOCK;
        return new Opened(openHandle(i, i.isDir(), (flags & O_ACCMODE) != O_RDONLY, () -> {
            HostCalls.Op<FileDescriptor> open = () -> PosixFs.openat(null, procPath(i.fd), hostFlags, 0);
            FileDescriptor fd = asCaller ? as(ctx, open) : sys(open);
            if (writes(flags)) {
                try {
                    dropSetuid(fd); // without allowSetuid this already cleared every set-ID bit
                    if (options.allowSetuid() && (flags & O_TRUNC) != 0 && ctx.uid() != 0) {
                        killSetIdOnTruncate(fd);
                    }
                } catch (NativeCallException e) {
                    fd.close();
                    throw new FsException(e.errno(), e.call());
                }
            }
            return fd;
        }), 0);
    }

    @Override
    public Created create(Context ctx, long parent, byte[] name, int flags, int mode, int umask) throws FsException {
        int perms = perms(mode, false);
        // Always O_EXCL: an existing name is taken through openInode's type check instead of being opened here,
        // where a FIFO would block this worker and a device node would open the host device.
        int hostFlags = (flags & ~(O_NOCTTY | O_PATH | O_DIRECTORY)) | O_CREAT | O_EXCL | O_NOFOLLOW;
        try (Inode p = modifiableDir(parent, name)) {
            roomForInode();
            handleCap.take();
            FileDescriptor fd;
            try {
                fd = as(ctx, () -> {
                    try {
                        return PosixFs.openat(p.fd, name, hostFlags, perms);
                    } catch (NativeCallException e) {
                        if (e.errno() == Errnos.EEXIST && (flags & O_EXCL) == 0) {
                            return null;
                        }
                        throw e;
                    }
                });
            } catch (RuntimeException | FsException e) {
                handleCap.give();
                throw e;
            }
            if (fd == null) {
                handleCap.give();
                return createExisting(ctx, p, name, flags);
            }
            Found f;
            try {
                if ((processUmask & perms & 0777) != 0) {
                    PosixFs.fchmod(fd, unmasked(PosixFs.fstat(fd).mode(), perms));
                }
                f = sys(() -> register(PosixFs.openat(null, procPath(fd), O_PATH, 0), p.key.dev()));
            } catch (RuntimeException | FsException e) {
                fd.close();
                handleCap.give();
                throw e;
            }
            try (f) {
                long fh = addHandle(new Handle(f.inode(), fd, false, (flags & O_ACCMODE) != O_RDONLY, handleCap));
                return new Created(f.entry(), new Opened(fh, 0));
            }
        }
    }

    /** CREATE without O_EXCL of a name that exists: a lookup plus OPEN, undone if the open is refused. */
    private Created createExisting(Context ctx, Inode p, byte[] name, int flags) throws FsException {
        Found f = sys(() -> lookupHost(p, name));
        try (f) {
            if (f.inode().isDir()) {
                throw new FsException(Errnos.EISDIR);
            }
            return new Created(f.entry(), openInode(ctx, f.inode(), flags, true));
        } catch (RuntimeException | FsException e) {
            forget(f.inode().nodeId, 1);
            throw e;
        }
    }

    @Override
    public int read(long node, long fh, long offset, ByteBuffer dst) throws FsException {
        return (int) read(node, fh, offset, new ByteBuffer[] {dst});
    }

    @Override
    public long read(long node, long fh, long offset, ByteBuffer[] dsts) throws FsException {
        try (Handle h = handle(fh)) {
            if (h.dir) {
                throw new FsException(Errnos.EISDIR);
            }
            if (offset < 0) {
                throw new FsException(Errnos.EINVAL, "negative offset");
            }
            if (h.fd == null) {
                byte[] c = h.inode.virtual.content();
                long total = 0;
                for (ByteBuffer d : dsts) {
                    if (offset + total >= c.length) {
                        break;
                    }
                    int n = (int) Math.min(d.remaining(), c.length - (offset + total));
                    d.put(c, (int) (offset + total), n);
                    total += n;
                }
                return total;
            }
            return HostCalls.readFully(h.fd, offset, dsts);
        }
    }

    @Override
    public int write(long node, long fh, long offset, ByteBuffer src, int writeFlags) throws FsException {
        return (int) write(node, fh, offset, new ByteBuffer[] {src}, writeFlags);
    }

    @Override
    public long write(long node, long fh, long offset, ByteBuffer[] srcs, int writeFlags) throws FsException {
        try (Handle h = handle(fh)) {
            checkWritable(h.inode);
            if (h.dir) {
                throw new FsException(Errnos.EISDIR);
            }
            return HostCalls.writeAll(h.fd, offset, srcs);
        }
    }

    @Override
    public void flush(long node, long fh, long lockOwner) throws FsException {
        handle(fh).close();
    }

    @Override
    public void release(long node, long fh) throws FsException {
        Handle h = handles.remove(fh);
        if (h == null) {
            throw new FsException(Errnos.EBADF, "unknown handle " + fh);
        }
        h.close();
    }

    @Override
    public void fsync(long node, long fh, boolean datasync) throws FsException {
        try (Handle h = handle(fh)) {
            if (h.fd == null) {
                return;
            }
            sys(() -> {
                if (datasync) {
                    PosixFs.fdatasync(h.fd);
                } else {
                    PosixFs.fsync(h.fd);
                }
                return null;
            });
        }
    }

    @Override
    public Opened opendir(Context ctx, long node, int flags) throws FsException {
        try (Inode i = inodeOrSealed(node)) {
            if (!i.isDir()) {
                throw new FsException(Errnos.ENOTDIR);
            }
            if (i.sealed) {
                return new Opened(openHandle(i, true, false, () -> null), 0);
            }
            return new Opened(openHandle(i, true, false,
                    () -> sys(() -> PosixFs.openat(i.fd, PosixFs.bytes("."), O_RDONLY | O_DIRECTORY, 0))), 0);
        }
    }

    @Override
    public void readdir(long node, long fh, long offset, DirSink sink) throws FsException {
        try (Handle h = handleOrSealed(fh)) {
            if (!h.dir) {
                throw new FsException(Errnos.ENOTDIR);
            }
            if (h.inode.sealed) {
                return; // empty
            }
            synchronized (h) {
                readdir(h, offset, sink);
            }
        }
    }

    private void readdir(Handle h, long offset, DirSink sink) throws FsException {
        long hostOffset = offset;
        boolean atRoot = h.inode == root && !virtuals.isEmpty();
        if (atRoot) {
            int n = virtuals.size();
            int start;
            if (offset == 0) {
                start = 0;
            } else if (offset > VIRTUAL_DIR_COOKIE && offset <= VIRTUAL_DIR_COOKIE + n) {
                start = (int) (offset - VIRTUAL_DIR_COOKIE);
            } else {
                start = n + 1; // a host cookie: the virtual entries were all listed before it
            }
            if (start <= n) {
                for (int v = start; v < n; v++) {
                    Inode vi = virtuals.get(v);
                    if (!sink.fits(vi.name.length)) {
                        return;
                    }
                    Entry e = sink.plus() ? entry(vi, virtualAttr(vi)) : null;
                    sink.add(vi.nodeId, VIRTUAL_DIR_COOKIE + v + 1, DT_REG, vi.name, e);
                }
                hostOffset = 0;
            }
        }
        long from = hostOffset;
        sys(() -> {
            PosixFs.lseek(h.fd, from, SEEK_SET);
            while (true) {
                List<DirEntry> batch = PosixFs.getdents64(h.fd, GETDENTS_BUFFER);
                if (batch.isEmpty()) {
                    return null;
                }
                for (DirEntry d : batch) {
                    if (atRoot && virtualByName.containsKey(key(d.name()))) {
                        continue; // hidden by a virtual file
                    }
                    if (!sink.fits(d.name().length)) {
                        return null;
                    }
                    Entry e = null;
                    if (sink.plus()) {
                        if (d.isDotOrDotDot() || inodeCap.isFull()) {
                            e = unlooked(d);
                        } else {
                            try (Found f = lookupHost(h.inode, d.name())) {
                                if (f.inode().sealed) {
                                    forget(f.inode().nodeId, 1); // the name only: LOOKUP serves the stub
                                    e = unlooked(d);
                                } else {
                                    e = f.entry();
                                }
                            } catch (NativeCallException gone) {
                                continue; // removed since getdents: skip it
                            } catch (FsException full) {
                                e = unlooked(d);
                            }
                        }
                    }
                    sink.add(d.ino(), d.off(), d.type(), d.name(), e);
                }
            }
        });
    }

    /** A READDIRPLUS entry without a lookup (node id 0): the guest looks the name up when it needs it. */
    private static Entry unlooked(DirEntry d) {
        return new Entry(0, 0, new Attr(d.ino(), 0, 0, 0, 0, 0, 0, 0, 0, d.type() << 12, 0, 0, 0, 0, 0), 0, 0);
    }

    @Override
    public void releasedir(long node, long fh) throws FsException { release(node, fh); }

    @Override
    public void fsyncdir(long node, long fh, boolean datasync) throws FsException { fsync(node, fh, datasync); }

    @Override
    public StatFs statfs(long node) throws FsException {
        try (Inode i = inode(node); Inode at = i.virtual != null ? inode(ROOT_ID) : null) {
            FileDescriptor fd = at != null ? at.fd : i.fd;
            return HostCalls.statfs(fd);
        }
    }

    @Override
    public void access(Context ctx, long node, int mask) throws FsException {
        try (Inode i = inodeOrSealed(node)) {
            if (i.sealed) {
                if ((mask & W_OK) != 0) {
                    throw new FsException(Errnos.EACCES, "pseudo file system");
                }
                return;
            }
            if ((mask & W_OK) != 0 && (options.readOnly() || i.virtual != null)) {
                throw new FsException(Errnos.EROFS);
            }
            if (i.virtual != null) {
                if ((mask & X_OK) != 0 && (i.virtual.permissions() & 0111) == 0) {
                    throw new FsException(Errnos.EACCES);
                }
                return;
            }
            as(ctx, () -> {
                PosixFs.faccessat(null, procPath(i.fd), mask, AT_EACCESS);
                return null;
            });
        }
    }

    private static boolean startsWith(byte[] name, byte[] prefix) {
        return name.length >= prefix.length
                && java.util.Arrays.equals(name, 0, prefix.length, prefix, 0, prefix.length);
    }

    private static boolean remappedXattr(byte[] name) {
        for (byte[] p : XATTR_REMAPPED) {
            if (startsWith(name, p)) {
                return true;
            }
        }
        return false;
    }

    /** The host name of a guest xattr name, or null for the host-side names the guest may not reach directly. */
    private static byte[] hostXattrName(byte[] name) {
        if (startsWith(name, XATTR_HOST_PREFIX)) {
            return null;
        }
        if (remappedXattr(name)) {
            byte[] h = java.util.Arrays.copyOf(XATTR_HOST_PREFIX, XATTR_HOST_PREFIX.length + name.length);
            System.arraycopy(name, 0, h, XATTR_HOST_PREFIX.length, name.length);
            return h;
        }
        return name;
    }

    /** The guest name of a host xattr name, or null when the guest does not see it. */
    private static byte[] guestXattrName(byte[] host) {
        if (startsWith(host, XATTR_HOST_PREFIX)) {
            byte[] g = java.util.Arrays.copyOfRange(host, XATTR_HOST_PREFIX.length, host.length);
            return remappedXattr(g) ? g : null;
        }
        return remappedXattr(host) ? null : host;
    }

    @Override
    public int getxattr(long node, byte[] name, ByteBuffer dst) throws FsException {
        try (Inode i = inode(node)) {
            byte[] hostName = hostXattrName(name);
            if (i.virtual != null || hostName == null) {
                throw new FsException(Errnos.ENODATA);
            }
            int size = dst.remaining();
            return sys(() -> {
                byte[] buf = new byte[size];
                int n = PosixFs.getxattr(procPath(i.fd), hostName, buf, size);
                if (size > 0) {
                    dst.put(buf, 0, n);
                }
                return n;
            });
        }
    }

    @Override
    public int listxattr(long node, ByteBuffer dst) throws FsException {
        byte[] host;
        try (Inode i = inode(node)) {
            if (i.virtual != null) {
                return 0;
            }
            host = sys(() -> {
                byte[] buf = new byte[XATTR_LIST_MAX];
                return java.util.Arrays.copyOf(buf, PosixFs.listxattr(procPath(i.fd), buf, buf.length));
            });
        }
        java.io.ByteArrayOutputStream list = new java.io.ByteArrayOutputStream(host.length);
        for (int start = 0, end; start < host.length; start = end + 1) {
            end = start;
            while (end < host.length && host[end] != 0) {
                end++;
            }
            byte[] g = guestXattrName(java.util.Arrays.copyOfRange(host, start, end));
            if (g != null && g.length > 0) {
                list.write(g, 0, g.length);
                list.write(0);
            }
        }
        if (dst.remaining() > 0) {
            if (list.size() > dst.remaining()) {
                throw new FsException(Errnos.ERANGE);
            }
            dst.put(list.toByteArray());
        }
        return list.size();
    }

    /** The host name of an xattr the guest may set or remove on {@code i}: EROFS/EPERM as for any change. */
    private byte[] changeableXattrName(Inode i, byte[] name) throws FsException {
        checkWritable(i);
        byte[] hostName = hostXattrName(name);
        if (hostName == null) {
            throw new FsException(Errnos.EPERM, "reserved xattr name");
        }
        return hostName;
    }

    @Override
    public void setxattr(long node, byte[] name, byte[] value, int flags) throws FsException {
        try (Inode i = inode(node)) {
            byte[] hostName = changeableXattrName(i, name);
            sys(() -> {
                PosixFs.setxattr(procPath(i.fd), hostName, value, value.length, flags);
                return null;
            });
        }
    }

    @Override
    public void removexattr(long node, byte[] name) throws FsException {
        try (Inode i = inode(node)) {
            byte[] hostName = changeableXattrName(i, name);
            sys(() -> {
                PosixFs.removexattr(procPath(i.fd), hostName);
                return null;
            });
        }
    }

    @Override
    public void fallocate(long node, long fh, int mode, long offset, long length) throws FsException {
        try (Handle h = handle(fh)) {
            checkWritable(h.inode);
            sys(() -> {
                PosixFs.fallocate(h.fd, mode, offset, length);
                return null;
            });
        }
    }

    @Override
    public long lseek(long node, long fh, long offset, int whence) throws FsException {
        try (Handle h = handle(fh)) {
            if (h.fd != null) {
                synchronized (h) { // a directory's offset is READDIR's too, which moves it under this monitor
                    return sys(() -> PosixFs.lseek(h.fd, offset, whence));
                }
            }
            long size = h.inode.virtual.content().length;
            switch (whence) {
                case SEEK_SET, SEEK_CUR -> { return checkOffset(offset); }
                case SEEK_END -> { return checkOffset(size + offset); }
                case SEEK_DATA -> {
                    if (offset < 0 || offset >= size) {
                        throw new FsException(Errnos.ENXIO);
                    }
                    return offset;
                }
                case SEEK_HOLE -> {
                    if (offset < 0 || offset >= size) {
                        throw new FsException(Errnos.ENXIO);
                    }
                    return size;
                }
                default -> throw new FsException(Errnos.EINVAL, "whence " + whence);
            }
        }
    }

    private static long checkOffset(long off) throws FsException {
        if (off < 0) {
            throw new FsException(Errnos.EINVAL, "negative offset");
        }
        return off;
    }

    @Override
    public long copyFileRange(long nodeIn, long fhIn, long offIn, long nodeOut, long fhOut, long offOut, long len,
                              int flags) throws FsException {
        if (options.readOnly()) {
            throw new FsException(Errnos.EROFS);
        }
        try (Handle in = handle(fhIn); Handle out = handle(fhOut)) {
            checkWritable(out.inode);
            if (in.fd == null) {
                throw new FsException(Errnos.EXDEV, "copy from a virtual file");
            }
            if (offIn < 0 || offOut < 0) {
                throw new FsException(Errnos.EINVAL, "negative offset");
            }
            long n = Long.compareUnsigned(len, Fuse.MAX_COPY_FILE_RANGE) > 0 ? Fuse.MAX_COPY_FILE_RANGE : len;
            return sys(() -> PosixFs.copyFileRange(in.fd, offIn, out.fd, offOut, n, flags));
        }
    }

    @Override
    public IoctlResult ioctl(long node, long fh, int flags, int cmd, long arg, ByteBuffer in, int outSize)
            throws FsException {
        return HostCalls.exitCodeIoctl(node, cmd, arg, options.exitCodeListener());
    }

    @Override
    public String toString() { return "PassthroughFs[" + root.fd + (options.readOnly() ? ", ro" : "") + "]"; }
}
