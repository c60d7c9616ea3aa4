package dev.jkrun.libc;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * An owned file descriptor. {@link #close()} is idempotent and thread-safe; {@link #raw()} is for the native
 * layers (kvm, hvf, this package) only and throws once closed, so a stale number is never reused by mistake.
 */
public final class FileDescriptor implements AutoCloseable {
    private static final AtomicInteger OPEN = new AtomicInteger();
    private final AtomicInteger fd;
    private final String what;

    private FileDescriptor(int fd, String what) {
        this.fd = new AtomicInteger(fd);
        this.what = what;
        OPEN.incrementAndGet();
    }

    /** Takes ownership of {@code fd}, which was returned by a call named {@code what}. */
    public static FileDescriptor adopt(int fd, String what) {
        if (fd < 0) {
            throw new IllegalArgumentException("negative fd for " + what);
        }
        return new FileDescriptor(fd, what);
    }

    /** Opens {@code path} with open(2) flags. */
    public static FileDescriptor open(String path, int flags) {
        int rc = Native.libc().open(path, flags | O_CLOEXEC, 0);
        if (rc < 0) {
            throw new NativeCallException("open(" + path + ")", Native.errno());
        }
        return new FileDescriptor(rc, path);
    }

    /**
     * A new descriptor of ours for the open file behind {@code fd} (F_DUPFD_CLOEXEC), which stays the caller's: an
     * epoll set then watches a number that nobody else registers or closes.
     */
    public static FileDescriptor duplicate(int fd, String what) {
        int rc = Native.libc().fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (rc < 0) {
            throw new NativeCallException("fcntl(F_DUPFD_CLOEXEC, " + fd + ")", Native.errno());
        }
        return new FileDescriptor(rc, what);
    }

    /**
     * A new memfd (memfd_create(2), close-on-exec) of {@code size} bytes: anonymous memory that has a descriptor, so
     * another process (a vhost-user backend) can map the same pages.
     */
    public static FileDescriptor memfd(String name, long size) {
        int rc = Native.libc().memfd_create(name, MFD_CLOEXEC);
        if (rc < 0) {
            throw new NativeCallException("memfd_create(" + name + ")", Native.errno());
        }
        FileDescriptor fd = new FileDescriptor(rc, "memfd " + name);
        try {
            PosixFs.ftruncate(fd, size);
        } catch (RuntimeException e) {
            fd.close();
            throw e;
        }
        return fd;
    }

    /**
     * The access mode ({@link #O_RDONLY}, {@link #O_WRONLY} or {@link #O_RDWR}) of the open file behind {@code fd}, a
     * descriptor the caller holds (fcntl F_GETFL); an O_PATH descriptor reads as O_RDONLY. Throws EBADF when
     * {@code fd} is not open.
     */
    public static int accessMode(int fd) {
        int flags = Native.libc().fcntl(fd, F_GETFL, 0);
        if (flags < 0) {
            throw new NativeCallException("fcntl(F_GETFL, " + fd + ")", Native.errno());
        }
        return flags & O_ACCMODE;
    }

    private static final int MFD_CLOEXEC = 1;
    private static final int F_GETFD = 1, F_SETFD = 2, F_GETFL = 3, F_SETFL = 4, F_DUPFD_CLOEXEC = 1030, FD_CLOEXEC = 1;
    private static final int O_ACCMODE = 3;

    public static final int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CLOEXEC = 0x80000, O_NONBLOCK = HostOs.O_NONBLOCK;

    /** Sets O_NONBLOCK on the open file (shared with every descriptor of it, as fcntl F_SETFL is). */
    public void setNonBlocking() {
        int flags = Native.libc().fcntl(raw(), F_GETFL, 0);
        if (flags < 0 || Native.libc().fcntl(raw(), F_SETFL, flags | O_NONBLOCK) < 0) {
            throw new NativeCallException("fcntl(F_SETFL O_NONBLOCK, " + this + ")", Native.errno());
        }
    }

    /** Sets or clears this descriptor's close-on-exec flag. */
    public void setCloseOnExec(boolean on) {
        int flags = Native.libc().fcntl(raw(), F_GETFD, 0);
        if (flags < 0 || Native.libc().fcntl(raw(), F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC) < 0) {
            throw new NativeCallException("fcntl(F_SETFD, " + this + ")", Native.errno());
        }
    }

    public int raw() {
        int v = fd.get();
        if (v < 0) {
            throw new IllegalStateException(what + " is closed");
        }
        return v;
    }

    public boolean isOpen() { return fd.get() >= 0; }

    public String what() { return what; }

    /** Number of descriptors opened through this class and not yet closed (for leak tests). */
    public static int openCount() { return OPEN.get(); }

    @Override
    public void close() {
        int v = fd.getAndSet(-1);
        if (v >= 0) {
            OPEN.decrementAndGet();
            Native.libc().close(v);
        }
    }

    @Override
    public String toString() { return what + "[" + fd.get() + "]"; }
}
