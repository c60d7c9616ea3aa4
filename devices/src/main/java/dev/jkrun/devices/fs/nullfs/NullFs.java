package dev.jkrun.devices.fs.nullfs;

import dev.jkrun.devices.fs.Attr;
import dev.jkrun.devices.fs.Context;
import dev.jkrun.devices.fs.DirSink;
import dev.jkrun.devices.fs.Entry;
import dev.jkrun.devices.fs.Errnos;
import dev.jkrun.devices.fs.FileSystem;
import dev.jkrun.devices.fs.FsException;
import dev.jkrun.devices.fs.Opened;
import dev.jkrun.devices.fs.SetAttr;
import dev.jkrun.devices.fs.StatFs;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * A share without a host directory (libkrun's NullFs, what krun_add_virtiofs3 makes from a NULL path): one empty
 * root directory, nothing on the host behind it. Every change fails EROFS; there is nothing else to reach.
 */
public final class NullFs implements FileSystem {
    private static final int S_IFDIR = 0040000, DT_DIR = 4;
    private static final long ROOT_FH = 1;
    private final long createdSec = System.currentTimeMillis() / 1000;

    private Attr rootAttr() {
        return new Attr(ROOT_ID, 0, 0, createdSec, 0, createdSec, 0, createdSec, 0, S_IFDIR | 0555, 2, 0, 0, 0, 4096);
    }

    private static void root(long node) throws FsException {
        if (node != ROOT_ID) {
            throw new FsException(Errnos.ENOENT, "unknown node " + node);
        }
    }

    private static FsException readOnly() { return new FsException(Errnos.EROFS, "no host directory"); }

    @Override
    public Entry lookup(Context ctx, long parent, byte[] name) throws FsException {
        root(parent);
        throw new FsException(Errnos.ENOENT);
    }

    @Override
    public Attr getattr(long node, long fh) throws FsException {
        root(node);
        return rootAttr();
    }

    @Override
    public Attr setattr(Context ctx, long node, SetAttr attr) throws FsException { throw readOnly(); }

    @Override
    public Entry symlink(Context ctx, long parent, byte[] name, byte[] target) throws FsException { throw readOnly(); }

    @Override
    public Entry mknod(Context ctx, long parent, byte[] name, int mode, int rdev, int umask) throws FsException {
        throw readOnly();
    }

    @Override
    public Entry mkdir(Context ctx, long parent, byte[] name, int mode, int umask) throws FsException {
        throw readOnly();
    }

    @Override
    public void unlink(long parent, byte[] name) throws FsException { throw readOnly(); }

    @Override
    public void rmdir(long parent, byte[] name) throws FsException { throw readOnly(); }

    @Override
    public void rename(long parent, byte[] name, long newParent, byte[] newName, int flags) throws FsException {
        throw readOnly();
    }

    @Override
    public Entry link(long node, long newParent, byte[] newName) throws FsException { throw readOnly(); }

    @Override
    public Created create(Context ctx, long parent, byte[] name, int flags, int mode, int umask) throws FsException {
        throw readOnly();
    }

    @Override
    public Opened open(Context ctx, long node, int flags) throws FsException {
        root(node);
        throw new FsException(Errnos.EISDIR);
    }

    @Override
    public Opened opendir(Context ctx, long node, int flags) throws FsException {
        root(node);
        return new Opened(ROOT_FH, 0);
    }

    @Override
    public void readdir(long node, long fh, long offset, DirSink sink) throws FsException {
        root(node);
        byte[][] names = {".".getBytes(StandardCharsets.US_ASCII), "..".getBytes(StandardCharsets.US_ASCII)};
        for (long i = Math.max(0, offset); i < names.length; i++) {
            byte[] n = names[(int) i];
            Entry e = sink.plus() ? new Entry(0, 0, rootAttr(), 0, 0) : null;
            if (!sink.fits(n.length) || !sink.add(ROOT_ID, i + 1, DT_DIR, n, e)) {
                return;
            }
        }
    }

    @Override
    public void fsyncdir(long node, long fh, boolean datasync) {}

    @Override
    public StatFs statfs(long node) { return new StatFs(0, 0, 0, 1, 0, 4096, 255, 4096); }

    @Override
    public void access(Context ctx, long node, int mask) throws FsException {
        root(node);
        if ((mask & 2) != 0) { // W_OK
            throw readOnly();
        }
    }

    @Override
    public int getxattr(long node, byte[] name, ByteBuffer dst) throws FsException {
        root(node);
        throw new FsException(Errnos.ENODATA);
    }

    @Override
    public int listxattr(long node, ByteBuffer dst) throws FsException {
        root(node);
        return 0;
    }
}
