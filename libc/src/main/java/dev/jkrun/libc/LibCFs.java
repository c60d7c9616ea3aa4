package dev.jkrun.libc;

import java.nio.ByteBuffer;
import jnr.ffi.annotations.IgnoreError;
import jnr.ffi.annotations.In;
import jnr.ffi.annotations.Out;
import jnr.ffi.annotations.SaveError;

/**
 * The raw *at(2) file-system surface, package-private: {@link PosixFs} is the typed wrapper. Paths are
 * NUL-terminated byte arrays (file names are bytes, not necessarily UTF-8). The binding interface is public
 * inside this package-private holder because jnr-ffi's generated class lives in its own class loader and must
 * be able to implement it; code outside the package still cannot name it.
 */
final class LibCFs {
    private LibCFs() {}

    public interface Calls {
    @SaveError int openat(int dirfd, @In byte[] path, int flags, int mode);
    @SaveError int close(int fd);
    @SaveError int fstatat(int dirfd, @In byte[] path, @Out byte[] stat, int flags);
    @SaveError int mkdirat(int dirfd, @In byte[] path, int mode);
    @SaveError int mknodat(int dirfd, @In byte[] path, int mode, long dev);
    @SaveError int unlinkat(int dirfd, @In byte[] path, int flags);
    @SaveError int renameat2(int olddirfd, @In byte[] oldpath, int newdirfd, @In byte[] newpath, int flags);
    @SaveError int linkat(int olddirfd, @In byte[] oldpath, int newdirfd, @In byte[] newpath, int flags);
    @SaveError int symlinkat(@In byte[] target, int newdirfd, @In byte[] linkpath);
    @SaveError long readlinkat(int dirfd, @In byte[] path, @Out byte[] buf, long bufsiz);
    @SaveError int fchmodat(int dirfd, @In byte[] path, int mode, int flags);
    @SaveError int fchmod(int fd, int mode);
    @SaveError int fchownat(int dirfd, @In byte[] path, int uid, int gid, int flags);
    @SaveError int utimensat(int dirfd, @In byte[] path, @In long[] times, int flags);
    @SaveError int ftruncate(int fd, long length);
    @SaveError long pread(int fd, @Out ByteBuffer buf, long count, long offset);
    @SaveError long pread(int fd, @Out byte[] buf, long count, long offset);
    @SaveError long pwrite(int fd, @In ByteBuffer buf, long count, long offset);
    @SaveError long pwrite(int fd, @In byte[] buf, long count, long offset);
    @SaveError long preadv(int fd, @In ByteBuffer iov, int iovcnt, long offset);
    @SaveError long pwritev(int fd, @In ByteBuffer iov, int iovcnt, long offset);
    @SaveError int fsync(int fd);
    @SaveError int fdatasync(int fd);
    @SaveError int fallocate(int fd, int mode, long offset, long len);
    @SaveError long lseek(int fd, long offset, int whence);
    @SaveError long copy_file_range(int fdIn, @In @Out long[] offIn, int fdOut, @In @Out long[] offOut, long len, int flags);
    @SaveError long getdents64(int fd, @Out byte[] buf, long count);
    @SaveError int fstatvfs(int fd, @Out byte[] buf);
    @SaveError int fstatfs(int fd, @Out byte[] buf);
    @SaveError int faccessat(int dirfd, @In byte[] path, int mode, int flags);
    @SaveError long getxattr(@In byte[] path, @In byte[] name, @Out byte[] value, long size);
    @SaveError int setxattr(@In byte[] path, @In byte[] name, @In byte[] value, long size, int flags);
    @SaveError long listxattr(@In byte[] path, @Out byte[] list, long size);
    @SaveError int removexattr(@In byte[] path, @In byte[] name);
    /** syscall(2) with a count and an int array: SYS_setgroups, whose raw form changes only the calling thread. */
    @SaveError long syscall(long number, long count, @In int[] list);
    @SaveError int getgroups(int size, @Out int[] list);
    @IgnoreError int setfsuid(int uid);
    @IgnoreError int setfsgid(int gid);
    @IgnoreError int geteuid();
    }
}
