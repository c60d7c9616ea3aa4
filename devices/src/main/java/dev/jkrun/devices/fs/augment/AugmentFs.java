package dev.jkrun.devices.fs.augment;

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
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.IntConsumer;

/**
 * Virtual files and directories ({@link VirtualEntry}) served on top of another filesystem, as libkrun's AugmentFs:
 * a virtual name hides the inner one of the same name, everything else goes to the inner filesystem. Virtual entries
 * are read-only: writing opens fail EACCES, changes EPERM, and names under or equal to a virtual entry cannot be
 * created, removed or renamed (EEXIST / EROFS), so the guest can neither change one nor reach the hidden inner file
 * through it. Unlike libkrun's, the root's listing and virtual directories' listings include the virtual entries.
 *
 * <p>Virtual node ids are {@link #NODE_BASE} and up; an inner filesystem that hands out such an id is answered EIO.
 * The root listing carries the inner filesystem's cookies first (non-negative, like every Linux directory offset),
 * then the virtual entries with cookies {@code Long.MIN_VALUE + i + 1}.
 */
public final class AugmentFs implements FileSystem, AutoCloseable {
    /** The first virtual node id, below PassthroughFs's own virtual files (0xFFFF_FFFF_0000_0000). */
    public static final long NODE_BASE = 0xFFFF_FFFE_0000_0000L;
    private static final long NODE_END = 0xFFFF_FFFF_0000_0000L;
    private static final long ROOT_VIRTUAL_COOKIE = Long.MIN_VALUE;
    private static final int S_IFREG = 0100000, S_IFDIR = 0040000, DT_REG = 8, DT_DIR = 4;
    private static final int O_ACCMODE = 3, O_RDONLY = 0, O_TRUNC = 01000, W_OK = 2, X_OK = 1;
    private static final long VIRTUAL_FH = 0;
    private static final long FOREVER_NANOS = Long.MAX_VALUE;

    private final FileSystem inner;
    private final IntConsumer exitStatus;
    private final long createdSec = System.currentTimeMillis() / 1000;
    /** Virtual nodes by id; index = id - NODE_BASE. */
    private final List<Node> nodes = new ArrayList<>();
    /** The root's virtual children (by name); one-shot names leave on their first lookup. */
    private final Map<String, Node> rootChildren = Collections.synchronizedMap(new LinkedHashMap<>());

    private static final class Node {
        final long id;
        final byte[] name;
        final VirtualEntry entry;
        final Map<String, Node> children; // directories only
        volatile boolean gone; // a one-shot file already looked up

        Node(long id, byte[] name, VirtualEntry entry) {
            this.id = id;
            this.name = name;
            this.entry = entry;
            this.children = entry.isDir() ? Collections.synchronizedMap(new LinkedHashMap<>()) : null;
        }
    }

    /**
     * {@code entries} in the order they were added (each parent before its children, see {@link VirtualEntry#problem}).
     * {@code exitStatus}, when not null, takes init's exit-status ioctl on the root (for an inner filesystem that does
     * not, such as {@code NullFs}).
     */
    public AugmentFs(FileSystem inner, List<VirtualEntry> entries, IntConsumer exitStatus) {
        this.inner = inner;
        this.exitStatus = exitStatus;
        List<VirtualEntry> accepted = new ArrayList<>();
        for (VirtualEntry e : entries) {
            VirtualEntry.Problem p = VirtualEntry.problem(accepted, e);
            if (p != null) {
                throw new IllegalArgumentException(p.reason());
            }
            accepted.add(e);
            List<String> parts = e.components();
            Map<String, Node> siblings = rootChildren;
            for (String dir : parts.subList(0, parts.size() - 1)) {
                siblings = siblings.get(key(dir.getBytes(StandardCharsets.UTF_8))).children;
            }
            byte[] name = parts.get(parts.size() - 1).getBytes(StandardCharsets.UTF_8);
            Node n = new Node(NODE_BASE + nodes.size(), name, e);
            nodes.add(n);
            siblings.put(key(name), n);
        }
        if (NODE_BASE + nodes.size() > NODE_END) {
            throw new IllegalArgumentException("too many virtual entries");
        }
    }

    private static String key(byte[] name) { return new String(name, StandardCharsets.ISO_8859_1); }

