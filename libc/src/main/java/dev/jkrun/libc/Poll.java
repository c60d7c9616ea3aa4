package dev.jkrun.libc;

import java.lang.ref.Reference;
import java.util.function.BooleanSupplier;

/**
 * poll(2), read(2) and write(2) for device threads that must wait on a host file descriptor yet stop promptly: a
 * read also watches a wake {@link EventFd}, which {@code close()} paths signal; a write looks at a stop condition
 * between bounded waits.
 */
public final class Poll {
    public static final short POLLIN = 0x1, POLLOUT = 0x4, POLLERR = 0x8, POLLHUP = 0x10, POLLNVAL = 0x20;
    private static final int F_GETFL = 3;
    /** Longest wait for room in {@link #writeFully} between two looks at its stop condition. */
    static final int WRITE_WAIT_SLICE_MS = 100;
    /**
     * Most bytes one write(2) gets on a blocking descriptor once poll said it has room: POLLOUT on a pipe means at
     * least this much room, so the write cannot block.
     */
    public static final int PIPE_BUF = 4096;

    /** What {@link #awaitReadable} saw. */
    public enum Ready { READABLE, WOKEN, TIMEOUT }

    private Poll() {}

    /**
     * Waits until {@code fd} is readable (data, end of file, hang-up or error all count: a read will not block)
     * or {@code wake} is signalled (its counter is left as it is), or {@code timeoutMs} passes (-1: forever).
     * Wake wins when both are ready.
     */
    public static Ready awaitReadable(int fd, EventFd wake, int timeoutMs) {
        NativeBuffer fds = NativeBuffer.allocate(16); // struct pollfd { int fd; short events, revents; } x2
        fds.putInt(0, fd);
        fds.putShort(4, POLLIN);
        fds.putInt(8, wake.fd().raw());
        fds.putShort(12, POLLIN);
        while (true) {
            fds.putShort(6, (short) 0);
            fds.putShort(14, (short) 0);
            int rc = Native.libc().poll(fds.address(), 2, timeoutMs);
            if (rc < 0) {
                int e = Native.errno();
                if (e == Errno.EINTR) {
                    continue;
                }
                throw new NativeCallException("poll", e);
            }
            if (rc == 0) {
                return Ready.TIMEOUT;
            }
            if (fds.getShort(14) != 0) {
                return Ready.WOKEN;
            }
            return Ready.READABLE;
        }
    }

    /**
     * read(2) from a descriptor the caller does not own through {@link FileDescriptor} (stdin): up to {@code len}
     * bytes into {@code buf[off..]}; returns the count, 0 at end of file, or -1 when it would block (EAGAIN).
     */
    public static int read(int fd, byte[] buf, int off, int len) {
        java.util.Objects.checkFromIndexSize(off, len, buf.length);
        byte[] tmp = off == 0 ? buf : new byte[len];
        int n = restarting("read", () -> Native.libc().read(fd, tmp, len));
        if (n > 0 && tmp != buf) {
            System.arraycopy(tmp, 0, buf, off, n);
        }
        return n;
    }

    /**
     * One write(2) of {@code buf[off..off+len)} to a descriptor the caller does not own, retrying on EINTR: the count
     * written, or -1 when it would block (EAGAIN). On a blocking descriptor the caller bounds {@code len} by what
     * readiness promises ({@link #PIPE_BUF} once poll or epoll said writable).
     */
    public static int write(int fd, byte[] buf, int off, int len) {
        java.util.Objects.checkFromIndexSize(off, len, buf.length);
        byte[] data = off == 0 ? buf : java.util.Arrays.copyOfRange(buf, off, off + len);
        return restarting("write", () -> Native.libc().write(fd, data, len));
    }

    /** Runs {@code call} again on EINTR: its count, or -1 for EAGAIN; other errors throw. */
    private static int restarting(String name, java.util.function.LongSupplier call) {
        while (true) {
            long rc = call.getAsLong();
            if (rc >= 0) {
                return (int) rc;
            }
            int e = Native.errno();
            if (e == Errno.EAGAIN) {
                return -1;
            }
            if (e != Errno.EINTR) {
                throw new NativeCallException(name, e);
            }
        }
    }

    /** Whether a write to {@code fd} would not block now (or would fail at once): poll(2) with no wait. */
    public static boolean writable(int fd) {
        NativeBuffer pfd = NativeBuffer.allocate(8);
        pfd.putInt(0, fd);
        pfd.putShort(4, POLLOUT);
        while (true) {
            int rc = Native.libc().poll(pfd.address(), 1, 0);
            Reference.reachabilityFence(pfd);
            if (rc >= 0) {
                return rc > 0;
            }
            int e = Native.errno();
            if (e != Errno.EINTR) {
                throw new NativeCallException("poll", e);
            }
        }
    }

    /** Whether {@code fd} has O_NONBLOCK set (false when it cannot be told). */
    public static boolean isNonBlocking(int fd) {
        int flags = Native.libc().fcntl(fd, F_GETFL, 0);
        return flags >= 0 && (flags & FileDescriptor.O_NONBLOCK) != 0;
    }

    /**
     * write(2) {@code buf[off..off+len)} to a descriptor the caller does not own (a port's output fd), retrying on
     * EINTR and waiting for room with poll(2) — never spinning — when the reader is slow or stopped: on EAGAIN for a
     * non-blocking descriptor, before each write of at most {@link #PIPE_BUF} bytes for a blocking one (so the
     * thread never sits in a write(2) it cannot leave). {@code stop} is looked at before every write and after
     * every wait of at most {@link #WRITE_WAIT_SLICE_MS}; once it says true, the call returns.
     *
     * @return the bytes written: {@code len}, or fewer when {@code stop} ended the call
     */
    public static int writeFully(int fd, byte[] buf, int off, int len, BooleanSupplier stop) {
        if (len <= 0) {
            return 0;
        }
        int flags = Native.libc().fcntl(fd, F_GETFL, 0);
        boolean blocking = flags < 0 || (flags & FileDescriptor.O_NONBLOCK) == 0;
        NativeBuffer data = NativeBuffer.allocate(len);
        data.put(0, buf, off, len);
        NativeBuffer pfd = NativeBuffer.allocate(8);
        int done = 0;
        while (done < len) {
            if (stop.getAsBoolean()) {
                return done;
            }
            if (blocking && !awaitWritable(pfd, fd)) {
                continue;
            }
            int n = blocking ? Math.min(len - done, PIPE_BUF) : len - done;
            long rc = Native.libc().write(fd, data.address() + done, n);
            Reference.reachabilityFence(data);
            if (rc >= 0) {
                done += (int) rc;
                continue;
            }
            int e = Native.errno();
            if (e == Errno.EINTR) {
                continue;
            }
            if (e == Errno.EAGAIN) {
                awaitWritable(pfd, fd);
                continue;
            }
            throw new NativeCallException("write", e);
        }
        return done;
    }

    /** Waits up to {@link #WRITE_WAIT_SLICE_MS} for {@code fd} to take a write (or fail one); true when it will. */
    private static boolean awaitWritable(NativeBuffer pfd, int fd) {
        pfd.putInt(0, fd);
        pfd.putShort(4, POLLOUT);
        pfd.putShort(6, (short) 0);
        int rc = Native.libc().poll(pfd.address(), 1, WRITE_WAIT_SLICE_MS);
        Reference.reachabilityFence(pfd);
        if (rc < 0) {
            int e = Native.errno();
            if (e == Errno.EINTR) {
                return false;
            }
            throw new NativeCallException("poll", e);
        }
        return rc > 0;
    }
}
