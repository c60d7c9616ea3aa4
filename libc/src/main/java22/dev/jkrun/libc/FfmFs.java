package dev.jkrun.libc;

import static dev.jkrun.libc.FfmCalls.I;
import static dev.jkrun.libc.FfmCalls.J;
import static dev.jkrun.libc.FfmCalls.UNREAD;
import static dev.jkrun.libc.FfmCalls.call;
import static dev.jkrun.libc.FfmCalls.count;
import static dev.jkrun.libc.FfmCalls.enter;
import static dev.jkrun.libc.FfmCalls.iovecs;
import static dev.jkrun.libc.FfmCalls.plain;
import static dev.jkrun.libc.FfmCalls.rethrow;
import static dev.jkrun.libc.FfmCalls.saving;
import static dev.jkrun.libc.FfmCalls.savingVariadic;

import dev.jkrun.libc.FfmCalls.PerThread;
import java.lang.invoke.MethodHandle;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;

/**
 * {@link LibCFs.Calls} as FFM downcalls (JDK 22+): paths and structs through the calling thread's scratch area,
 * direct buffers in place (from their position, as JNR passes them), heap buffers copied.
 * Each function's handle is bound the first time it is called (its holder class's initialization): the JDK spins
 * code for each new call shape, so binding all of them up front cost a start-up ~140 ms.
 */
final class FfmFs implements LibCFs.Calls {
    private static final class FnOpenat {
        static final MethodHandle H = savingVariadic("openat", 3, I, I, J, I, I);
    }

    private static final class FnClose {
        static final MethodHandle H = saving("close", I, I);
    }

    private static final class FnFstatat {
        static final MethodHandle H = saving("fstatat", I, I, J, J, I);
    }

    private static final class FnMkdirat {
        static final MethodHandle H = saving("mkdirat", I, I, J, I);
    }

    private static final class FnMknodat {
        static final MethodHandle H = saving("mknodat", I, I, J, I, J);
    }

    private static final class FnUnlinkat {
        static final MethodHandle H = saving("unlinkat", I, I, J, I);
    }

    private static final class FnRenameat2 {
        static final MethodHandle H = saving("renameat2", I, I, J, I, J, I);
    }

    private static final class FnLinkat {
        static final MethodHandle H = saving("linkat", I, I, J, I, J, I);
    }

    private static final class FnSymlinkat {
        static final MethodHandle H = saving("symlinkat", I, J, I, J);
    }

    private static final class FnReadlinkat {
        static final MethodHandle H = saving("readlinkat", J, I, J, J, J);
    }

    private static final class FnFchmodat {
        static final MethodHandle H = saving("fchmodat", I, I, J, I, I);
    }

    private static final class FnFchmod {
        static final MethodHandle H = saving("fchmod", I, I, I);
    }

    private static final class FnFchownat {
        static final MethodHandle H = saving("fchownat", I, I, J, I, I, I);
    }

    private static final class FnUtimensat {
        static final MethodHandle H = saving("utimensat", I, I, J, J, I);
    }

    private static final class FnFtruncate {
        static final MethodHandle H = saving("ftruncate", I, I, J);
    }

    private static final class FnPread {
        static final MethodHandle H = saving("pread", J, I, J, J, J);
    }

    private static final class FnPwrite {
        static final MethodHandle H = saving("pwrite", J, I, J, J, J);
    }

    private static final class FnPreadv {
        static final MethodHandle H = saving("preadv", J, I, J, I, J);
    }

    private static final class FnPwritev {
        static final MethodHandle H = saving("pwritev", J, I, J, I, J);
    }

    private static final class FnFsync {
        static final MethodHandle H = saving("fsync", I, I);
    }

    private static final class FnFdatasync {
        static final MethodHandle H = saving("fdatasync", I, I);
    }

    private static final class FnFallocate {
        static final MethodHandle H = saving("fallocate", I, I, I, J, J);
    }

