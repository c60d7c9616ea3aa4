package dev.jkrun.devices.fs.passthrough;

import dev.jkrun.devices.fs.Attr;
import dev.jkrun.devices.fs.Context;
import dev.jkrun.devices.fs.Errnos;
import dev.jkrun.devices.fs.FileSystem;
import dev.jkrun.devices.fs.IoctlResult;
import dev.jkrun.devices.fs.StatFs;
import dev.jkrun.devices.fs.FsException;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.PosixFs;
import dev.jkrun.libc.Stat;
import java.nio.ByteBuffer;
import java.util.Set;
import java.util.function.IntConsumer;

/**
 * What the file systems that serve host directories ({@link PassthroughFs}, {@code OverlayFs}) share: native
 * failures as errnos, the guest's credentials, name checks, attributes, and the setuid and pseudo-file-system rules.
 */
public final class HostCalls {
    public static final int NAME_MAX = 255;
    private static final int S_ISUID = 04000, S_ISGID = 02000;
    /**
     * f_type magic numbers ({@code <linux/magic.h>}; configfs's and fusectl's are only in the kernel's fs/configfs
     * and fs/fuse sources) of host pseudo file systems whose files are kernel or process state, not data: proc
     * (/proc/kcore, /proc/PID/mem of this JVM, which holds other VMs' RAM, environ), sysfs, debugfs, tracefs,
     * securityfs, efivarfs, configfs, bpffs, cgroup v1/v2, pstore, selinuxfs, smackfs, devpts, binfmt_misc,
     * fusectl, hugetlbfs. devtmpfs reports tmpfs's magic; its device nodes are never opened anyway.
     */
    public static final Set<Long> PSEUDO_FS = Set.of(0x9fa0L, 0x62656572L, 0x64626720L,
            0x74726163L, 0x73636673L, 0xde5e81e4L, 0x62656570L, 0xcafe4a11L, 0x27e0ebL, 0x63677270L, 0x6165676cL,
            0xf97cff8cL, 0x43415d53L, 0x1cd1L, 0x42494e4dL, 0x65735543L, 0x958458f6L);

    private HostCalls() {}

    /** A host operation that may fail with a native errno or an FsException. */
    public interface Op<T> {
        T run() throws FsException;
    }

    /** Runs {@code op}, turning a failed native call into its errno. */
    public static <T> T sys(Op<T> op) throws FsException {
        try {
            return op.run();
        } catch (NativeCallException e) {
            throw new FsException(e.errno(), e.call());
        }
    }

    /**
     * Runs {@code op} (through {@link #sys}) as the guest caller when {@code switchCredentials} (the VMM runs as
     * root, the way virtiofsd does): this thread's fsuid and fsgid become the caller's and its supplementary groups
     * exactly those the request vouches for ({@link Context#suppGroups}: none, or FUSE_CREATE_SUPP_GROUP's one),
     * never the VMM's own. Then all three go back to what the thread had, not necessarily root's: krun_setgid may
     * have moved the process. Linux keeps credentials per thread, and the raw setgroups changes only this one, so
     * nothing reaches another request.
     */
    public static <T> T as(boolean switchCredentials, Context ctx, Op<T> op) throws FsException {
        if (!switchCredentials || (ctx.uid() == 0 && ctx.gid() == 0)) {
            return sys(op);
        }
        if (ctx.uid() == -1 || ctx.gid() == -1) {
            // (uid_t) -1 would make setfsuid/setfsgid change nothing; Linux never sends it (EOVERFLOW instead)
            throw new FsException(Errnos.EINVAL, "caller id -1");
        }
        int[] groups;
        try {
            groups = PosixFs.threadGroups();
            PosixFs.setThreadGroups(ctx.suppGroups());
        } catch (NativeCallException e) {
            if (e.errno() == Errnos.EPERM) {
                // No CAP_SETGID any more (krun_setuid/krun_setgid dropped root after the share was built): nothing
                // can be switched, so the request runs as the VMM's user, as on a VMM that never was root.
                return sys(op);
            }
            throw new FsException(e.errno(), e.call());
        }
        try {
            int fsgid = PosixFs.setfsgid(ctx.gid());
            try {
                int fsuid = PosixFs.setfsuid(ctx.uid());
                try {
                    return sys(op);
                } finally {
                    PosixFs.setfsuid(fsuid);
                }
            } finally {
                PosixFs.setfsgid(fsgid);
            }
        } finally {
            PosixFs.setThreadGroups(groups); // cannot fail where the first call did not: same capability, same size
        }
    }

    /** A name from the guest is one path component: not empty, ".", "..", not longer than NAME_MAX, no '/' or NUL. */
    public static void checkName(byte[] name) throws FsException {
        if (name.length == 0) {
            throw new FsException(Errnos.ENOENT, "empty name");
        }
        if (name.length > NAME_MAX) {
            throw new FsException(Errnos.ENAMETOOLONG);
        }
        if ((name.length == 1 && name[0] == '.') || (name.length == 2 && name[0] == '.' && name[1] == '.')) {
            throw new FsException(Errnos.EINVAL, "dot name");
        }
        for (byte b : name) {
            if (b == '/' || b == 0) {
                throw new FsException(Errnos.EINVAL, "name with '/' or NUL");
            }
        }
    }

