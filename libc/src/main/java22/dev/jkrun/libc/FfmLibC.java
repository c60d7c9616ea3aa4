package dev.jkrun.libc;

import static dev.jkrun.libc.FfmCalls.I;
import static dev.jkrun.libc.FfmCalls.J;
import static dev.jkrun.libc.FfmCalls.UNREAD;
import static dev.jkrun.libc.FfmCalls.call;
import static dev.jkrun.libc.FfmCalls.count;
import static dev.jkrun.libc.FfmCalls.cstring;
import static dev.jkrun.libc.FfmCalls.enter;
import static dev.jkrun.libc.FfmCalls.plain;
import static dev.jkrun.libc.FfmCalls.rethrow;
import static dev.jkrun.libc.FfmCalls.saving;
import static dev.jkrun.libc.FfmCalls.savingVariadic;
import static dev.jkrun.libc.FfmCalls.string;

import dev.jkrun.libc.FfmCalls.PerThread;
import java.lang.invoke.MethodHandle;

/**
 * {@link LibC} as FFM downcalls (JDK 22+). Arrays and strings are copied through the calling thread's scratch
 * area, as JNR copies them; errno is saved where the interface says {@code @SaveError}.
 * Each function's handle is bound the first time it is called (its holder class's initialization): the JDK spins
 * code for each new call shape, so binding all of them up front cost a start-up ~140 ms.
 */
final class FfmLibC implements LibC {
    private static final class FnOpen {
        static final MethodHandle H = savingVariadic("open", 2, I, J, I, I);
    }

    private static final class FnClose {
        static final MethodHandle H = saving("close", I, I);
    }

    private static final class FnRead {
        static final MethodHandle H = saving("read", J, I, J, J);
    }

    private static final class FnWrite {
        static final MethodHandle H = saving("write", J, I, J, J);
    }

    private static final class FnEventfd {
        static final MethodHandle H = saving("eventfd", I, I, I);
    }

    private static final class FnPipe {
        static final MethodHandle H = saving("pipe", I, J);
    }

    private static final class FnMemfdCreate {
        static final MethodHandle H = saving("memfd_create", I, J, I);
    }

    private static final class FnMmap {
        static final MethodHandle H = saving("mmap", J, J, J, I, I, I, J);
    }

    private static final class FnMunmap {
        static final MethodHandle H = saving("munmap", I, J, J);
    }

    private static final class FnMremap {
        static final MethodHandle H = savingVariadic("mremap", 4, J, J, J, J, I, J);
    }

    private static final class FnMadvise {
        static final MethodHandle H = saving("madvise", I, J, J, I);
    }

    private static final class FnIoctl {
        static final MethodHandle H = savingVariadic("ioctl", 2, I, I, J, J);
    }

    private static final class FnPoll {
        static final MethodHandle H = saving("poll", I, J, J, I);
    }

    private static final class FnFcntl {
        static final MethodHandle H = savingVariadic("fcntl", 2, I, I, I, J);
    }

    private static final class FnIsatty {
        static final MethodHandle H = saving("isatty", I, I);
    }

    private static final class FnTcgetattr {
        static final MethodHandle H = saving("tcgetattr", I, I, J);
    }

    private static final class FnTcsetattr {
        static final MethodHandle H = saving("tcsetattr", I, I, I, J);
    }

    private static final class FnCfmakeraw {
        static final MethodHandle H = plain("cfmakeraw", null, J);
    }

    private static final class FnPthreadSelf {
        static final MethodHandle H = plain("pthread_self", J);
    }

    private static final class FnPthreadKill {
        static final MethodHandle H = plain("pthread_kill", I, J, I);
    }

    private static final class FnPthreadSigmask {
        static final MethodHandle H = plain("pthread_sigmask", I, I, J, J);
    }

    private static final class FnSigtimedwait {
        static final MethodHandle H = saving("sigtimedwait", I, J, J, J);
    }

    private static final class FnLibcCurrentSigrtmin {
        static final MethodHandle H = plain("__libc_current_sigrtmin", I);
    }

    private static final class FnGetpid {
        static final MethodHandle H = plain("getpid", I);
    }

    private static final class FnGettid {
        static final MethodHandle H = plain("gettid", I);
    }

    private static final class FnStrerror {
        static final MethodHandle H = plain("strerror", J, I);
    }

    private static final class FnDup {
        static final MethodHandle H = saving("dup", I, I);
    }

    private static final class FnSetresuid {
        static final MethodHandle H = saving("setresuid", I, I, I, I);
    }

    private static final class FnSetresgid {
        static final MethodHandle H = saving("setresgid", I, I, I, I);
    }

    private static final class FnGetresuid {
        static final MethodHandle H = saving("getresuid", I, J, J, J);
    }

    private static final class FnGetresgid {
        static final MethodHandle H = saving("getresgid", I, J, J, J);
    }

    private static final class FnSetgroups {
        static final MethodHandle H = saving("setgroups", I, J, J);
    }

    private static final class FnGetgroups {
        static final MethodHandle H = saving("getgroups", I, I, J);
    }

    private static final class FnGetgid {
        static final MethodHandle H = plain("getgid", I);
    }