    private static final class FnLseek {
        static final MethodHandle H = saving("lseek", J, I, J, I);
    }

    private static final class FnCopyFileRange {
        static final MethodHandle H = saving("copy_file_range", J, I, J, I, J, J, I);
    }

    private static final class FnGetdents64 {
        static final MethodHandle H = saving("getdents64", J, I, J, J);
    }

    private static final class FnFstatvfs {
        static final MethodHandle H = saving("fstatvfs", I, I, J);
    }

    private static final class FnFstatfs {
        static final MethodHandle H = saving("fstatfs", I, I, J);
    }

    private static final class FnFaccessat {
        static final MethodHandle H = saving("faccessat", I, I, J, I, I);
    }

    private static final class FnGetxattr {
        static final MethodHandle H = saving("getxattr", J, J, J, J, J);
    }

    private static final class FnSetxattr {
        static final MethodHandle H = saving("setxattr", I, J, J, J, J, I);
    }

    private static final class FnListxattr {
        static final MethodHandle H = saving("listxattr", J, J, J, J);
    }

    private static final class FnRemovexattr {
        static final MethodHandle H = saving("removexattr", I, J, J);
    }

    private static final class FnSyscall {
        static final MethodHandle H = savingVariadic("syscall", 1, J, J, J, J);
    }

    private static final class FnGetgroups {
        static final MethodHandle H = saving("getgroups", I, I, J);
    }

    private static final class FnSetfsuid {
        static final MethodHandle H = plain("setfsuid", I, I);
    }

    private static final class FnSetfsgid {
        static final MethodHandle H = plain("setfsgid", I, I);
    }

    private static final class FnGeteuid {
        static final MethodHandle H = plain("geteuid", I);
    }