    /** The virtual node {@code id}, or null for the inner filesystem's. */
    private Node node(long id) {
        long i = id - NODE_BASE; // ids are u64: any id outside the range wraps to a huge index
        return Long.compareUnsigned(i, nodes.size()) < 0 ? nodes.get((int) i) : null;
    }

    private static boolean reserved(long id) { return Long.compareUnsigned(id - NODE_BASE, NODE_END - NODE_BASE) < 0; }

    /**
     * The virtual child {@code name} of {@code parent} (the root or a virtual directory), or null. A one-shot file
     * already looked up stays here as a tombstone: it no longer resolves (LOOKUP answers ENOENT) but still hides the
     * inner name and refuses changes to it, so the hidden host file never becomes reachable.
     */
    private Node child(long parent, byte[] name) {
        Map<String, Node> children = parent == ROOT_ID ? rootChildren : null;
        Node p = node(parent);
        if (p != null) {
            children = p.children;
        }
        if (children == null) {
            return null;
        }
        return children.get(key(name));
    }

    private Attr attr(Node n) {
        boolean dir = n.entry.isDir();
        long size = dir ? 0 : n.entry.content().length;
        return new Attr(n.id, size, (size + 511) / 512, createdSec, 0, createdSec, 0, createdSec, 0,
                (dir ? S_IFDIR : S_IFREG) | n.entry.mode(), dir ? 2 : 1, 0, 0, 0, 4096);
    }

    /** A one-shot file is never cached by the guest, so its second lookup comes here and finds nothing. */
    private Entry entry(Node n) {
        long timeout = n.entry.oneShot() ? 0 : FOREVER_NANOS;
        return new Entry(n.id, 0, attr(n), timeout, timeout);
    }

    /** An entry from the inner filesystem, refused when its node id is one of ours. */
    private Entry fromInner(Entry e) throws FsException {
        if (e != null && reserved(e.nodeId())) {
            inner.forget(e.nodeId(), 1);
            throw new FsException(Errnos.EIO, "the inner filesystem used a reserved node id");
        }
        return e;
    }

    /** Changes inside a virtual directory, or to a virtual name, are refused. */
    private void changeable(long parent, byte[] name, int errnoIfVirtual) throws FsException {
        if (node(parent) != null) {
            throw new FsException(Errnos.EROFS, "virtual directory");
        }
        if (child(parent, name) != null) {
            throw new FsException(errnoIfVirtual, "virtual entry");
        }
    }

    private static FsException eperm() { return new FsException(Errnos.EPERM, "virtual entry"); }

    @Override
    public long init(long kernelFlags) throws FsException { return inner.init(kernelFlags); }

    @Override
    public long attrTimeoutNanos() { return inner.attrTimeoutNanos(); }

    @Override
    public void destroy() { inner.destroy(); }

    @Override
    public Entry lookup(Context ctx, long parent, byte[] name) throws FsException {
        Node n = child(parent, name);
        if (n != null) {
            if (n.entry.oneShot()) {
                synchronized (n) {
                    if (n.gone) {
                        throw new FsException(Errnos.ENOENT);
                    }
                    n.gone = true;
                }
            }
            return entry(n);
        }
        if (node(parent) != null) {
            throw new FsException(Errnos.ENOENT);
        }
        return fromInner(inner.lookup(ctx, parent, name));
    }

    @Override
    public void forget(long node, long nlookup) {
        if (node(node) == null && !reserved(node)) {
            inner.forget(node, nlookup);
        }
    }

    @Override
    public Attr getattr(long node, long fh) throws FsException {
        Node n = node(node);
        return n != null ? attr(n) : inner.getattr(node, fh);
    }

    @Override
    public Attr setattr(Context ctx, long node, SetAttr attr) throws FsException {
        if (node(node) != null) {
            throw eperm();
        }
        return inner.setattr(ctx, node, attr);
    }

    @Override
    public byte[] readlink(long node) throws FsException {
        if (node(node) != null) {
            throw new FsException(Errnos.EINVAL, "not a symlink");
        }
        return inner.readlink(node);
    }

    @Override
    public Entry symlink(Context ctx, long parent, byte[] name, byte[] target) throws FsException {
        changeable(parent, name, Errnos.EEXIST);
        return fromInner(inner.symlink(ctx, parent, name, target));
    }

