package dev.jkrun.libc;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Typed wrappers over the *at(2) family and friends, for the virtio-fs passthrough. Conventions:
 * <ul>
 *   <li>Every failure throws {@link NativeCallException} carrying the call name and errno (never -1 upward);
 *       EINTR is retried where the call is restartable.</li>
 *   <li>Paths and names are raw bytes without the trailing NUL (Linux names are bytes); {@link #bytes(String)}
 *       converts from Java strings.</li>
 *   <li>A {@code null} directory {@link FileDescriptor} means {@code AT_FDCWD}.</li>
 *   <li>xattrs go through {@code /proc/self/fd/N} paths ({@link #procPath}), the way virtiofsd reaches them on
 *       O_PATH descriptors.</li>
 * </ul>
 */
public final class PosixFs {
    // <asm-generic/fcntl.h> (x86_64); arm64 moves four of them (arch/arm64/include/uapi/asm/fcntl.h). Getting one
    // wrong is not cosmetic: x86's O_NOFOLLOW is arm64's O_LARGEFILE, so a share would follow a planted symlink.
    /** Those four, {x86_64, aarch64} (LinuxAbiTest checks both against each architecture's headers). */
    static final int[] DIRECT = {040000, 0200000}, LARGEFILE = {0100000, 0400000}, DIRECTORY = {0200000, 040000},
            NOFOLLOW = {0400000, 0100000};
    private static final int ABI = abi();

    /** 0 on x86_64, 1 on aarch64; anything else is refused rather than guessed (the flags guard share containment). */
    private static int abi() {
        return switch (System.getProperty("os.arch")) {
            case "amd64", "x86_64" -> 0;
            case "aarch64" -> 1;
            default -> throw new UnsupportedOperationException("jkrun's libc binding knows x86_64 and aarch64, not "
                    + System.getProperty("os.arch"));
        };
    }
    public static final int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_ACCMODE = 3, O_CREAT = 0100, O_EXCL = 0200,
            O_NOCTTY = 0400, O_TRUNC = 01000, O_APPEND = 02000, O_NONBLOCK = 04000, O_DIRECT = DIRECT[ABI],
            O_LARGEFILE = LARGEFILE[ABI], O_DIRECTORY = DIRECTORY[ABI], O_NOFOLLOW = NOFOLLOW[ABI],
            O_NOATIME = 01000000, O_CLOEXEC = 02000000, O_PATH = 010000000;
    // <linux/fcntl.h>
    public static final int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100, AT_REMOVEDIR = 0x200,
            AT_SYMLINK_FOLLOW = 0x400, AT_EACCESS = 0x200, AT_EMPTY_PATH = 0x1000;
    // <linux/fs.h> renameat2 flags
    public static final int RENAME_NOREPLACE = 1, RENAME_EXCHANGE = 2, RENAME_WHITEOUT = 4;
    public static final int SEEK_SET = 0, SEEK_CUR = 1, SEEK_END = 2, SEEK_DATA = 3, SEEK_HOLE = 4;
    public static final int F_OK = 0, X_OK = 1, W_OK = 2, R_OK = 4;
    /** {@code struct timespec.tv_nsec} specials for {@link #utimensat}. */
    public static final long UTIME_NOW = (1L << 30) - 1, UTIME_OMIT = (1L << 30) - 2;
    public static final int XATTR_CREATE = 1, XATTR_REPLACE = 2;
    /** d_type values of {@code struct linux_dirent64}. */
    public static final int DT_UNKNOWN = 0, DT_FIFO = 1, DT_CHR = 2, DT_DIR = 4, DT_BLK = 6, DT_REG = 8, DT_LNK = 10,
            DT_SOCK = 12;

    private static final LibCFs.Calls FS = Native.fs();
    private static final byte[] EMPTY = {0};

    private PosixFs() {}

    /** One {@code struct linux_dirent64}: d_ino, d_off (the cookie to lseek to for the entry after it), d_type, name. */
    public record DirEntry(long ino, long off, int type, byte[] name) {
        public String nameString() { return new String(name, StandardCharsets.UTF_8); }

        public boolean isDotOrDotDot() {
            return (name.length == 1 && name[0] == '.') || (name.length == 2 && name[0] == '.' && name[1] == '.');
        }
    }

    /** {@code struct statvfs} on 64-bit glibc, x86_64 and aarch64 alike (112 bytes; LinuxAbiTest). */
    public record StatVfs(long bsize, long frsize, long blocks, long bfree, long bavail, long files, long ffree,
                          long favail, long fsid, long flag, long namemax) {}

    public static byte[] bytes(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    /** {@code /proc/self/fd/N} for an fd we own: reopening it reaches the inode without any path walk. */
    public static byte[] procPath(FileDescriptor fd) { return bytes("/proc/self/fd/" + fd.raw()); }

    private static byte[] z(byte[] s) {
        if (s == null || s.length == 0) {
            return EMPTY;
        }
        byte[] r = Arrays.copyOf(s, s.length + 1);
        return r;
    }

    private static int dir(FileDescriptor d) { return d == null ? AT_FDCWD : d.raw(); }

    private static int errno() { return Native.errno(); }

    private static NativeCallException fail(String call) { return new NativeCallException(call, errno()); }

    private static int checkInt(String call, int rc) {
        if (rc < 0) {
            throw fail(call);
        }
        return rc;
    }

    public static FileDescriptor openat(FileDescriptor dir, byte[] path, int flags, int mode) {
        byte[] p = z(path);
        while (true) {
            int rc = FS.openat(dir(dir), p, flags | O_CLOEXEC, mode);
            if (rc >= 0) {
                return FileDescriptor.adopt(rc, "openat");
            }
            int e = errno();
            if (e != Errno.EINTR) {
                throw new NativeCallException("openat", e);
            }
        }
    }

    public static Stat fstatat(FileDescriptor dir, byte[] path, int flags) {
        byte[] raw = new byte[Stat.SIZE];
        checkInt("fstatat", FS.fstatat(dir(dir), z(path), raw, flags));
        return Stat.parse(raw);
    }

    /** fstat(2) of {@code fd} itself (works on O_PATH descriptors; never follows a symlink). */
    public static Stat fstat(FileDescriptor fd) { return fstatat(fd, null, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW); }

    public static void mkdirat(FileDescriptor dir, byte[] name, int mode) {
        checkInt("mkdirat", FS.mkdirat(dir(dir), z(name), mode));
    }

    public static void mknodat(FileDescriptor dir, byte[] name, int mode, long dev) {
        checkInt("mknodat", FS.mknodat(dir(dir), z(name), mode, dev));
    }

    public static void unlinkat(FileDescriptor dir, byte[] name, int flags) {
        checkInt("unlinkat", FS.unlinkat(dir(dir), z(name), flags));
    }

    public static void renameat2(FileDescriptor oldDir, byte[] oldName, FileDescriptor newDir, byte[] newName, int flags) {
        checkInt("renameat2", FS.renameat2(dir(oldDir), z(oldName), dir(newDir), z(newName), flags));
    }

    public static void linkat(FileDescriptor oldDir, byte[] oldName, FileDescriptor newDir, byte[] newName, int flags) {
        checkInt("linkat", FS.linkat(dir(oldDir), z(oldName), dir(newDir), z(newName), flags));
    }

    public static void symlinkat(byte[] target, FileDescriptor dir, byte[] name) {
        checkInt("symlinkat", FS.symlinkat(z(target), dir(dir), z(name)));
    }

    /** The link text (without NUL); {@code path} empty reads the O_PATH symlink {@code dir} itself. */
    public static byte[] readlinkat(FileDescriptor dir, byte[] path) {
        byte[] buf = new byte[4096];
        long n = FS.readlinkat(dir(dir), z(path), buf, buf.length);
        if (n < 0) {
            throw fail("readlinkat");
        }
        return Arrays.copyOf(buf, (int) n);
    }

    public static void fchmodat(FileDescriptor dir, byte[] path, int mode, int flags) {
        checkInt("fchmodat", FS.fchmodat(dir(dir), z(path), mode, flags));
    }

    public static void fchmod(FileDescriptor fd, int mode) { checkInt("fchmod", FS.fchmod(fd.raw(), mode)); }

    /** uid/gid -1 leave that id unchanged. */
    public static void fchownat(FileDescriptor dir, byte[] path, int uid, int gid, int flags) {
        checkInt("fchownat", FS.fchownat(dir(dir), z(path), uid, gid, flags));
    }

    /** Times as (sec, nsec) pairs; nsec may be {@link #UTIME_NOW} or {@link #UTIME_OMIT}. */
    public static void utimensat(FileDescriptor dir, byte[] path, long atimeSec, long atimeNsec, long mtimeSec,
                                 long mtimeNsec, int flags) {
        long[] times = {atimeSec, atimeNsec, mtimeSec, mtimeNsec};
        checkInt("utimensat", FS.utimensat(dir(dir), z(path), times, flags));
    }

    public static void ftruncate(FileDescriptor fd, long length) {
        checkInt("ftruncate", FS.ftruncate(fd.raw(), length));
    }

    /**
     * Reads up to {@code buf.remaining()} bytes at {@code offset} into {@code buf} from its position (direct
     * buffers are read into without a copy) and advances the position; returns the count (0 at end of file).
     */
    public static int pread(FileDescriptor fd, ByteBuffer buf, long offset) {
        while (true) {
            long n = FS.pread(fd.raw(), buf, buf.remaining(), offset);
            if (n >= 0) {
                buf.position(buf.position() + (int) n);
                return (int) n;
            }
            int e = errno();
            if (e != Errno.EINTR) {
                throw new NativeCallException("pread", e);
            }
        }
    }

    public static int pread(FileDescriptor fd, byte[] buf, int length, long offset) {
        if (length > buf.length) {
            throw new IllegalArgumentException("length beyond buffer");
        }
        while (true) {
            long n = FS.pread(fd.raw(), buf, length, offset);
            if (n >= 0) {
                return (int) n;
            }
            int e = errno();
            if (e != Errno.EINTR) {
                throw new NativeCallException("pread", e);
            }
        }
    }

    /** Writes {@code buf.remaining()} bytes (at most) at {@code offset}; advances the position by the count. */
    public static int pwrite(FileDescriptor fd, ByteBuffer buf, long offset) {
        while (true) {
            long n = FS.pwrite(fd.raw(), buf, buf.remaining(), offset);
            if (n >= 0) {
                buf.position(buf.position() + (int) n);
                return (int) n;
            }
            int e = errno();
            if (e != Errno.EINTR) {
                throw new NativeCallException("pwrite", e);
            }
        }
    }

    public static int pwrite(FileDescriptor fd, byte[] buf, int length, long offset) {
        if (length > buf.length) {
            throw new IllegalArgumentException("length beyond buffer");
        }
        while (true) {
            long n = FS.pwrite(fd.raw(), buf, length, offset);
            if (n >= 0) {
                return (int) n;
            }
            int e = errno();
            if (e != Errno.EINTR) {
                throw new NativeCallException("pwrite", e);
            }
        }
    }

    /** uio.h UIO_MAXIOV: the most buffers one preadv/pwritev takes. */
    public static final int IOV_MAX = 1024;
    /** Each thread's iovec array (16 bytes an entry), made on first use. */
    private static final ThreadLocal<ByteBuffer> IOVECS =
            ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(16 * IOV_MAX).order(ByteOrder.nativeOrder()));

    /**
     * Reads at {@code offset} into {@code bufs}, each from its position: with preadv (scatter, {@link #IOV_MAX}
     * buffers a call) when they are all direct buffers, else pread by pread. Advances the positions by what was
     * read and returns the count, which is short only where the file ends (or a call was cut short).
     *
     * <p>The kernel is handed the buffers' addresses, outside the JDK's own I/O and its hold on memory segments: the
     * memory behind them must stay mapped until the call returns (guest RAM is unmapped only after every device
     * thread has stopped).
     */
    public static long preadv(FileDescriptor fd, ByteBuffer[] bufs, long offset) { return vectored(fd, bufs, offset, false); }

    /** Writes {@code bufs} (from their positions) at {@code offset}, as {@link #preadv} reads; returns the count. */
    public static long pwritev(FileDescriptor fd, ByteBuffer[] bufs, long offset) { return vectored(fd, bufs, offset, true); }

    private static long vectored(FileDescriptor fd, ByteBuffer[] bufs, long offset, boolean write) {
        boolean direct = true;
        for (int i = 0; direct && i < bufs.length; i++) {
            direct = bufs[i].isDirect();
        }
        long total = 0;
        if (!direct) {
            for (ByteBuffer b : bufs) {
                int want = b.remaining();
                int n = write ? pwrite(fd, b, offset + total) : pread(fd, b, offset + total);
                total += n;
                if (n < want) {
                    break;
                }
            }
            return total;
        }
        ByteBuffer iov = IOVECS.get();
        for (int from = 0; from < bufs.length; from += IOV_MAX) {
            int to = Math.min(bufs.length, from + IOV_MAX);
            long want = 0;
            iov.clear();
            for (int i = from; i < to; i++) {
                iov.putLong(DirectBuffers.address(bufs[i]) + bufs[i].position()).putLong(bufs[i].remaining());
                want += bufs[i].remaining();
            }
            iov.flip();
            if (want == 0) {
                continue; // a batch of empty buffers (what a READ's size left of the guest's): no call
            }
            long n;
            while (true) {
                n = write ? FS.pwritev(fd.raw(), iov, to - from, offset + total)
                        : FS.preadv(fd.raw(), iov, to - from, offset + total);
                if (n >= 0) {
                    break;
                }
                int e = errno();
                if (e != Errno.EINTR) {
                    throw new NativeCallException(write ? "pwritev" : "preadv", e);
                }
            }
            long left = n;
            for (int i = from; i < to && left > 0; i++) {
                int k = (int) Math.min(left, bufs[i].remaining());
                bufs[i].position(bufs[i].position() + k);
                left -= k;
            }
            total += n;
            if (n < want) {
                break;
            }
        }
        return total;
    }

    public static void fsync(FileDescriptor fd) { checkInt("fsync", FS.fsync(fd.raw())); }

    public static void fdatasync(FileDescriptor fd) { checkInt("fdatasync", FS.fdatasync(fd.raw())); }

    public static void fallocate(FileDescriptor fd, int mode, long offset, long len) {
        checkInt("fallocate", FS.fallocate(fd.raw(), mode, offset, len));
    }

    public static long lseek(FileDescriptor fd, long offset, int whence) {
        long rc = FS.lseek(fd.raw(), offset, whence);
        if (rc < 0) {
            throw fail("lseek");
        }
        return rc;
    }

    /** copy_file_range(2) with explicit offsets; returns the bytes copied. */
    public static long copyFileRange(FileDescriptor in, long offIn, FileDescriptor out, long offOut, long len, int flags) {
        long rc = FS.copy_file_range(in.raw(), new long[] {offIn}, out.raw(), new long[] {offOut},
                len, flags);
        if (rc < 0) {
            throw fail("copy_file_range");
        }
        return rc;
    }

    /**
     * One getdents64(2) call into a buffer of {@code bufferSize} bytes at the directory's current offset; an
     * empty list means end of directory.
     */
    public static List<DirEntry> getdents64(FileDescriptor dirFd, int bufferSize) {
        byte[] buf = new byte[bufferSize];
        long n = FS.getdents64(dirFd.raw(), buf, buf.length);
        if (n < 0) {
            throw fail("getdents64");
        }
        List<DirEntry> out = new ArrayList<>();
        ByteBuffer b = ByteBuffer.wrap(buf, 0, (int) n).order(ByteOrder.LITTLE_ENDIAN);
        int pos = 0;
        while (pos + 19 <= n) {
            long ino = b.getLong(pos);
            long off = b.getLong(pos + 8);
            int reclen = Short.toUnsignedInt(b.getShort(pos + 16));
            int type = Byte.toUnsignedInt(b.get(pos + 18));
            if (reclen < 20 || pos + reclen > n) {
                break;
            }
            int end = pos + 19;
            while (end < pos + reclen && buf[end] != 0) {
                end++;
            }
            out.add(new DirEntry(ino, off, type, Arrays.copyOfRange(buf, pos + 19, end)));
            pos += reclen;
        }
        return out;
    }

    public static StatVfs fstatvfs(FileDescriptor fd) {
        byte[] raw = new byte[112];
        checkInt("fstatvfs", FS.fstatvfs(fd.raw(), raw));
        ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        return new StatVfs(b.getLong(0), b.getLong(8), b.getLong(16), b.getLong(24), b.getLong(32), b.getLong(40),
                b.getLong(48), b.getLong(56), b.getLong(64), b.getLong(72), b.getLong(80));
    }

    /** sizeof(struct statfs) on 64-bit glibc (x86_64 and aarch64; LinuxAbiTest): f_type@0 is the first __fsword_t (a long), then 14 more words. */
    static final int STATFS_SIZE = 120;

    /**
     * The f_type of fstatfs(2): the file system's magic number ({@code <linux/magic.h>}). Works on O_PATH
     * descriptors.
     */
    public static long fstatfsType(FileDescriptor fd) {
        byte[] raw = new byte[STATFS_SIZE];
        checkInt("fstatfs", FS.fstatfs(fd.raw(), raw));
        return ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
    }

    public static void faccessat(FileDescriptor dir, byte[] path, int mode, int flags) {
        checkInt("faccessat", FS.faccessat(dir(dir), z(path), mode, flags));
    }

    /** getxattr(2): with {@code size} 0, returns the value's length only (and {@code value} may be null). */
    public static int getxattr(byte[] path, byte[] name, byte[] value, int size) {
        checkSize(size, value);
        long n = FS.getxattr(z(path), z(name), size == 0 ? null : value, size);
        if (n < 0) {
            throw fail("getxattr");
        }
        return (int) n;
    }

    public static void setxattr(byte[] path, byte[] name, byte[] value, int size, int flags) {
        checkSize(size, value);
        checkInt("setxattr", FS.setxattr(z(path), z(name), value, size, flags));
    }

    /** listxattr(2): NUL-separated names; with {@code size} 0, returns the needed length only. */
    public static int listxattr(byte[] path, byte[] list, int size) {
        checkSize(size, list);
        long n = FS.listxattr(z(path), size == 0 ? null : list, size);
        if (n < 0) {
            throw fail("listxattr");
        }
        return (int) n;
    }

    /** A size the kernel will write or read that many bytes of: within the array, never negative. */
    private static void checkSize(int size, byte[] array) {
        if (size < 0 || (size > 0 && (array == null || size > array.length))) {
            throw new IllegalArgumentException("size " + size + " for an array of " + (array == null ? "none" : array.length));
        }
    }

    public static void removexattr(byte[] path, byte[] name) {
        checkInt("removexattr", FS.removexattr(z(path), z(name)));
    }

    /** setfsuid(2) for the calling thread; returns the previous fsuid (-1 changes nothing: the current one). */
    public static int setfsuid(int uid) { return FS.setfsuid(uid); }

    /** setfsgid(2) for the calling thread; returns the previous fsgid (-1 changes nothing: the current one). */
    public static int setfsgid(int gid) { return FS.setfsgid(gid); }

    public static int geteuid() { return FS.geteuid(); }

    /**
     * SYS_setgroups on x86_64 and on aarch64 (the generic table): arch/x86/entry/syscalls/syscall_64.tbl,
     * asm-generic/unistd.h; -1 elsewhere (the number differs, and calling the wrong one would fail silently).
     */
    private static final long SYS_SETGROUPS = switch (System.getProperty("os.arch")) {
        case "amd64", "x86_64" -> 116;
        case "aarch64" -> 159;
        default -> -1;
    };
    /** NGROUPS_MAX of Linux (include/uapi/linux/limits.h). */
    public static final int NGROUPS_MAX = 65536;

    /**
     * The calling thread's supplementary groups (getgroups(2) answers for the calling thread: Linux keeps
     * credentials per thread).
     */
    public static int[] threadGroups() {
        int n = FS.getgroups(0, null);
        if (n < 0) {
            throw fail("getgroups");
        }
        int[] groups = new int[n];
        if (n > 0) {
            int got = FS.getgroups(n, groups);
            if (got < 0) {
                throw fail("getgroups");
            }
            if (got != n) {
                groups = java.util.Arrays.copyOf(groups, got);
            }
        }
        return groups;
    }

    /**
     * Sets the supplementary groups of the calling thread only: the raw system call, not glibc's setgroups, which
     * changes every thread of the process (it broadcasts the change to keep POSIX's per-process credentials). Needs
     * CAP_SETGID.
     */
    public static void setThreadGroups(int[] groups) {
        if (groups.length > NGROUPS_MAX) {
            throw new IllegalArgumentException(groups.length + " groups");
        }
        if (SYS_SETGROUPS < 0) {
            throw new NativeCallException("setgroups (no system call number for " + System.getProperty("os.arch") + ")",
                    Errno.ENOSYS);
        }
        if (FS.syscall(SYS_SETGROUPS, groups.length, groups) != 0) {
            throw fail("setgroups");
        }
    }

    /** close(2) of a raw fd that is not wrapped (rarely needed; prefer {@link FileDescriptor#close()}). */
    static void closeRaw(int fd) { FS.close(fd); }
}