    /** A host stat as FUSE attributes, with {@code ino} as the inode number the guest sees. */
    public static Attr attr(long ino, Stat s) {
        return new Attr(ino, s.size(), s.blocks(), s.atimeSec(), (int) s.atimeNsec(), s.mtimeSec(),
                (int) s.mtimeNsec(), s.ctimeSec(), (int) s.ctimeNsec(), s.mode(), (int) s.nlink(), s.uid(), s.gid(),
                (int) s.rdev(), (int) s.blksize());
    }

    /** The permission bits of a guest mode as the host gets them: no setuid/setgid program unless allowed. */
    public static int perms(int mode, boolean dir, boolean allowSetuid) {
        int p = mode & 07777;
        if (!allowSetuid) {
            p &= dir ? ~S_ISUID : ~(S_ISUID | S_ISGID);
        }
        return p;
    }

    /**
     * Clears setuid/setgid of a file the guest opened for writing (unless {@code allowSetuid}): the VMM as root
     * writes with CAP_FSETID, so the host kernel would keep them on a program whose content the guest chose.
     */
    public static void dropSetuid(FileDescriptor fd, boolean allowSetuid) {
        if (allowSetuid) {
            return;
        }
        Stat st = PosixFs.fstat(fd);
        if (st.isRegular() && (st.mode() & (S_ISUID | S_ISGID)) != 0) {
            try {
                PosixFs.fchmod(fd, st.mode() & 07777 & ~(S_ISUID | S_ISGID));
            } catch (NativeCallException e) {
                if (e.errno() != Errnos.EPERM) {
                    throw e;
                }
                // not the owner and no CAP_FOWNER: then no CAP_FSETID either, and the kernel clears them on write
            }
        }
    }

    /** Reads at {@code offset} until {@code dst} is full or the file ends; returns the bytes read. */
    public static int readFully(FileDescriptor fd, long offset, ByteBuffer dst) throws FsException {
        return (int) readFully(fd, offset, new ByteBuffer[] {dst});
    }

    /** Writes all of {@code src} at {@code offset}; returns the bytes written. */
    public static int writeAll(FileDescriptor fd, long offset, ByteBuffer src) throws FsException {
        return (int) writeAll(fd, offset, new ByteBuffer[] {src});
    }

    /** Reads at {@code offset} until every buffer of {@code dsts} is full or the file ends (preadv); the count. */
    public static long readFully(FileDescriptor fd, long offset, ByteBuffer[] dsts) throws FsException {
        return sys(() -> {
            long total = 0;
            while (hasRemaining(dsts)) {
                long n = PosixFs.preadv(fd, dsts, offset + total);
                if (n <= 0) {
                    break;
                }
                total += n;
            }
            return total;
        });
    }

    /** Writes all of {@code srcs} at {@code offset} (pwritev); returns the bytes written. */
    public static long writeAll(FileDescriptor fd, long offset, ByteBuffer[] srcs) throws FsException {
        if (offset < 0) {
            throw new FsException(Errnos.EINVAL, "negative offset");
        }
        return sys(() -> {
            long total = 0;
            while (hasRemaining(srcs)) {
                long n = PosixFs.pwritev(fd, srcs, offset + total);
                if (n == 0) {
                    throw new FsException(Errnos.EIO, "pwritev wrote nothing"); // never spin the worker
                }
                total += n;
            }
            return total;
        });
    }

    private static boolean hasRemaining(ByteBuffer[] bs) {
        for (ByteBuffer b : bs) {
            if (b.hasRemaining()) {
                return true;
            }
        }
        return false;
    }

    /** STATFS of the host file system {@code fd} is on. */
    public static StatFs statfs(FileDescriptor fd) throws FsException {
        return sys(() -> {
            PosixFs.StatVfs s = PosixFs.fstatvfs(fd);
            return new StatFs(s.blocks(), s.bfree(), s.bavail(), s.files(), s.ffree(), (int) s.bsize(),
                    (int) s.namemax(), (int) s.frsize());
        });
    }

    /** The root's exit-status ioctl ({@link FileSystem#IOCTL_EXIT_CODE}); every other ioctl fails ENOTTY. */
    public static IoctlResult exitCodeIoctl(long node, int cmd, long arg, IntConsumer listener) throws FsException {
        if (cmd == FileSystem.IOCTL_EXIT_CODE && node == FileSystem.ROOT_ID) {
            if (listener != null) {
                listener.accept((int) arg);
            }
            return new IoctlResult(0, new byte[0]);
        }
        throw new FsException(Errnos.ENOTTY, "ioctl " + Integer.toHexString(cmd));
    }
}
