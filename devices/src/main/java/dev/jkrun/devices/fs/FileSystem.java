package dev.jkrun.devices.fs;

import java.nio.ByteBuffer;

/**
 * A file-system backend the FUSE server ({@link dev.jkrun.devices.fs.fuse.FuseServer}) serves to the guest.
 * Node ids and handles are the backend's; {@link #ROOT_ID} is the root. Names are raw bytes (no NUL, no '/').
 * Every method reports failure as {@link FsException} with a Linux errno; anything else thrown becomes EIO.
 * Methods not overridden answer ENOSYS. Implementations must be thread-safe if the device runs several workers.
 */
public interface FileSystem {
    long ROOT_ID = 1;
    /**
     * The {@code 0x7602} = {@code _IO('v', 2)} ioctl on the root by which libkrun's (and jkrun's) init reports the
     * exit status (arg = code); it changes no file, so read-only shares serve it too.
     */
    int IOCTL_EXIT_CODE = 0x7602;

    /** FUSE_INIT: {@code kernelFlags} are the guest's capabilities; returns FUSE_* flags the backend wants on. */
    default long init(long kernelFlags) throws FsException { return 0; }

    /** How long the guest may cache attributes returned by GETATTR/SETATTR, in nanoseconds. */
    default long attrTimeoutNanos() { return 1_000_000_000L; }

    /** FUSE_DESTROY: drop every inode and handle except the root. */
    default void destroy() {}

    default Entry lookup(Context ctx, long parent, byte[] name) throws FsException { throw nosys(); }

    /** Releases {@code nlookup} lookups of {@code node}; never fails. */
    default void forget(long node, long nlookup) {}

    /** {@code fh} is -1 unless the guest passed one. */
    default Attr getattr(long node, long fh) throws FsException { throw nosys(); }

    default Attr setattr(Context ctx, long node, SetAttr attr) throws FsException { throw nosys(); }

    default byte[] readlink(long node) throws FsException { throw nosys(); }

    default Entry symlink(Context ctx, long parent, byte[] name, byte[] target) throws FsException { throw nosys(); }

    default Entry mknod(Context ctx, long parent, byte[] name, int mode, int rdev, int umask) throws FsException {
        throw nosys();
    }

    default Entry mkdir(Context ctx, long parent, byte[] name, int mode, int umask) throws FsException { throw nosys(); }

    default void unlink(long parent, byte[] name) throws FsException { throw nosys(); }

    default void rmdir(long parent, byte[] name) throws FsException { throw nosys(); }

    /** RENAME ({@code flags} 0) and RENAME2 (RENAME_NOREPLACE / EXCHANGE / WHITEOUT). */
    default void rename(long parent, byte[] name, long newParent, byte[] newName, int flags) throws FsException {
        throw nosys();
    }

    default Entry link(long node, long newParent, byte[] newName) throws FsException { throw nosys(); }

    /** {@code flags} are the guest's open(2) flags. */
    default Opened open(Context ctx, long node, int flags) throws FsException { throw nosys(); }

    /** A created-and-opened file. */
    record Created(Entry entry, Opened opened) {}

    default Created create(Context ctx, long parent, byte[] name, int flags, int mode, int umask) throws FsException {
        throw nosys();
    }

    /** Reads up to {@code dst.remaining()} bytes at {@code offset} into {@code dst}; fewer only at end of file. */
    default int read(long node, long fh, long offset, ByteBuffer dst) throws FsException { throw nosys(); }

    /** Writes all of {@code src} at {@code offset}; returns the bytes written. */
    default int write(long node, long fh, long offset, ByteBuffer src, int writeFlags) throws FsException {
        throw nosys();
    }