    @Override
    public Entry mknod(Context ctx, long parent, byte[] name, int mode, int rdev, int umask) throws FsException {
        changeable(parent, name, Errnos.EEXIST);
        return fromInner(inner.mknod(ctx, parent, name, mode, rdev, umask));
    }

    @Override
    public Entry mkdir(Context ctx, long parent, byte[] name, int mode, int umask) throws FsException {
        changeable(parent, name, Errnos.EEXIST);
        return fromInner(inner.mkdir(ctx, parent, name, mode, umask));
    }

    @Override
    public void unlink(long parent, byte[] name) throws FsException {
        changeable(parent, name, Errnos.EROFS);
        inner.unlink(parent, name);
    }

    @Override
    public void rmdir(long parent, byte[] name) throws FsException {
        changeable(parent, name, Errnos.EROFS);
        inner.rmdir(parent, name);
    }

    @Override
    public void rename(long parent, byte[] name, long newParent, byte[] newName, int flags) throws FsException {
        changeable(parent, name, Errnos.EROFS);
        changeable(newParent, newName, Errnos.EROFS);
        inner.rename(parent, name, newParent, newName, flags);
    }

    @Override
    public Entry link(long node, long newParent, byte[] newName) throws FsException {
        if (node(node) != null) {
            throw eperm();
        }
        changeable(newParent, newName, Errnos.EEXIST);
        return fromInner(inner.link(node, newParent, newName));
    }

