package dev.jkrun.devices.fs.overlay;

import static dev.jkrun.devices.fs.passthrough.HostCalls.NAME_MAX;
import static dev.jkrun.devices.fs.passthrough.HostCalls.attr;
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
import dev.jkrun.devices.fs.passthrough.HostCalls;
import dev.jkrun.devices.fs.passthrough.PassthroughOptions;
import dev.jkrun.devices.fs.passthrough.VirtualFile;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.PosixFs;
import dev.jkrun.libc.Stat;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Serves a stack of host directories as one tree, the way Linux overlayfs merges lowerdir and upperdir
 * (Documentation/filesystems/overlayfs.rst) and the way an OCI image's unpacked layers stack
 * (image-spec layer.md, "Whiteouts").
 *
 * <p><b>Layers.</b> Given bottom to top (libkrun's krun_set_overlayfs_root order); the top one is the upper layer
 * and takes every change, the others are never written (unless the share is read-only: then nothing is). A name
 * is looked up top-down: the first layer that has it decides; directories merge with the directories of the same
 * name below them until one is opaque or a layer has a non-directory there.
 *
 * <p><b>Whiteouts and opaque directories</b> are read in both conventions: a 0:0 character device named NAME or
 * an OCI file {@code .wh.NAME} hides NAME in the layers below; a directory holding {@code .wh..wh..opq} or with
 * the xattr {@code trusted.overlay.opaque} / {@code user.overlay.opaque} = {@code y} hides the directories below
 * it. jkrun writes the OCI form ({@code .wh.NAME} files, {@code .wh..wh..opq}), which needs no privilege and no
 * xattr support on the host, so the upper layer is itself an OCI layer; a name too long for the prefix gets a
 * 0:0 whiteout instead. Names starting with {@code .wh.} are the layers' metadata: the guest never sees them,
 * LOOKUP of one is ENOENT and making one EINVAL.
 *
 * <p><b>Copy-up.</b> Writing, truncating, changing attributes of, linking or renaming a lower entry first copies
 * it (its parents first) to the upper layer with its mode, owner (when the VMM may chown) and times; a regular
 * file is copied under a hidden temporary name and renamed into place. Removing a lower entry leaves a whiteout.
 * A directory made where a lower one was removed is opaque. RENAME of a directory that exists in a lower layer
 * (or onto one) fails EXDEV, as overlayfs does without redirect_dir; the guest's mv then copies and removes.
 * A handle opened read-only before a copy-up keeps reading the lower file (overlayfs before Linux 4.19 did too).
 *
 * <p><b>Identity.</b> Node ids belong to paths, not host inodes: copy-up and the whiteout dance never change the
 * node (and st_ino, which is the node id) the guest holds. A hard link made by the guest gets a node of its own.
 * A name's node lives while the guest holds a lookup of it or of a name below it.
 *
 * <p><b>Containment</b> as in {@link dev.jkrun.devices.fs.passthrough.PassthroughFs}: every layer is walked one
 * name at a time with {@code openat(O_PATH|O_NOFOLLOW)} from the layer's root descriptor (no path string is
 * joined, "..", "/" and NUL are refused, a symlink is never followed); only regular files and directories are
 * ever opened; a host pseudo file system mounted inside a layer is refused (EACCES); device nodes are neither
 * made by MKNOD nor copied up unless {@link PassthroughOptions#allowDeviceNodes()}; setuid/setgid bits follow
 * {@link PassthroughOptions#allowSetuid()}. The root's virtual files and exit-code ioctl are PassthroughFs's.
 *
 * <p>Not served: extended attributes (GETXATTR is ENODATA, SETXATTR EOPNOTSUPP), READDIRPLUS, COPY_FILE_RANGE.
 * Namespace operations run one at a time (one lock); reads and writes on open handles run in parallel.
 */
public final class OverlayFs implements FileSystem, AutoCloseable {
    /** Node ids (and st_ino) of the virtual root files: {@code VIRTUAL_BASE + index}. */
    public static final long VIRTUAL_BASE = 0xFFFF_FFFF_0000_0000L;
    private static final byte[] WHITEOUT_PREFIX = bytes(".wh.");
    private static final byte[] OPAQUE_MARKER = bytes(".wh..wh..opq");
    private static final byte[] COPY_UP_TEMP = bytes(".wh..wh.jkrun-copyup");
    private static final byte[][] OPAQUE_XATTRS = {bytes("trusted.overlay.opaque"), bytes("user.overlay.opaque")};
    private static final int GETDENTS_BUFFER = 16384;
    private static final int COPY_CHUNK = 1 << 16;

    private final PassthroughOptions options;
    /** Layer roots top-down: {@code roots[0]} is the upper layer. */
    private final FileDescriptor[] roots;
    private final long[] rootDevs;
    private final Object lock = new Object();
    private final Node root = new Node(ROOT_ID, null, null);
    private final Map<Long, Node> nodes = new HashMap<>();
    private final Map<NameKey, Node> byName = new HashMap<>();
    private final Map<Long, Handle> handles = new ConcurrentHashMap<>();
    private final AtomicLong nextNode = new AtomicLong(2);
    private final AtomicLong nextFh = new AtomicLong(1);
    private final List<byte[]> virtualNames = new ArrayList<>();
    private final List<VirtualFile> virtuals = new ArrayList<>();
    private final Map<Long, Boolean> deviceAllowed = new ConcurrentHashMap<>();
    private final boolean switchCredentials = PosixFs.geteuid() == 0;
    private final long createdSec = System.currentTimeMillis() / 1000;

    private record NameKey(long parent, String name) {}

    /** A path the guest has looked up: its parent node and name; null parent once removed or replaced. */
    private static final class Node {
        final long id;
        Node parent;
        byte[] name;
        long lookups;
        int children;
        boolean detached;

        Node(long id, Node parent, byte[] name) {
            this.id = id;
            this.parent = parent;
            this.name = name;
        }
    }

    private static final class Handle {
        final long node;
        final FileDescriptor fd; // null for a directory or a virtual file
        final boolean writable;
        final List<DirItem> listing; // directories only
        final VirtualFile virtual;

        Handle(long node, FileDescriptor fd, boolean writable, List<DirItem> listing, VirtualFile virtual) {
            this.node = node;
            this.fd = fd;
            this.writable = writable;
            this.listing = listing;
            this.virtual = virtual;
        }
    }

    private record DirItem(long ino, int type, byte[] name) {}

    /**
     * Where one path is in the layers: the descriptors (O_PATH) of its entries top-down, with their layer indexes;
     * a non-directory has one, a directory those that merge. Closing closes the descriptors.
     */
    private static final class Layers implements AutoCloseable {
        final Stat top;
        final int[] index;
        final FileDescriptor[] fds;

        Layers(Stat top, int[] index, FileDescriptor[] fds) {
            this.top = top;
            this.index = index;
            this.fds = fds;
        }

        boolean isDir() { return top.isDirectory(); }

        boolean inUpper() { return index[0] == 0; }

        /** Only in the upper layer: nothing of it lies below. */
        boolean upperOnly() { return fds.length == 1 && index[0] == 0; }

        @Override
        public void close() {
            for (FileDescriptor fd : fds) {
                fd.close();
            }
        }
    }

    /**
     * Opens {@code layers}, bottom to top: the last is the upper (writable) layer. Each must be a directory; a
     * symlink there is not followed.
     */
    public OverlayFs(List<Path> layers, PassthroughOptions options) {
        if (layers.isEmpty()) {
            throw new IllegalArgumentException("an overlay needs at least one layer");
        }
        this.options = options;
        int n = layers.size();
        roots = new FileDescriptor[n];
        rootDevs = new long[n];
        try {
            for (int i = 0; i < n; i++) {
                FileDescriptor fd = PosixFs.openat(null, bytes(layers.get(n - 1 - i).toString()),
                        O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
                roots[i] = fd;
                rootDevs[i] = PosixFs.fstat(fd).dev();
                deviceAllowed.put(rootDevs[i], true);
            }
        } catch (RuntimeException e) {
            for (FileDescriptor fd : roots) {
                if (fd != null) {
                    fd.close();
                }
            }
            throw e;
        }
        nodes.put(ROOT_ID, root);
        root.lookups = 1;
        for (Map.Entry<String, VirtualFile> e : options.virtualFiles().entrySet()) {
            virtualNames.add(e.getKey().getBytes(StandardCharsets.UTF_8));
            virtuals.add(e.getValue());
        }
    }

    // ---------------------------------------------------------------- helpers

    private <T> T as(Context ctx, HostCalls.Op<T> op) throws FsException {
        return HostCalls.as(switchCredentials, ctx, op);
    }

    private static String key(byte[] name) { return new String(name, StandardCharsets.ISO_8859_1); }

    private static boolean startsWith(byte[] name, byte[] prefix) {
        return name.length >= prefix.length && Arrays.equals(name, 0, prefix.length, prefix, 0, prefix.length);
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    /** A name from the guest: one path component, and none of the layers' {@code .wh.} metadata. */
    private static void checkName(byte[] name, int metadataErrno) throws FsException {
        HostCalls.checkName(name);
        if (startsWith(name, WHITEOUT_PREFIX)) {
            throw new FsException(metadataErrno, "overlay metadata name");
        }
    }

    private boolean isVirtualId(long node) {
        long index = node - VIRTUAL_BASE;
        return index >= 0 && index < virtuals.size();
    }

    private int virtualIndex(Node parent, byte[] name) {
        if (parent != root) {
            return -1;
        }
        for (int i = 0; i < virtualNames.size(); i++) {
            if (Arrays.equals(virtualNames.get(i), name)) {
                return i;
            }
        }
        return -1;
    }

    private Attr virtualAttr(int i) {
        long size = virtuals.get(i).content().length;
        return new Attr(VIRTUAL_BASE + i, size, (size + 511) / 512, createdSec, 0, createdSec, 0, createdSec, 0,
                Stat.S_IFREG | virtuals.get(i).permissions(), 1, 0, 0, 0, 4096);
    }

    private Node node(long id) throws FsException {
        Node n = nodes.get(id);
        if (n == null) {
            throw new FsException(Errnos.ENOENT, "unknown node " + id);
        }
        return n;
    }

    private void checkWritable() throws FsException {
        if (options.readOnly()) {
            throw new FsException(Errnos.EROFS);
        }
    }

    private Entry entry(long id, Attr a) {
        return new Entry(id, 0, a, options.entryTimeoutNanos(), options.attrTimeoutNanos());
    }

    private static boolean isWhiteout(Stat st) { return st.type() == Stat.S_IFCHR && st.rdev() == 0; }

    private static boolean exists(FileDescriptor dir, byte[] name) {
        try {
            PosixFs.fstatat(dir, name, AT_SYMLINK_NOFOLLOW);
            return true;
        } catch (NativeCallException e) {
            return false; // ENOENT, or ENAMETOOLONG for a .wh. name past NAME_MAX: there is none
        }
    }

    private static FileDescriptor openOrNull(FileDescriptor dir, byte[] name) {
        try {
            return PosixFs.openat(dir, name, O_PATH | O_NOFOLLOW, 0);
        } catch (NativeCallException e) {
            if (e.errno() == Errnos.ENOENT) {
                return null;
            }
            throw e;
        }
    }

    private static boolean isOpaque(FileDescriptor dir) {
        if (exists(dir, OPAQUE_MARKER)) {
            return true;
        }
        byte[] value = new byte[1];
        for (byte[] name : OPAQUE_XATTRS) {
            try {
                if (PosixFs.getxattr(procPath(dir), name, value, 1) == 1 && value[0] == 'y') {
                    return true;
                }
            } catch (NativeCallException e) {
                // ENODATA, ERANGE (not "y"), ENOTSUP: not opaque by this attribute
            }
        }
        return false;
    }

    /** Whether {@code fd}'s file system (met on another device than its layer's root) may be served. */
    private boolean deviceAllowed(long dev, FileDescriptor fd) {
        return deviceAllowed.computeIfAbsent(dev, d -> !HostCalls.PSEUDO_FS.contains(PosixFs.fstatfsType(fd)));
    }

    /** The layer roots as a merged directory (fresh descriptors, closed with the result). */
    private Layers rootLayers() {
        FileDescriptor[] fds = new FileDescriptor[roots.length];
        int[] index = new int[roots.length];
        int n = 0;
        try {
            for (int i = 0; i < roots.length; i++) {
                fds[n] = PosixFs.openat(roots[i], bytes("."), O_PATH | O_DIRECTORY, 0);
                index[n++] = i;
                if (i > 0 && isOpaque(fds[n - 1])) {
                    break;
                }
            }
            return new Layers(PosixFs.fstat(fds[0]), Arrays.copyOf(index, n), Arrays.copyOf(fds, n));
        } catch (RuntimeException e) {
            for (int i = 0; i < n; i++) {
                fds[i].close();
            }
            throw e;
        }
    }

    /**
     * {@code name} in the merged directory {@code dir}, looking at its layers from position {@code from}; null when
     * no layer shows it.
     */
    private Layers child(Layers dir, int from, byte[] name) throws FsException {
        List<FileDescriptor> fds = new ArrayList<>();
        List<Integer> index = new ArrayList<>();
        Stat top = null;
        byte[] whiteoutName = concat(WHITEOUT_PREFIX, name);
        try {
            for (int k = from; k < dir.fds.length; k++) {
                FileDescriptor d = dir.fds[k];
                int layer = dir.index[k];
                FileDescriptor f = openOrNull(d, name);
                if (f != null) {
                    Stat st = PosixFs.fstat(f);
                    if (isWhiteout(st)) {
                        f.close();
                        break;
                    }
                    if (st.dev() != rootDevs[layer] && !deviceAllowed(st.dev(), f)) {
                        f.close();
                        throw new FsException(Errnos.EACCES, "pseudo file system");
                    }
                    if (top != null && !st.isDirectory()) {
                        f.close(); // a non-directory below a directory ends the merge
                        break;
                    }
                    if (top == null) {
                        top = st;
                    }
                    fds.add(f);
                    index.add(layer);
                    if (!st.isDirectory() || isOpaque(f)) {
                        break;
                    }
                }
                if (exists(d, whiteoutName)) {
                    break;
                }
            }
        } catch (RuntimeException | FsException e) {
            fds.forEach(FileDescriptor::close);
            throw e;
        }
        if (top == null) {
            return null;
        }
        return new Layers(top, index.stream().mapToInt(Integer::intValue).toArray(),
                fds.toArray(new FileDescriptor[0]));
    }

    private static int from(Layers dir) { return dir.inUpper() ? 1 : 0; }

    /** Whether a layer below the upper one has {@code name} in {@code dir} (then removing it needs a whiteout). */
    private boolean inLower(Layers dir, byte[] name) throws FsException {
        try (Layers below = child(dir, from(dir), name)) {
            return below != null;
        }
    }

    /** Where node {@code n}'s path is; ENOENT if it no longer exists. */
    private Layers resolve(Node n) throws FsException {
        if (n.detached) {
            throw new FsException(Errnos.ENOENT, "removed");
        }
        List<byte[]> path = new ArrayList<>();
        for (Node at = n; at != root; at = at.parent) {
            path.add(at.name);
        }
        Layers cur = rootLayers();
        for (int i = path.size() - 1; i >= 0; i--) {
            try (Layers parent = cur) {
                if (!parent.isDir()) {
                    throw new FsException(Errnos.ENOTDIR);
                }
                cur = child(parent, 0, path.get(i));
            }
            if (cur == null) {
                throw new FsException(Errnos.ENOENT, "gone from the layers");
            }
        }
        return cur;
    }

    private Layers resolveDir(Node n) throws FsException {
        Layers l = resolve(n);
        if (!l.isDir()) {
            l.close();
            throw new FsException(Errnos.ENOTDIR);
        }
        return l;
    }

    /**
     * The guest's nodes are bounded as PassthroughFs's inodes are ({@code maxInodes}, ENFILE past it): each holds
     * memory for as long as the guest keeps its lookups.
     */
    private void roomForNode() throws FsException {
        if (nodes.size() > options.maxInodes()) { // the root is not counted
            throw new FsException(Errnos.ENFILE, "node cap of " + options.maxInodes() + " reached");
        }
    }

    /** Open files and directories (host descriptors, listings) are bounded by {@code maxHandles}, EMFILE past it. */
    private void roomForHandle() throws FsException {
        if (handles.size() >= options.maxHandles()) {
            throw new FsException(Errnos.EMFILE, "handle cap of " + options.maxHandles() + " reached");
        }
    }

    /** The node of {@code name} in {@code parent}, with one more lookup. */
    private Node lookedUp(Node parent, byte[] name) {
        NameKey k = new NameKey(parent.id, key(name));
        Node n = byName.get(k);
        if (n == null) {
            n = new Node(nextNode.getAndIncrement(), parent, name);
            parent.children++;
            nodes.put(n.id, n);
            byName.put(k, n);
        }
        n.lookups++;
        return n;
    }

    /** The name {@code name} in {@code parent} no longer leads to the node the guest holds (removed or replaced). */
    private void detach(Node parent, byte[] name) {
        Node n = byName.remove(new NameKey(parent.id, key(name)));
        if (n != null) {
            n.detached = true;
        }
    }

    /** Drops {@code n} once no lookup and no child node holds it, then its parent the same way. */
    private void maybeDrop(Node n) {
        while (n != root && n.lookups == 0 && n.children == 0) {
            nodes.remove(n.id);
            if (!n.detached) {
                byName.remove(new NameKey(n.parent.id, key(n.name)), n);
            }
            Node p = n.parent;
            p.children--;
            n = p;
        }
    }

    private Entry entryOf(Node n, Stat st) { return entry(n.id, attr(n.id, st)); }

    // ---------------------------------------------------------------- copy-up and whiteouts

    /** The upper layer's O_PATH descriptor of {@code n}'s path, copying it and its parents up first. */
    private FileDescriptor upper(Node n) throws FsException {
        if (n == root) {
            return PosixFs.openat(roots[0], bytes("."), O_PATH | O_DIRECTORY, 0);
        }
        try (FileDescriptor up = upper(n.parent); Layers here = resolve(n)) {
            if (!here.inUpper()) {
                copyUp(up, n.name, here.fds[0], here.top);
            }
            return PosixFs.openat(up, n.name, O_PATH | O_NOFOLLOW, 0);
        }
    }

    /** Copies the lower entry {@code src} (described by {@code st}) into the upper directory {@code up}. */
    private void copyUp(FileDescriptor up, byte[] name, FileDescriptor src, Stat st) throws FsException {
        switch (st.type()) {
            case Stat.S_IFDIR -> PosixFs.mkdirat(up, name, 0700);
            case Stat.S_IFREG -> {
                copyFile(up, src, st);
                PosixFs.renameat2(up, COPY_UP_TEMP, up, name, 0);
                return;
            }
            case Stat.S_IFLNK -> PosixFs.symlinkat(PosixFs.readlinkat(src, null), up, name);
            case Stat.S_IFIFO, Stat.S_IFSOCK -> PosixFs.mknodat(up, name, st.type() | 0600, 0);
            default -> {
                if (!options.allowDeviceNodes()) {
                    throw new FsException(Errnos.EPERM, "copy-up of a device node");
                }
                PosixFs.mknodat(up, name, st.type() | 0600, st.rdev());
            }
        }
        try (FileDescriptor made = PosixFs.openat(up, name, O_PATH | O_NOFOLLOW, 0)) {
            int perms = copyPerms(st, keepOwner(made, st));
            if (st.type() == Stat.S_IFLNK) {
                PosixFs.utimensat(up, name, st.atimeSec(), st.atimeNsec(), st.mtimeSec(), st.mtimeNsec(),
                        AT_SYMLINK_NOFOLLOW);
            } else {
                PosixFs.fchmodat(null, procPath(made), perms, 0);
                PosixFs.utimensat(null, procPath(made), st.atimeSec(), st.atimeNsec(), st.mtimeSec(),
                        st.mtimeNsec(), 0);
            }
        }
    }

    /** A regular file's content and attributes into {@link #COPY_UP_TEMP} in {@code up}. */
    private void copyFile(FileDescriptor up, FileDescriptor src, Stat st) {
        if (exists(up, COPY_UP_TEMP)) {
            PosixFs.unlinkat(up, COPY_UP_TEMP, 0); // left by a copy-up that a crash cut short
        }
        try (FileDescriptor in = PosixFs.openat(null, procPath(src), O_RDONLY | O_NONBLOCK, 0);
             FileDescriptor out = PosixFs.openat(up, COPY_UP_TEMP, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, 0600)) {
            byte[] buf = new byte[COPY_CHUNK];
            long off = 0;
            while (true) {
                int n = PosixFs.pread(in, buf, buf.length, off);
                if (n <= 0) {
                    break;
                }
                for (int done = 0; done < n; ) {
                    done += PosixFs.pwrite(out, Arrays.copyOfRange(buf, done, n), n - done, off + done);
                }
                off += n;
            }
            PosixFs.fchmod(out, copyPerms(st, keepOwner(out, st)));
            PosixFs.utimensat(null, procPath(out), st.atimeSec(), st.atimeNsec(), st.mtimeSec(), st.mtimeNsec(), 0);
        }
    }

    /** Gives a copied-up entry its lower owner; a VMM that may not chown leaves its own (false). */
    private static boolean keepOwner(FileDescriptor fd, Stat st) {
        try {
            PosixFs.fchownat(fd, null, st.uid(), st.gid(), AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
            return true;
        } catch (NativeCallException e) {
            if (e.errno() != Errnos.EPERM) {
                throw e;
            }
            return false;
        }
    }

    /**
     * The mode a copy-up gives its copy: the lower entry's, with setuid/setgid dropped as every guest-made mode is
     * (unless allowed), and always when the copy is not the lower owner's (it would run as the VMM's user).
     */
    private int copyPerms(Stat st, boolean ownerKept) {
        int p = perms(st.mode(), st.isDirectory());
        return ownerKept ? p : p & ~06000;
    }

    /** Hides the lower layers' {@code name} in the upper directory {@code up}. */
    private static void whiteout(FileDescriptor up, byte[] name) {
        if (WHITEOUT_PREFIX.length + name.length <= NAME_MAX) {
            createMarker(up, concat(WHITEOUT_PREFIX, name));
        } else {
            PosixFs.mknodat(up, name, Stat.S_IFCHR, 0); // overlayfs's whiteout; unprivileged since Linux 5.8
        }
    }

    /** Removes a whiteout of {@code name} from the upper directory {@code up} (before the name is made again). */
    private static void removeWhiteout(FileDescriptor up, byte[] name) {
        byte[] wh = concat(WHITEOUT_PREFIX, name);
        if (exists(up, wh)) {
            PosixFs.unlinkat(up, wh, 0);
        }
        try {
            if (isWhiteout(PosixFs.fstatat(up, name, AT_SYMLINK_NOFOLLOW))) {
                PosixFs.unlinkat(up, name, 0);
            }
        } catch (NativeCallException e) {
            if (e.errno() != Errnos.ENOENT) {
                throw e;
            }
        }
    }

    private static void markOpaque(FileDescriptor up, byte[] dirName) {
        try (FileDescriptor d = PosixFs.openat(up, dirName, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0)) {
            createMarker(d, OPAQUE_MARKER);
        }
    }

    /**
     * Creates an empty marker file; one already there (under any type) counts as made. O_EXCL and O_NONBLOCK: an
     * existing FIFO or device of that name in an untrusted upper layer is never opened (it would block the
     * namespace lock, or open the device).
     */
    private static void createMarker(FileDescriptor dir, byte[] name) {
        try {
            PosixFs.openat(dir, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_NONBLOCK, 0000).close();
        } catch (NativeCallException e) {
            if (e.errno() != Errnos.EEXIST) {
                throw e;
            }
        }
    }

    /** Empties an upper directory that the merged view shows empty: only whiteouts and markers are left in it. */
    private static void clearMetadata(FileDescriptor up, byte[] dirName) {
        try (FileDescriptor d = PosixFs.openat(up, dirName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0)) {
            for (List<DirEntry> batch = PosixFs.getdents64(d, GETDENTS_BUFFER); !batch.isEmpty();
                 batch = PosixFs.getdents64(d, GETDENTS_BUFFER)) {
                for (DirEntry e : batch) {
                    if (!e.isDotOrDotDot()) {
                        PosixFs.unlinkat(d, e.name(), 0);
                    }
                }
            }
        }
    }

    /** The merged listing of a directory: top-down, deduplicated, whiteouts and metadata hidden. */
    private List<DirItem> list(Node n, Layers dir) {
        Map<String, DirItem> items = new LinkedHashMap<>();
        Set<String> hidden = new HashSet<>();
        for (FileDescriptor layerDir : dir.fds) {
            List<String> whiteouts = new ArrayList<>();
            try (FileDescriptor d = PosixFs.openat(layerDir, bytes("."), O_RDONLY | O_DIRECTORY, 0)) {
                for (List<DirEntry> batch = PosixFs.getdents64(d, GETDENTS_BUFFER); !batch.isEmpty();
                     batch = PosixFs.getdents64(d, GETDENTS_BUFFER)) {
                    for (DirEntry e : batch) {
                        String k = key(e.name());
                        if (e.isDotOrDotDot() || items.containsKey(k) || hidden.contains(k)) {
                            continue;
                        }
                        if (startsWith(e.name(), WHITEOUT_PREFIX)) {
                            whiteouts.add(key(Arrays.copyOfRange(e.name(), WHITEOUT_PREFIX.length, e.name().length)));
                            continue;
                        }
                        if (e.type() == DT_CHR || e.type() == DT_UNKNOWN) {
                            try {
                                if (isWhiteout(PosixFs.fstatat(d, e.name(), AT_SYMLINK_NOFOLLOW))) {
                                    hidden.add(k);
                                    continue;
                                }
                            } catch (NativeCallException gone) {
                                continue;
                            }
                        }
                        if (n == root && virtualIndex(root, e.name()) >= 0) {
                            continue;
                        }
                        Node child = byName.get(new NameKey(n.id, k));
                        items.put(k, new DirItem(child != null ? child.id : e.ino(), e.type(), e.name()));
                    }
                }
            }
            hidden.addAll(whiteouts);
        }
        List<DirItem> out = new ArrayList<>();
        out.add(new DirItem(n.id, DT_DIR, bytes(".")));
        out.add(new DirItem(n.parent != null ? n.parent.id : n.id, DT_DIR, bytes("..")));
        if (n == root) {
            for (int i = 0; i < virtuals.size(); i++) {
                out.add(new DirItem(VIRTUAL_BASE + i, DT_REG, virtualNames.get(i)));
            }
        }
        out.addAll(items.values());
        return out;
    }

    private int perms(int mode, boolean dir) { return HostCalls.perms(mode, dir, options.allowSetuid()); }

    private void dropSetuid(FileDescriptor fd) { HostCalls.dropSetuid(fd, options.allowSetuid()); }

    // ---------------------------------------------------------------- FileSystem

    @Override
    public long init(long kernelFlags) {
        // Creates run as the caller (HostCalls.as) with the group FUSE_CREATE_SUPP_GROUP carries, as on a plain share.
        return switchCredentials ? dev.jkrun.devices.fs.fuse.Fuse.CREATE_SUPP_GROUP : 0;
    }

    @Override
    public long attrTimeoutNanos() { return options.attrTimeoutNanos(); }

    @Override
    public void destroy() {
        // each handle closed by whoever removes it from the table (a RELEASE racing this closes it, or this does)
        for (Long fh : new ArrayList<>(handles.keySet())) {
            Handle h = handles.remove(fh);
            if (h != null) {
                closeHandle(h);
            }
        }
        synchronized (lock) {
            nodes.clear();
            byName.clear();
            nodes.put(ROOT_ID, root);
            root.children = 0;
        }
    }

    @Override
    public void close() {
        destroy();
        for (FileDescriptor fd : roots) {
            fd.close();
        }
    }

    /** Nodes currently held (the root included), for tests and leak checks. */
    public int nodeCount() {
        synchronized (lock) {
            return nodes.size();
        }
    }

    public int handleCount() { return handles.size(); }

    @Override
    public Entry lookup(Context ctx, long parent, byte[] name) throws FsException {
        checkName(name, Errnos.ENOENT);
        synchronized (lock) {
            Node p = node(parent);
            int v = virtualIndex(p, name);
            if (v >= 0) {
                return entry(VIRTUAL_BASE + v, virtualAttr(v));
            }
            return sys(() -> {
                try (Layers dir = resolveDir(p); Layers c = child(dir, 0, name)) {
                    if (c == null) {
                        throw new FsException(Errnos.ENOENT);
                    }
                    if (!byName.containsKey(new NameKey(p.id, key(name)))) {
                        roomForNode();
                    }
                    return entryOf(lookedUp(p, name), c.top);
                }
            });
        }
    }

    @Override
    public void forget(long node, long nlookup) {
        if (node == ROOT_ID || isVirtualId(node)) {
            return;
        }
        synchronized (lock) {
            Node n = nodes.get(node);
            if (n == null) {
                return;
            }
            n.lookups = Long.compareUnsigned(nlookup, n.lookups) >= 0 ? 0 : n.lookups - nlookup;
            maybeDrop(n);
        }
    }

    @Override
    public Attr getattr(long node, long fh) throws FsException {
        if (isVirtualId(node)) {
            return virtualAttr((int) (node - VIRTUAL_BASE));
        }
        synchronized (lock) {
            Node n = node(node);
            return sys(() -> {
                try (Layers l = resolve(n)) {
                    return attr(n.id, l.top);
                }
            });
        }
    }

    @Override
    public Attr setattr(Context ctx, long node, SetAttr s) throws FsException {
        if (isVirtualId(node)) {
            throw new FsException(Errnos.EROFS, "virtual file");
        }
        checkWritable();
        Handle h = s.has(SetAttr.FATTR_FH) ? handles.get(s.fh()) : null;
        synchronized (lock) {
            Node n = node(node);
            return sys(() -> {
                try (FileDescriptor up = upper(n)) {
                    Stat st = PosixFs.fstat(up);
                    byte[] proc = procPath(up);
                    if (s.has(SetAttr.FATTR_MODE)) {
                        if (st.isSymlink()) {
                            throw new FsException(Errnos.EOPNOTSUPP, "chmod of a symlink");
                        }
                        as(ctx, () -> {
                            PosixFs.fchmodat(null, proc, perms(s.mode(), st.isDirectory()), 0);
                            return null;
                        });
                    }
                    if (s.has(SetAttr.FATTR_UID) || s.has(SetAttr.FATTR_GID)) {
                        as(ctx, () -> {
                            PosixFs.fchownat(up, null, s.has(SetAttr.FATTR_UID) ? s.uid() : -1,
                                    s.has(SetAttr.FATTR_GID) ? s.gid() : -1, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
                            return null;
                        });
                    }
                    if (s.has(SetAttr.FATTR_SIZE)) {
                        if (h != null && h.node == node && h.writable && h.fd != null) {
                            synchronized (h) {
                                PosixFs.ftruncate(liveFd(h), s.size());
                            }
                        } else if (st.isDirectory()) {
                            throw new FsException(Errnos.EISDIR);
                        } else if (!st.isRegular()) {
                            throw new FsException(Errnos.EINVAL, "truncate of a special file");
                        } else {
                            as(ctx, () -> {
                                try (FileDescriptor w = PosixFs.openat(null, proc, O_WRONLY | O_NONBLOCK, 0)) {
                                    dropSetuid(w);
                                    PosixFs.ftruncate(w, s.size());
                                }
                                return null;
                            });
                        }
                    }
                    int times = SetAttr.FATTR_ATIME | SetAttr.FATTR_MTIME | SetAttr.FATTR_ATIME_NOW
                            | SetAttr.FATTR_MTIME_NOW;
                    if ((s.valid() & times) != 0) {
                        long aNs = s.has(SetAttr.FATTR_ATIME_NOW) ? UTIME_NOW
                                : s.has(SetAttr.FATTR_ATIME) ? s.atimensec() : UTIME_OMIT;
                        long mNs = s.has(SetAttr.FATTR_MTIME_NOW) ? UTIME_NOW
                                : s.has(SetAttr.FATTR_MTIME) ? s.mtimensec() : UTIME_OMIT;
                        if (st.isSymlink()) {
                            throw new FsException(Errnos.EOPNOTSUPP, "times of a symlink");
                        }
                        as(ctx, () -> {
                            PosixFs.utimensat(null, proc, s.atime(), aNs, s.mtime(), mNs, 0);
                            return null;
                        });
                    }
                    return attr(n.id, PosixFs.fstat(up));
                }
            });
        }
    }

    @Override
    public byte[] readlink(long node) throws FsException {
        synchronized (lock) {
            Node n = node(node);
            return sys(() -> {
                try (Layers l = resolve(n)) {
                    if (!l.top.isSymlink()) {
                        throw new FsException(Errnos.EINVAL, "not a symlink");
                    }
                    return PosixFs.readlinkat(l.fds[0], null);
                }
            });
        }
    }

    /** Makes a name in the upper layer: {@code make} creates it in the upper directory it is given. */
    private interface Maker {
        void make(FileDescriptor upperDir) throws FsException;
    }

    /**
     * The shared part of MKNOD/MKDIR/SYMLINK/CREATE/LINK: EEXIST if the merged view has the name, a whiteout of a
     * lower entry removed first (and restored if making fails), an opaque marker on a directory made over a
     * removed lower one; returns the new node's entry.
     */
    private Entry makeName(Context ctx, long parent, byte[] name, Maker make) throws FsException {
        checkName(name, Errnos.EINVAL);
        checkWritable();
        synchronized (lock) {
            Node p = node(parent);
            if (virtualIndex(p, name) >= 0) {
                throw new FsException(Errnos.EEXIST, "virtual file");
            }
            roomForNode();
            return sys(() -> {
                boolean lower;
                try (Layers dir = resolveDir(p); Layers c = child(dir, 0, name)) {
                    if (c != null) {
                        throw new FsException(Errnos.EEXIST);
                    }
                    lower = inLower(dir, name);
                }
                try (FileDescriptor up = upper(p)) {
                    if (lower) {
                        removeWhiteout(up, name);
                    }
                    try {
                        as(ctx, () -> {
                            make.make(up);
                            return null;
                        });
                    } catch (RuntimeException | FsException e) {
                        if (lower) {
                            whiteout(up, name);
                        }
                        throw e;
                    }
                    Stat st = PosixFs.fstatat(up, name, AT_SYMLINK_NOFOLLOW);
                    if (lower && st.isDirectory()) {
                        markOpaque(up, name);
                    }
                    detach(p, name);
                    return entryOf(lookedUp(p, name), st);
                }
            });
        }
    }

    @Override
    public Entry mknod(Context ctx, long parent, byte[] name, int mode, int rdev, int umask) throws FsException {
        int type = mode & Stat.S_IFMT;
        switch (type) {
            case 0, Stat.S_IFREG, Stat.S_IFIFO, Stat.S_IFSOCK -> { }
            case Stat.S_IFCHR, Stat.S_IFBLK -> {
                if (!options.allowDeviceNodes() || (type == Stat.S_IFCHR && rdev == 0)) {
                    // a 0:0 node made by the guest would read as a whiteout of a lower name
                    throw new FsException(Errnos.EPERM, "device node");
                }
            }
            case Stat.S_IFDIR -> throw new FsException(Errnos.EPERM, "MKNOD of a directory");
            default -> throw new FsException(Errnos.EINVAL, "MKNOD type " + Integer.toOctalString(type));
        }
        int perms = perms(mode, false);
        return makeName(ctx, parent, name, up -> {
            PosixFs.mknodat(up, name, (type == 0 ? Stat.S_IFREG : type) | perms, Integer.toUnsignedLong(rdev));
            // through an O_PATH|O_NOFOLLOW descriptor: chmod by name would follow a symlink put in the node's place
            try (FileDescriptor made = PosixFs.openat(up, name, O_PATH | O_NOFOLLOW, 0)) {
                PosixFs.fchmodat(null, procPath(made), perms, 0);
            }
        });
    }

    @Override
    public Entry mkdir(Context ctx, long parent, byte[] name, int mode, int umask) throws FsException {
        int perms = perms(mode, true);
        return makeName(ctx, parent, name, up -> {
            PosixFs.mkdirat(up, name, perms);
            try (FileDescriptor d = PosixFs.openat(up, name, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0)) {
                PosixFs.fchmodat(null, procPath(d), perms, 0);
            }
        });
    }

    @Override
    public Entry symlink(Context ctx, long parent, byte[] name, byte[] target) throws FsException {
        if (target.length == 0) {
            throw new FsException(Errnos.ENOENT, "empty symlink target");
        }
        return makeName(ctx, parent, name, up -> PosixFs.symlinkat(target, up, name));
    }

    @Override
    public Created create(Context ctx, long parent, byte[] name, int flags, int mode, int umask) throws FsException {
        roomForHandle();
        int perms = perms(mode, false);
        int hostFlags = (flags & (O_ACCMODE | O_APPEND)) | O_CREAT | O_EXCL | O_NOFOLLOW;
        FileDescriptor[] opened = new FileDescriptor[1];
        Entry e;
        try {
            e = makeName(ctx, parent, name, up -> {
                opened[0] = PosixFs.openat(up, name, hostFlags, perms);
                PosixFs.fchmod(opened[0], perms);
            });
        } catch (FsException exists) {
            if (exists.errno() != Errnos.EEXIST || (flags & O_EXCL) != 0) {
                throw exists;
            }
            Entry found = lookup(ctx, parent, name);
            try {
                return new Created(found, open(ctx, found.nodeId(), flags));
            } catch (FsException | RuntimeException failed) {
                forget(found.nodeId(), 1);
                throw failed;
            }
        }
        long fh = nextFh.getAndIncrement();
        handles.put(fh, new Handle(e.nodeId(), opened[0], (flags & O_ACCMODE) != O_RDONLY, null, null));
        return new Created(e, new Opened(fh, 0));
    }

    @Override
    public Entry link(long node, long newParent, byte[] newName) throws FsException {
        if (isVirtualId(node)) {
            throw new FsException(Errnos.EPERM, "virtual file");
        }
        synchronized (lock) {
            Node n = node(node);
            if (n == root) {
                throw new FsException(Errnos.EPERM);
            }
            return makeName(Context.ROOT, newParent, newName, up -> {
                try (FileDescriptor src = upper(n); FileDescriptor srcDir = upper(n.parent)) {
                    if (PosixFs.fstat(src).isDirectory()) {
                        throw new FsException(Errnos.EPERM, "link of a directory");
                    }
                    PosixFs.linkat(srcDir, n.name, up, newName, 0);
                }
            });
        }
    }

    @Override
    public void unlink(long parent, byte[] name) throws FsException { remove(parent, name, false); }

    @Override
    public void rmdir(long parent, byte[] name) throws FsException { remove(parent, name, true); }

    private void remove(long parent, byte[] name, boolean dir) throws FsException {
        checkName(name, Errnos.ENOENT);
        checkWritable();
        synchronized (lock) {
            Node p = node(parent);
            if (virtualIndex(p, name) >= 0) {
                throw new FsException(Errnos.EROFS, "virtual file");
            }
            sys(() -> {
                try (Layers pl = resolveDir(p); Layers c = child(pl, 0, name)) {
                    if (c == null) {
                        throw new FsException(Errnos.ENOENT);
                    }
                    if (dir && !c.isDir()) {
                        throw new FsException(Errnos.ENOTDIR);
                    }
                    if (!dir && c.isDir()) {
                        throw new FsException(Errnos.EISDIR);
                    }
                    if (dir && hasEntries(c)) {
                        throw new FsException(Errnos.ENOTEMPTY);
                    }
                    boolean lower = inLower(pl, name);
                    try (FileDescriptor up = upper(p)) {
                        if (c.inUpper()) {
                            if (dir) {
                                clearMetadata(up, name);
                            }
                            PosixFs.unlinkat(up, name, dir ? AT_REMOVEDIR : 0);
                        }
                        if (lower) {
                            whiteout(up, name);
                        }
                    }
                    detach(p, name);
                }
                return null;
            });
        }
    }

    /** Whether the merged directory {@code dir} lists anything besides "." and "..". */
    private boolean hasEntries(Layers dir) {
        Node probe = new Node(-1, root, new byte[0]); // not the root: no virtual files listed
        return list(probe, dir).size() > 2;
    }

    @Override
    public void rename(long parent, byte[] name, long newParent, byte[] newName, int flags) throws FsException {
        checkName(name, Errnos.ENOENT);
        checkName(newName, Errnos.EINVAL);
        if ((flags & ~RENAME_NOREPLACE) != 0) {
            throw new FsException(Errnos.EINVAL, "rename flags " + flags);
        }
        checkWritable();
        synchronized (lock) {
            Node p = node(parent);
            if (parent == newParent && Arrays.equals(name, newName)) {
                sys(() -> {
                    try (Layers pl = resolveDir(p); Layers same = child(pl, 0, name)) {
                        if (same == null) {
                            throw new FsException(Errnos.ENOENT);
                        }
                        if ((flags & RENAME_NOREPLACE) != 0) {
                            throw new FsException(Errnos.EEXIST);
                        }
                        return null;
                    }
                });
                return; // rename(2) of a name onto itself does nothing
            }
            Node np;
            try {
                np = node(newParent);
            } catch (FsException e) {
                throw new FsException(Errnos.EXDEV, "unknown node " + newParent);
            }
            if (virtualIndex(p, name) >= 0 || virtualIndex(np, newName) >= 0) {
                throw new FsException(Errnos.EROFS, "virtual file");
            }
            sys(() -> {
                try (Layers pl = resolveDir(p); Layers src = child(pl, 0, name);
                     Layers npl = resolveDir(np); Layers dst = child(npl, 0, newName)) {
                    if (src == null) {
                        throw new FsException(Errnos.ENOENT);
                    }
                    if (src.isDir() && !src.upperOnly()) {
                        throw new FsException(Errnos.EXDEV, "directory in a lower layer");
                    }
                    if (src.isDir() && isAncestorOrSelf(p, name, np)) {
                        throw new FsException(Errnos.EINVAL, "directory into itself");
                    }
                    if (dst != null) {
                        if ((flags & RENAME_NOREPLACE) != 0) {
                            throw new FsException(Errnos.EEXIST);
                        }
                        if (dst.isDir() && !src.isDir()) {
                            throw new FsException(Errnos.EISDIR);
                        }
                        if (!dst.isDir() && src.isDir()) {
                            throw new FsException(Errnos.ENOTDIR);
                        }
                        if (dst.isDir() && !dst.upperOnly()) {
                            throw new FsException(Errnos.EXDEV, "target directory in a lower layer");
                        }
                        if (dst.isDir() && hasEntries(dst)) {
                            throw new FsException(Errnos.ENOTEMPTY);
                        }
                    }
                    boolean srcLower = inLower(pl, name);
                    boolean dstLower = inLower(npl, newName);
                    try (FileDescriptor up = upper(p); FileDescriptor nup = upper(np)) {
                        if (!src.inUpper()) {
                            copyUp(up, name, src.fds[0], src.top);
                        }
                        if (dst != null && dst.isDir()) {
                            clearMetadata(nup, newName);
                        }
                        if (dstLower) {
                            removeWhiteout(nup, newName);
                        }
                        PosixFs.renameat2(up, name, nup, newName, 0);
                        if (srcLower) {
                            whiteout(up, name);
                        }
                        if (src.isDir() && dstLower) {
                            markOpaque(nup, newName);
                        }
                    }
                }
                return null;
            });
            detach(np, newName);
            Node moved = byName.remove(new NameKey(p.id, key(name)));
            if (moved != null) {
                moved.parent.children--;
                moved.parent = np;
                moved.name = newName;
                np.children++;
                byName.put(new NameKey(np.id, key(newName)), moved);
            }
        }
    }

    /** Whether {@code target} is the directory {@code name} in {@code parent} or below it. */
    private boolean isAncestorOrSelf(Node parent, byte[] name, Node target) {
        Node dirNode = byName.get(new NameKey(parent.id, key(name)));
        for (Node at = target; at != null && dirNode != null; at = at.parent) {
            if (at == dirNode) {
                return true;
            }
        }
        return false;
    }

    @Override
    public Opened open(Context ctx, long node, int flags) throws FsException {
        roomForHandle();
        boolean writes = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0;
        if (isVirtualId(node)) {
            if (writes) {
                throw new FsException(Errnos.EROFS, "virtual file");
            }
            long fh = nextFh.getAndIncrement();
            handles.put(fh, new Handle(node, null, false, null, virtuals.get((int) (node - VIRTUAL_BASE))));
            return new Opened(fh, 0);
        }
        if (writes) {
            checkWritable();
        }
        int hostFlags = (flags & (O_ACCMODE | O_TRUNC | O_APPEND)) | O_NONBLOCK;
        FileDescriptor fd;
        synchronized (lock) {
            Node n = node(node);
            fd = sys(() -> {
                try (Layers l = resolve(n)) {
                    if (l.top.isSymlink()) {
                        throw new FsException(Errnos.ELOOP, "open of a symlink");
                    }
                    if (l.isDir()) {
                        throw new FsException(Errnos.EISDIR);
                    }
                    if (!l.top.isRegular()) {
                        throw new FsException(Errnos.EACCES, "open of a special file");
                    }
                    if (writes && !l.inUpper()) {
                        checkAccess(ctx, l.fds[0], W_OK); // before the copy-up, which a refused caller must not cause
                    }
                }
                if (!writes) {
                    try (Layers l = resolve(n)) {
                        return as(ctx, () -> PosixFs.openat(null, procPath(l.fds[0]), hostFlags, 0));
                    }
                }
                try (FileDescriptor up = upper(n)) {
                    FileDescriptor w = as(ctx, () -> PosixFs.openat(null, procPath(up), hostFlags, 0));
                    try {
                        dropSetuid(w);
                    } catch (RuntimeException e) {
                        w.close();
                        throw e;
                    }
                    return w;
                }
            });
        }
        long fh = nextFh.getAndIncrement();
        handles.put(fh, new Handle(node, fd, (flags & O_ACCMODE) != O_RDONLY, null, null));
        return new Opened(fh, 0);
    }

    private Handle handle(long fh) throws FsException {
        Handle h = handles.get(fh);
        if (h == null) {
            throw new FsException(Errnos.EBADF, "unknown handle " + fh);
        }
        return h;
    }

    @Override
    public int read(long node, long fh, long offset, ByteBuffer dst) throws FsException {
        Handle h = handle(fh);
        if (offset < 0) {
            throw new FsException(Errnos.EINVAL, "negative offset");
        }
        if (h.listing != null) {
            throw new FsException(Errnos.EISDIR);
        }
        if (h.virtual != null) {
            byte[] c = h.virtual.content();
            int n = (int) Math.max(0, Math.min(dst.remaining(), c.length - Math.min(offset, c.length)));
            dst.put(c, (int) Math.min(offset, c.length), n);
            return n;
        }
        synchronized (h) {
            return HostCalls.readFully(liveFd(h), offset, dst);
        }
    }

    @Override
    public long read(long node, long fh, long offset, ByteBuffer[] dsts) throws FsException {
        Handle h = handle(fh);
        if (offset < 0) {
            throw new FsException(Errnos.EINVAL, "negative offset");
        }
        if (h.listing != null || h.virtual != null) {
            return FileSystem.super.read(node, fh, offset, dsts); // EISDIR or a virtual file, as read(ByteBuffer)
        }
        synchronized (h) {
            return HostCalls.readFully(liveFd(h), offset, dsts);
        }
    }

    private Handle writableHandle(long fh) throws FsException {
        Handle h = handle(fh);
        if (!h.writable || h.fd == null) {
            throw new FsException(Errnos.EBADF, "not open for writing");
        }
        return h;
    }

    @Override
    public int write(long node, long fh, long offset, ByteBuffer src, int writeFlags) throws FsException {
        Handle h = writableHandle(fh);
        synchronized (h) {
            return HostCalls.writeAll(liveFd(h), offset, src);
        }
    }

    @Override
    public long write(long node, long fh, long offset, ByteBuffer[] srcs, int writeFlags) throws FsException {
        Handle h = writableHandle(fh);
        synchronized (h) {
            return HostCalls.writeAll(liveFd(h), offset, srcs);
        }
    }

    @Override
    public void flush(long node, long fh, long lockOwner) throws FsException { handle(fh); }

    @Override
    public void release(long node, long fh) throws FsException {
        Handle h = handles.remove(fh);
        if (h == null) {
            throw new FsException(Errnos.EBADF, "unknown handle " + fh);
        }
        closeHandle(h);
    }

    /**
     * Closes a handle's descriptor; under the handle's monitor, as every use of it is, so a READ or WRITE racing
     * a RELEASE on the other queue never reaches a descriptor number that something else reopened.
     */
    private static void closeHandle(Handle h) {
        synchronized (h) {
            if (h.fd != null) {
                h.fd.close();
            }
        }
    }

    /** The handle's open descriptor (the caller holds the handle's monitor); EBADF once released. */
    private static FileDescriptor liveFd(Handle h) throws FsException {
        if (h.fd == null || !h.fd.isOpen()) {
            throw new FsException(Errnos.EBADF, "released");
        }
        return h.fd;
    }

    @Override
    public void fsync(long node, long fh, boolean datasync) throws FsException {
        Handle h = handle(fh);
        if (h.fd == null) {
            return;
        }
        synchronized (h) {
            FileDescriptor fd = liveFd(h);
            sys(() -> {
                if (datasync) {
                    PosixFs.fdatasync(fd);
                } else {
                    PosixFs.fsync(fd);
                }
                return null;
            });
        }
    }

    @Override
    public Opened opendir(Context ctx, long node, int flags) throws FsException {
        roomForHandle();
        List<DirItem> listing;
        synchronized (lock) {
            Node n = node(node);
            listing = sys(() -> {
                try (Layers l = resolveDir(n)) {
                    as(ctx, () -> {
                        PosixFs.faccessat(null, procPath(l.fds[0]), R_OK, AT_EACCESS);
                        return null;
                    });
                    return list(n, l);
                }
            });
        }
        long fh = nextFh.getAndIncrement();
        handles.put(fh, new Handle(node, null, false, listing, null));
        return new Opened(fh, 0);
    }

    @Override
    public void readdir(long node, long fh, long offset, DirSink sink) throws FsException {
        Handle h = handle(fh);
        if (h.listing == null) {
            throw new FsException(Errnos.ENOTDIR);
        }
        for (long i = Math.max(0, offset); i < h.listing.size(); i++) {
            DirItem d = h.listing.get((int) i);
            if (!sink.fits(d.name().length)) {
                return;
            }
            Entry e = sink.plus()
                    ? new Entry(0, 0, new Attr(d.ino(), 0, 0, 0, 0, 0, 0, 0, 0, d.type() << 12, 0, 0, 0, 0, 0), 0, 0)
                    : null;
            if (!sink.add(d.ino(), i + 1, d.type(), d.name(), e)) {
                return;
            }
        }
    }

    @Override
    public void releasedir(long node, long fh) throws FsException { release(node, fh); }

    @Override
    public void fsyncdir(long node, long fh, boolean datasync) throws FsException { handle(fh); }

    @Override
    public StatFs statfs(long node) throws FsException {
        return HostCalls.statfs(roots[0]);
    }

    @Override
    public void access(Context ctx, long node, int mask) throws FsException {
        if (isVirtualId(node)) {
            VirtualFile v = virtuals.get((int) (node - VIRTUAL_BASE));
            if ((mask & W_OK) != 0) {
                throw new FsException(Errnos.EROFS);
            }
            if ((mask & X_OK) != 0 && (v.permissions() & 0111) == 0) {
                throw new FsException(Errnos.EACCES);
            }
            return;
        }
        if ((mask & W_OK) != 0) {
            checkWritable();
        }
        synchronized (lock) {
            Node n = node(node);
            sys(() -> {
                try (Layers l = resolve(n)) {
                    checkAccess(ctx, l.fds[0], mask);
                    return null;
                }
            });
        }
    }

    /**
     * faccessat(2) as the guest caller; W_OK is dropped on a read-only lower mount, whose writes go to the upper
     * copy.
     */
    private void checkAccess(Context ctx, FileDescriptor fd, int mask) throws FsException {
        as(ctx, () -> {
            try {
                PosixFs.faccessat(null, procPath(fd), mask, AT_EACCESS);
            } catch (NativeCallException e) {
                if (e.errno() != Errnos.EROFS) {
                    throw e;
                }
                PosixFs.faccessat(null, procPath(fd), mask & ~W_OK, AT_EACCESS);
            }
            return null;
        });
    }

    @Override
    public int getxattr(long node, byte[] name, ByteBuffer dst) throws FsException {
        throw new FsException(Errnos.ENODATA);
    }

    @Override
    public int listxattr(long node, ByteBuffer dst) { return 0; }

    @Override
    public void setxattr(long node, byte[] name, byte[] value, int flags) throws FsException {
        throw new FsException(Errnos.EOPNOTSUPP, "overlay xattrs");
    }

    @Override
    public void removexattr(long node, byte[] name) throws FsException {
        throw new FsException(Errnos.EOPNOTSUPP, "overlay xattrs");
    }

    @Override
    public void fallocate(long node, long fh, int mode, long offset, long length) throws FsException {
        Handle h = writableHandle(fh);
        synchronized (h) {
            FileDescriptor fd = liveFd(h);
            sys(() -> {
                PosixFs.fallocate(fd, mode, offset, length);
                return null;
            });
        }
    }

    @Override
    public long lseek(long node, long fh, long offset, int whence) throws FsException {
        Handle h = handle(fh);
        if (h.fd == null) {
            throw new FsException(Errnos.EINVAL, "lseek on a virtual file or directory");
        }
        synchronized (h) {
            FileDescriptor fd = liveFd(h);
            return sys(() -> PosixFs.lseek(fd, offset, whence));
        }
    }

    @Override
    public IoctlResult ioctl(long node, long fh, int flags, int cmd, long arg, ByteBuffer in, int outSize)
            throws FsException {
        return HostCalls.exitCodeIoctl(node, cmd, arg, options.exitCodeListener());
    }

    @Override
    public String toString() {
        return "OverlayFs[" + roots.length + " layers" + (options.readOnly() ? ", ro" : "") + "]";
    }
}