    /**
     * {@link #read(long, long, long, ByteBuffer)} into several buffers in turn (a guest's pages), each filled before
     * the next; fewer bytes only at end of file. Backends on host files override it with one scatter read.
     */
    default long read(long node, long fh, long offset, ByteBuffer[] dsts) throws FsException {
        long total = 0;
        for (ByteBuffer d : dsts) {
            int want = d.remaining();
            int n = read(node, fh, offset + total, d);
            total += n;
            if (n < want) {
                break;
            }
        }
        return total;
    }

    /** {@link #write(long, long, long, ByteBuffer, int)} of several buffers in turn; returns the bytes written. */
    default long write(long node, long fh, long offset, ByteBuffer[] srcs, int writeFlags) throws FsException {
        long total = 0;
        for (ByteBuffer s : srcs) {
            int want = s.remaining();
            int n = write(node, fh, offset + total, s, writeFlags);
            total += n;
            if (n < want) { // the next buffer's bytes belong after these: stop at the first short write
                break;
            }
        }
        return total;
    }

    default void flush(long node, long fh, long lockOwner) throws FsException {}

    default void release(long node, long fh) throws FsException {}

    default void fsync(long node, long fh, boolean datasync) throws FsException { throw nosys(); }

    default Opened opendir(Context ctx, long node, int flags) throws FsException { throw nosys(); }

    /** Lists entries after cookie {@code offset} (0 = from the start) into {@code sink} until it is full. */
    default void readdir(long node, long fh, long offset, DirSink sink) throws FsException { throw nosys(); }

    default void releasedir(long node, long fh) throws FsException {}

    default void fsyncdir(long node, long fh, boolean datasync) throws FsException { throw nosys(); }

    default StatFs statfs(long node) throws FsException { throw nosys(); }

    default void access(Context ctx, long node, int mask) throws FsException { throw nosys(); }

    /**
     * Copies the value into {@code dst} and returns its length; with {@code dst.remaining() == 0} (the size probe)
     * only returns the length. A value longer than a non-zero {@code dst.remaining()} fails ERANGE.
     */
    default int getxattr(long node, byte[] name, ByteBuffer dst) throws FsException { throw nosys(); }

    /** Like {@link #getxattr}, for the NUL-separated name list. */
    default int listxattr(long node, ByteBuffer dst) throws FsException { throw nosys(); }

    default void setxattr(long node, byte[] name, byte[] value, int flags) throws FsException { throw nosys(); }

    default void removexattr(long node, byte[] name) throws FsException { throw nosys(); }

    default void fallocate(long node, long fh, int mode, long offset, long length) throws FsException { throw nosys(); }

    default long lseek(long node, long fh, long offset, int whence) throws FsException { throw nosys(); }

    default long copyFileRange(long nodeIn, long fhIn, long offIn, long nodeOut, long fhOut, long offOut, long len,
                               int flags) throws FsException {
        throw nosys();
    }

    /** FUSE_IOCTL; {@code in} holds {@code in_size} bytes. Unknown commands fail ENOTTY. */
    default IoctlResult ioctl(long node, long fh, int flags, int cmd, long arg, ByteBuffer in, int outSize)
            throws FsException {
        throw new FsException(Errnos.ENOTTY);
    }

    /** What backs a node's bytes in a DAX window: an open host file (closed by the caller) or a virtual file's bytes. */
    sealed interface MapSource permits MapSource.HostFile, MapSource.Bytes {
        record HostFile(dev.jkrun.libc.FileDescriptor fd) implements MapSource {}

        record Bytes(byte[] content) implements MapSource {}
    }

    /** Whether {@link #mapSource} works for regular files, so a DAX window may be offered to the guest. */
    default boolean supportsMapping() { return false; }

    /**
     * FUSE_SETUPMAPPING: the regular file {@code node} opened for mapping, read-write with {@code writable}, with the
     * caller's permissions (what OPEN would check). Never a special file; EROFS for a write on a read-only share.
     */
    default MapSource mapSource(Context ctx, long node, boolean writable) throws FsException { throw nosys(); }

    private static FsException nosys() { return new FsException(Errnos.ENOSYS); }
}