    @Override
    public int open(String path, int flags, int mode) {
        PerThread t = enter();
        try {
            long pathAt = t.in(cstring(path));
            return (int) call(FnOpen.H, t.state, pathAt, flags, mode);
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
    public long read(int fd, long buf, long count) {
        PerThread t = enter();
        try {
            return (long) call(FnRead.H, t.state, fd, buf, count);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long read(int fd, byte[] buf, long count) {
        PerThread t = enter();
        try {
            long bufAt = t.out(buf);
            long rc = (long) call(FnRead.H, t.state, fd, bufAt, count(count,buf.length));
            PerThread.back(bufAt, buf, rc);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long write(int fd, long buf, long count) {
        PerThread t = enter();
        try {
            return (long) call(FnWrite.H, t.state, fd, buf, count);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long write(int fd, byte[] buf, long count) {
        PerThread t = enter();
        try {
            long bufAt = t.in(buf);
            return (long) call(FnWrite.H, t.state, fd, bufAt, count(count,buf.length));
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int eventfd(int initval, int flags) {
        PerThread t = enter();
        try {
            return (int) call(FnEventfd.H, t.state, initval, flags);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int pipe(int[] fds) {
        PerThread t = enter();
        try {
            long at = t.out(fds);
            int rc = (int) call(FnPipe.H, t.state, at);
            PerThread.back(at, fds);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int memfd_create(String name, int flags) {
        PerThread t = enter();
        try {
            long nameAt = t.in(cstring(name));
            return (int) call(FnMemfdCreate.H, t.state, nameAt, flags);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    /** {@code unused} is there for JNR (see {@link LibC#mmap}); the downcall passes mmap's six arguments. */
    @Override
    public long mmap(long addr, long length, int prot, int flags, int fd, long offset, long unused) {
        PerThread t = enter();
        try {
            return (long) call(FnMmap.H, t.state, addr, length, prot, flags, fd, offset);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int munmap(long addr, long length) {
        PerThread t = enter();
        try {
            return (int) call(FnMunmap.H, t.state, addr, length);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long mremap(long oldAddress, long oldSize, long newSize, int flags, long newAddress) {
        PerThread t = enter();
        try {
            return (long) call(FnMremap.H, t.state, oldAddress, oldSize, newSize, flags, newAddress);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int madvise(long addr, long length, int advice) {
        PerThread t = enter();
        try {
            return (int) call(FnMadvise.H, t.state, addr, length, advice);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int ioctl(int fd, long request, long arg) {
        PerThread t = enter();
        try {
            return (int) call(FnIoctl.H, t.state, fd, request, arg);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int poll(long fds, long nfds, int timeout) {
        PerThread t = enter();
        try {
            return (int) call(FnPoll.H, t.state, fds, nfds, timeout);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int fcntl(int fd, int cmd, int arg) {
        PerThread t = enter();
        try {
            return (int) call(FnFcntl.H, t.state, fd, cmd, (long) arg);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int isatty(int fd) {
        PerThread t = enter();
        try {
            return (int) call(FnIsatty.H, t.state, fd);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int tcgetattr(int fd, long termios) {
        PerThread t = enter();
        try {
            return (int) call(FnTcgetattr.H, t.state, fd, termios);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int tcsetattr(int fd, int actions, long termios) {
        PerThread t = enter();
        try {
            return (int) call(FnTcsetattr.H, t.state, fd, actions, termios);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public void cfmakeraw(long termios) {
        try {
            call(FnCfmakeraw.H, UNREAD, termios);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long pthread_self() {
        try {
            return (long) call(FnPthreadSelf.H, UNREAD);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int pthread_kill(long thread, int sig) {
        try {
            return (int) call(FnPthreadKill.H, UNREAD, thread, sig);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int pthread_sigmask(int how, long set, long oldset) {
        try {
            return (int) call(FnPthreadSigmask.H, UNREAD, how, set, oldset);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int sigtimedwait(long set, long info, long timeout) {
        PerThread t = enter();
        try {
            return (int) call(FnSigtimedwait.H, t.state, set, info, timeout);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int __libc_current_sigrtmin() {
        try {
            return (int) call(FnLibcCurrentSigrtmin.H, UNREAD);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int getpid() {
        try {
            return (int) call(FnGetpid.H, UNREAD);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long gettid() {
        try {
            return (int) call(FnGettid.H, UNREAD);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public String strerror(int errnum) {
        try {
            return string((long) call(FnStrerror.H, UNREAD, errnum));
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int dup(int fd) {
        PerThread t = enter();
        try {
            return (int) call(FnDup.H, t.state, fd);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int setresuid(int ruid, int euid, int suid) {
        PerThread t = enter();
        try {
            return (int) call(FnSetresuid.H, t.state, ruid, euid, suid);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int setresgid(int rgid, int egid, int sgid) {
        PerThread t = enter();
        try {
            return (int) call(FnSetresgid.H, t.state, rgid, egid, sgid);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int getresuid(int[] ruid, int[] euid, int[] suid) {
        PerThread t = enter();
        try {
            long ruidAt = t.out(ruid);
            long euidAt = t.out(euid);
            long suidAt = t.out(suid);
            int rc = (int) call(FnGetresuid.H, t.state, ruidAt, euidAt, suidAt);
            PerThread.back(ruidAt, ruid);
            PerThread.back(euidAt, euid);
            PerThread.back(suidAt, suid);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int getresgid(int[] rgid, int[] egid, int[] sgid) {
        PerThread t = enter();
        try {
            long rgidAt = t.out(rgid);
            long egidAt = t.out(egid);
            long sgidAt = t.out(sgid);
            int rc = (int) call(FnGetresgid.H, t.state, rgidAt, egidAt, sgidAt);
            PerThread.back(rgidAt, rgid);
            PerThread.back(egidAt, egid);
            PerThread.back(sgidAt, sgid);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int setgroups(long size, int[] list) {
        PerThread t = enter();
        try {
            long listAt = t.in(list);
            return (int) call(FnSetgroups.H, t.state, count(size,list==null?0:list.length), listAt);
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
    public int getgid() {
        try {
            return (int) call(FnGetgid.H, UNREAD);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }
}