    @Override
    public int openat(int dirfd, byte[] path, int flags, int mode) {
        PerThread t = enter();
        try {
            long pathAt = t.in(path);
            return (int) call(FnOpenat.H, t.state, dirfd, pathAt, flags, mode);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int close(int fd) {
        PerThread t = enter();
        try {
            return (int) call(FnClose.H, t.state, fd);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int fstatat(int dirfd, byte[] path, byte[] stat, int flags) {
        PerThread t = enter();
        try {
            long pathAt = t.in(path);
            long statAt = t.out(stat);
            int rc = (int) call(FnFstatat.H, t.state, dirfd, pathAt, statAt, flags);
            PerThread.back(statAt, stat, Long.MAX_VALUE);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int mkdirat(int dirfd, byte[] path, int mode) {
        PerThread t = enter();
        try {
            long pathAt = t.in(path);
            return (int) call(FnMkdirat.H, t.state, dirfd, pathAt, mode);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int mknodat(int dirfd, byte[] path, int mode, long dev) {
        PerThread t = enter();
        try {
            long pathAt = t.in(path);
            return (int) call(FnMknodat.H, t.state, dirfd, pathAt, mode, dev);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int unlinkat(int dirfd, byte[] path, int flags) {
        PerThread t = enter();
        try {
            long pathAt = t.in(path);
            return (int) call(FnUnlinkat.H, t.state, dirfd, pathAt, flags);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int renameat2(int olddirfd, byte[] oldpath, int newdirfd, byte[] newpath, int flags) {
        PerThread t = enter();
        try {
            long oldpathAt = t.in(oldpath);
            long newpathAt = t.in(newpath);
            return (int) call(FnRenameat2.H, t.state, olddirfd, oldpathAt, newdirfd, newpathAt, flags);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int linkat(int olddirfd, byte[] oldpath, int newdirfd, byte[] newpath, int flags) {
        PerThread t = enter();
        try {
            long oldpathAt = t.in(oldpath);
            long newpathAt = t.in(newpath);
            return (int) call(FnLinkat.H, t.state, olddirfd, oldpathAt, newdirfd, newpathAt, flags);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int symlinkat(byte[] target, int newdirfd, byte[] linkpath) {
        PerThread t = enter();
        try {
            long targetAt = t.in(target);
            long linkpathAt = t.in(linkpath);
            return (int) call(FnSymlinkat.H, t.state, targetAt, newdirfd, linkpathAt);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long readlinkat(int dirfd, byte[] path, byte[] buf, long bufsiz) {
        PerThread t = enter();
        try {
            long pathAt = t.in(path);
            long bufAt = t.out(buf);
            long rc = (long) call(FnReadlinkat.H, t.state, dirfd, pathAt, bufAt, count(bufsiz,buf.length));
            PerThread.back(bufAt, buf, rc);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int fchmodat(int dirfd, byte[] path, int mode, int flags) {
        PerThread t = enter();
        try {
            long pathAt = t.in(path);
            return (int) call(FnFchmodat.H, t.state, dirfd, pathAt, mode, flags);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int fchmod(int fd, int mode) {
        PerThread t = enter();
        try {
            return (int) call(FnFchmod.H, t.state, fd, mode);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int fchownat(int dirfd, byte[] path, int uid, int gid, int flags) {
        PerThread t = enter();
        try {
            long pathAt = t.in(path);
            return (int) call(FnFchownat.H, t.state, dirfd, pathAt, uid, gid, flags);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int utimensat(int dirfd, byte[] path, long[] times, int flags) {
        PerThread t = enter();
        try {
            long pathAt = t.in(path);
            long timesAt = t.in(times);
            return (int) call(FnUtimensat.H, t.state, dirfd, pathAt, timesAt, flags);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int ftruncate(int fd, long length) {
        PerThread t = enter();
        try {
            return (int) call(FnFtruncate.H, t.state, fd, length);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long pread(int fd, ByteBuffer buf, long count, long offset) {
        PerThread t = enter();
        try {
            long bufAt = t.buffer(buf, false);
            long rc = (long) call(FnPread.H, t.state, fd, bufAt, count(count,buf.remaining()), offset);
            PerThread.back(bufAt, buf, rc);
            Reference.reachabilityFence(buf);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long pread(int fd, byte[] buf, long count, long offset) {
        PerThread t = enter();
        try {
            long bufAt = t.out(buf);
            long rc = (long) call(FnPread.H, t.state, fd, bufAt, count(count,buf.length), offset);
            PerThread.back(bufAt, buf, rc);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long pwrite(int fd, ByteBuffer buf, long count, long offset) {
        PerThread t = enter();
        try {
            long bufAt = t.buffer(buf, true);
            long rc = (long) call(FnPwrite.H, t.state, fd, bufAt, count(count,buf.remaining()), offset);
            Reference.reachabilityFence(buf);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long pwrite(int fd, byte[] buf, long count, long offset) {
        PerThread t = enter();
        try {
            long bufAt = t.in(buf);
            return (long) call(FnPwrite.H, t.state, fd, bufAt, count(count,buf.length), offset);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long preadv(int fd, ByteBuffer iov, int iovcnt, long offset) {
        PerThread t = enter();
        try {
            long iovAt = t.buffer(iov, true);
            long rc = (long) call(FnPreadv.H, t.state, fd, iovAt, iovecs(iovcnt,iov), offset);
            Reference.reachabilityFence(iov);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long pwritev(int fd, ByteBuffer iov, int iovcnt, long offset) {
        PerThread t = enter();
        try {
            long iovAt = t.buffer(iov, true);
            long rc = (long) call(FnPwritev.H, t.state, fd, iovAt, iovecs(iovcnt,iov), offset);
            Reference.reachabilityFence(iov);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int fsync(int fd) {
        PerThread t = enter();
        try {
            return (int) call(FnFsync.H, t.state, fd);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int fdatasync(int fd) {
        PerThread t = enter();
        try {
            return (int) call(FnFdatasync.H, t.state, fd);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int fallocate(int fd, int mode, long offset, long len) {
        PerThread t = enter();
        try {
            return (int) call(FnFallocate.H, t.state, fd, mode, offset, len);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long lseek(int fd, long offset, int whence) {
        PerThread t = enter();
        try {
            return (long) call(FnLseek.H, t.state, fd, offset, whence);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long copy_file_range(int fdIn, long[] offIn, int fdOut, long[] offOut, long len, int flags) {
        PerThread t = enter();
        try {
            long offInAt = t.in(offIn);
            long offOutAt = t.in(offOut);
            long rc = (long) call(FnCopyFileRange.H, t.state, fdIn, offInAt, fdOut, offOutAt, len, flags);
            PerThread.back(offInAt, offIn);
            PerThread.back(offOutAt, offOut);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long getdents64(int fd, byte[] buf, long count) {
        PerThread t = enter();
        try {
            long bufAt = t.out(buf);
            long rc = (long) call(FnGetdents64.H, t.state, fd, bufAt, count(count,buf.length));
            PerThread.back(bufAt, buf, rc);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int fstatvfs(int fd, byte[] buf) {
        PerThread t = enter();
        try {
            long bufAt = t.out(buf);
            int rc = (int) call(FnFstatvfs.H, t.state, fd, bufAt);
            PerThread.back(bufAt, buf, Long.MAX_VALUE);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int fstatfs(int fd, byte[] buf) {
        PerThread t = enter();
        try {
            long bufAt = t.out(buf);
            int rc = (int) call(FnFstatfs.H, t.state, fd, bufAt);
            PerThread.back(bufAt, buf, Long.MAX_VALUE);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int faccessat(int dirfd, byte[] path, int mode, int flags) {
        PerThread t = enter();
        try {
            long pathAt = t.in(path);
            return (int) call(FnFaccessat.H, t.state, dirfd, pathAt, mode, flags);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long getxattr(byte[] path, byte[] name, byte[] value, long size) {
        PerThread t = enter();
        try {
            long pathAt = t.in(path);
            long nameAt = t.in(name);
            long valueAt = t.out(value);
            long rc = (long) call(FnGetxattr.H, t.state, pathAt, nameAt, valueAt, (value==null?0:count(size,value.length)));
            PerThread.back(valueAt, value, rc);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int setxattr(byte[] path, byte[] name, byte[] value, long size, int flags) {
        PerThread t = enter();
        try {
            long pathAt = t.in(path);
            long nameAt = t.in(name);
            long valueAt = t.in(value);
            return (int) call(FnSetxattr.H, t.state, pathAt, nameAt, valueAt, (value==null?0:count(size,value.length)), flags);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long listxattr(byte[] path, byte[] list, long size) {
        PerThread t = enter();
        try {
            long pathAt = t.in(path);
            long listAt = t.out(list);
            long rc = (long) call(FnListxattr.H, t.state, pathAt, listAt, (list==null?0:count(size,list.length)));
            PerThread.back(listAt, list, rc);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int removexattr(byte[] path, byte[] name) {
        PerThread t = enter();
        try {
            long pathAt = t.in(path);
            long nameAt = t.in(name);
            return (int) call(FnRemovexattr.H, t.state, pathAt, nameAt);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long syscall(long number, long count, int[] list) {
        PerThread t = enter();
        try {
            long listAt = t.in(list);
            return (long) call(FnSyscall.H, t.state, number, count(count,list==null?0:list.length), listAt);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int getgroups(int size, int[] list) {
        PerThread t = enter();
        try {
            long listAt = t.out(list);
            int rc = (int) call(FnGetgroups.H, t.state, (int)count(size,list==null?0:list.length), listAt);
            PerThread.back(listAt, list);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int setfsuid(int uid) {
        try {
            return (int) call(FnSetfsuid.H, UNREAD, uid);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int setfsgid(int gid) {
        try {
            return (int) call(FnSetfsgid.H, UNREAD, gid);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int geteuid() {
        try {
            return (int) call(FnGeteuid.H, UNREAD);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }
}
