package dev.jkrun.libc;

import jnr.ffi.annotations.IgnoreError;
import jnr.ffi.annotations.SaveError;

/**
 * The raw libc surface: everything above goes through the typed wrappers in this package (or {@link Ioctl} for
 * the kvm module). Calls that can fail save errno. Public only because jnr-ffi generates its implementation in
 * another class loader, which cannot implement a package-private interface; no instance ever leaves
 * {@link Native}.
 */
public interface LibC {
    @SaveError int open(String path, int flags, int mode);
    @SaveError int close(int fd);
    @SaveError long read(int fd, long buf, long count);
    @SaveError long read(int fd, byte[] buf, long count);
    @SaveError long write(int fd, long buf, long count);
    @SaveError long write(int fd, @jnr.ffi.annotations.In byte[] buf, long count);
    @SaveError int eventfd(int initval, int flags);
    @SaveError int pipe(@jnr.ffi.annotations.Out int[] fds);
    @SaveError int memfd_create(String name, int flags);
    /**
     * mmap(2) with one extra, ignored argument: jffi 1.3.13's six-argument fast path passes a corrupt sixth
     * argument on this platform (mmap then fails with EINVAL inside glibc for offset 0); seven arguments take the
     * generic path. The x86_64 SysV ABI makes the extra argument harmless (the callee never reads it).
     */
    @SaveError long mmap(long addr, long length, int prot, int flags, int fd, long offset, long unused);
    @SaveError int munmap(long addr, long length);
    @SaveError long mremap(long oldAddress, long oldSize, long newSize, int flags, long newAddress);
    @SaveError int madvise(long addr, long length, int advice);
    @SaveError int ioctl(int fd, long request, long arg);
    @SaveError int poll(long fds, long nfds, int timeout);
    @SaveError int fcntl(int fd, int cmd, int arg);
    @SaveError int isatty(int fd);
    @SaveError int tcgetattr(int fd, long termios);
    @SaveError int tcsetattr(int fd, int actions, long termios);
    @IgnoreError void cfmakeraw(long termios);
    @IgnoreError long pthread_self();
    @IgnoreError int pthread_kill(long thread, int sig);
    @IgnoreError int pthread_sigmask(int how, long set, long oldset);
    @SaveError int sigtimedwait(long set, long info, long timeout);
    @IgnoreError int __libc_current_sigrtmin();
    @IgnoreError int getpid();
    @IgnoreError long gettid();
    @IgnoreError String strerror(int errnum);
    @SaveError int dup(int fd);
    @SaveError int setresuid(int ruid, int euid, int suid);
    @SaveError int setresgid(int rgid, int egid, int sgid);
    @SaveError int getresuid(@jnr.ffi.annotations.Out int[] ruid, @jnr.ffi.annotations.Out int[] euid, @jnr.ffi.annotations.Out int[] suid);
    @SaveError int getresgid(@jnr.ffi.annotations.Out int[] rgid, @jnr.ffi.annotations.Out int[] egid, @jnr.ffi.annotations.Out int[] sgid);
    @SaveError int setgroups(long size, int[] list);
    @SaveError int getgroups(int size, @jnr.ffi.annotations.Out int[] list);
    @IgnoreError int getgid();
}