    @Override
    public Opened open(Context ctx, long node, int flags) throws FsException {
        Node n = node(node);
        if (n == null) {
            return inner.open(ctx, node, flags);
        }
        if (n.entry.isDir()) {
            throw new FsException(Errnos.EISDIR);
        }
        if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0) {
            throw new FsException(Errnos.EACCES, "virtual files are read-only");
        }
        return new Opened(VIRTUAL_FH, Opened.FOPEN_KEEP_CACHE); // the content never changes
    }

    @Override
    public Created create(Context ctx, long parent, byte[] name, int flags, int mode, int umask) throws FsException {
        changeable(parent, name, Errnos.EEXIST);
        Created c = inner.create(ctx, parent, name, flags, mode, umask);
        if (c != null && reserved(c.entry().nodeId())) {
            inner.release(c.entry().nodeId(), c.opened().fh());
            fromInner(c.entry());
        }
        return c;
    }

    @Override
    public int read(long node, long fh, long offset, ByteBuffer dst) throws FsException {
        Node n = node(node);
        if (n == null) {
            return inner.read(node, fh, offset, dst);
        }
        if (n.entry.isDir()) {
            throw new FsException(Errnos.EISDIR);
        }
        byte[] data = n.entry.content();
        if (offset < 0 || offset >= data.length) { // offsets are u64: "negative" is past any end
            return 0;
        }
        int len = (int) Math.min(dst.remaining(), data.length - offset);
        dst.put(data, (int) offset, len);
        return len;
    }

    @Override
    public int write(long node, long fh, long offset, ByteBuffer src, int writeFlags) throws FsException {
        if (node(node) != null) {
            throw eperm();
        }
        return inner.write(node, fh, offset, src, writeFlags);
    }

    @Override
    public long read(long node, long fh, long offset, ByteBuffer[] dsts) throws FsException {
        return node(node) == null ? inner.read(node, fh, offset, dsts) : FileSystem.super.read(node, fh, offset, dsts);
    }

    @Override
    public long write(long node, long fh, long offset, ByteBuffer[] srcs, int writeFlags) throws FsException {
        if (node(node) != null) {
            throw eperm();
        }
        return inner.write(node, fh, offset, srcs, writeFlags);
    }

    @Override
    public void flush(long node, long fh, long lockOwner) throws FsException {
        if (node(node) == null) {
            inner.flush(node, fh, lockOwner);
        }
    }

    @Override
    public void release(long node, long fh) throws FsException {
        if (node(node) == null) {
            inner.release(node, fh);
        }
    }

    @Override
    public void fsync(long node, long fh, boolean datasync) throws FsException {
        if (node(node) == null) {
            inner.fsync(node, fh, datasync);
        }
    }

    @Override
    public Opened opendir(Context ctx, long node, int flags) throws FsException {
        Node n = node(node);
        if (n == null) {
            return inner.opendir(ctx, node, flags);
        }
        if (!n.entry.isDir()) {
            throw new FsException(Errnos.ENOTDIR);
        }
        return new Opened(VIRTUAL_FH, 0);
    }

    @Override
    public void readdir(long node, long fh, long offset, DirSink sink) throws FsException {
        Node n = node(node);
        if (n != null) {
            if (!n.entry.isDir()) {
                throw new FsException(Errnos.ENOTDIR);
            }
            listVirtual(n.id, n.children, offset, 0, sink, true);
            return;
        }
        if (node != ROOT_ID || rootChildren.isEmpty()) {
            inner.readdir(node, fh, offset, sink);
            return;
        }
        if (offset >= 0) {
            Hiding hiding = new Hiding(sink);
            inner.readdir(node, fh, offset, hiding);
            if (hiding.forwarded || hiding.full) {
                return; // the guest asks again after the last cookie; the virtual entries follow the inner end
            }
            offset = ROOT_VIRTUAL_COOKIE;
        }
        listVirtual(ROOT_ID, rootChildren, offset, ROOT_VIRTUAL_COOKIE, sink, false);
    }

    /**
     * Lists {@code children} after cookie {@code offset}; cookies are {@code base + index + 1}. With {@code dots} the
     * listing starts with "." and "..", as a virtual directory's own listing must.
     */
    private void listVirtual(long self, Map<String, Node> children, long offset, long base, DirSink sink, boolean dots) {
        List<Node> all; // positions in the list of every entry, used-up one-shots included: cookies stay stable
        synchronized (children) {
            all = List.copyOf(children.values());
        }
        int extra = dots ? 2 : 0;
        long start = offset - base; // the index to list from (dots count as the first two)
        if (Long.compareUnsigned(start, (long) all.size() + extra) >= 0) {
            return;
        }
        for (long i = start; i < all.size() + extra; i++) {
            byte[] name;
            long ino;
            int type;
            Entry e = null;
            if (i < extra) {
                name = (i == 0 ? "." : "..").getBytes(StandardCharsets.US_ASCII);
                ino = self;
                type = DT_DIR;
                if (sink.plus()) {
                    e = new Entry(0, 0, new Attr(self, 0, 0, 0, 0, 0, 0, 0, 0, S_IFDIR, 2, 0, 0, 0, 4096), 0, 0);
                }
            } else {
                Node c = all.get((int) (i - extra));
                if (c.gone) {
                    continue;
                }
                name = c.name;
                ino = c.id;
                type = c.entry.isDir() ? DT_DIR : DT_REG;
                if (sink.plus()) {
                    // a one-shot file is not handed out here: its one lookup is the guest's own
                    e = c.entry.oneShot() ? new Entry(0, 0, attr(c), 0, 0) : entry(c);
                }
            }
            if (!sink.fits(name.length) || !sink.add(ino, base + i + 1, type, name, e)) {
                return;
            }
        }
    }

    /** Passes the inner root listing on without the names a virtual entry hides; notes whether it is over. */
    private final class Hiding implements DirSink {
        private final DirSink sink;
        boolean forwarded, full;

        Hiding(DirSink sink) { this.sink = sink; }

        @Override
        public boolean fits(int nameLength) {
            boolean fits = sink.fits(nameLength);
            full |= !fits;
            return fits;
        }

        @Override
        public boolean plus() { return sink.plus(); }

        @Override
        public boolean add(long ino, long nextOffset, int type, byte[] name, Entry entry) {
            if (child(ROOT_ID, name) != null) {
                if (entry != null && entry.nodeId() != 0) {
                    inner.forget(entry.nodeId(), 1); // the lookup this entry counted
                }
                return true;
            }
            if (entry != null && reserved(entry.nodeId())) {
                inner.forget(entry.nodeId(), 1);
                entry = new Entry(0, 0, entry.attr(), 0, 0);
            }
            boolean added = sink.add(ino, nextOffset, type, name, entry);
            full |= !added;
            forwarded |= added;
            return added;
        }
    }

    @Override
    public void releasedir(long node, long fh) throws FsException {
        if (node(node) == null) {
            inner.releasedir(node, fh);
        }
    }

    @Override
    public void fsyncdir(long node, long fh, boolean datasync) throws FsException {
        if (node(node) == null) {
            inner.fsyncdir(node, fh, datasync);
        }
    }

    @Override
    public StatFs statfs(long node) throws FsException {
        return inner.statfs(node(node) != null ? ROOT_ID : node);
    }

    @Override
    public void access(Context ctx, long node, int mask) throws FsException {
        Node n = node(node);
        if (n == null) {
            inner.access(ctx, node, mask);
            return;
        }
        if ((mask & W_OK) != 0) {
            throw new FsException(Errnos.EACCES, "virtual entries are read-only");
        }
        if ((mask & X_OK) != 0 && !n.entry.isDir() && (n.entry.mode() & 0111) == 0) {
            throw new FsException(Errnos.EACCES);
        }
    }

    @Override
    public int getxattr(long node, byte[] name, ByteBuffer dst) throws FsException {
        if (node(node) != null) {
            throw new FsException(Errnos.ENODATA);
        }
        return inner.getxattr(node, name, dst);
    }

    @Override
    public int listxattr(long node, ByteBuffer dst) throws FsException {
        return node(node) != null ? 0 : inner.listxattr(node, dst);
    }

    @Override
    public void setxattr(long node, byte[] name, byte[] value, int flags) throws FsException {
        if (node(node) != null) {
            throw eperm();
        }
        inner.setxattr(node, name, value, flags);
    }

    @Override
    public void removexattr(long node, byte[] name) throws FsException {
        if (node(node) != null) {
            throw eperm();
        }
        inner.removexattr(node, name);
    }

    @Override
    public void fallocate(long node, long fh, int mode, long offset, long length) throws FsException {
        if (node(node) != null) {
            throw eperm();
        }
        inner.fallocate(node, fh, mode, offset, length);
    }

    @Override
    public long lseek(long node, long fh, long offset, int whence) throws FsException {
        Node n = node(node);
        if (n == null) {
            return inner.lseek(node, fh, offset, whence);
        }
        if (n.entry.isDir()) {
            throw new FsException(Errnos.EISDIR);
        }
        long size = n.entry.content().length;
        boolean inside = offset >= 0 && offset < size;
        return switch (whence) {
            case 3 -> { // SEEK_DATA: all of it is data
                if (!inside) throw new FsException(Errnos.ENXIO);
                yield offset;
            }
            case 4 -> { // SEEK_HOLE: the implicit hole at the end
                if (!inside) throw new FsException(Errnos.ENXIO);
                yield size;
            }
            default -> throw new FsException(Errnos.EINVAL, "whence " + whence);
        };
    }

    @Override
    public long copyFileRange(long nodeIn, long fhIn, long offIn, long nodeOut, long fhOut, long offOut, long len,
                              int flags) throws FsException {
        if (node(nodeIn) != null || node(nodeOut) != null) {
            throw new FsException(Errnos.EXDEV, "virtual file"); // the guest kernel falls back to read + write
        }
        return inner.copyFileRange(nodeIn, fhIn, offIn, nodeOut, fhOut, offOut, len, flags);
    }

    @Override
    public boolean supportsMapping() { return inner.supportsMapping(); }

    @Override
    public MapSource mapSource(Context ctx, long node, boolean writable) throws FsException {
        Node n = node(node);
        if (n == null) {
            return inner.mapSource(ctx, node, writable);
        }
        if (n.entry.isDir()) {
            throw new FsException(Errnos.EISDIR);
        }
        if (writable) {
            throw new FsException(Errnos.EACCES, "virtual files are read-only");
        }
        return new MapSource.Bytes(n.entry.content());
    }

    @Override
    public IoctlResult ioctl(long node, long fh, int flags, int cmd, long arg, ByteBuffer in, int outSize)
            throws FsException {
        if (node(node) != null) {
            throw new FsException(Errnos.ENOTTY);
        }
        if (exitStatus != null && node == ROOT_ID && cmd == IOCTL_EXIT_CODE) {
            return HostCalls.exitCodeIoctl(node, cmd, arg, exitStatus);
        }
        return inner.ioctl(node, fh, flags, cmd, arg, in, outSize);
    }

    @Override
    public void close() throws Exception {
        if (inner instanceof AutoCloseable c) {
            c.close();
        }
    }
}
