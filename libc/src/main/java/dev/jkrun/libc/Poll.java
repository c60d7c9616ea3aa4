package dev.jkrun.libc;

import jnr.ffi.Memory;
import jnr.ffi.Pointer;

/**
 * poll(2) and read(2) for device threads that must wait on a host file descriptor yet stop promptly: the wait
 * also watches a wake {@link EventFd}, which {@code close()} paths signal.
 */
public final class Poll {
    public static final short POLLIN = 0x1, POLLERR = 0x8, POLLHUP = 0x10, POLLNVAL = 0x20;

    /** What {@link #awaitReadable} saw. */
    public enum Ready { READABLE, WOKEN, TIMEOUT }

    private Poll() {}

    /**
     * Waits until {@code fd} is readable (data, end of file, hang-up or error all count: a read will not block)
     * or {@code wake} is signalled (its counter is left as it is), or {@code timeoutMs} passes (-1: forever).
     * Wake wins when both are ready.
     */
    public static Ready awaitReadable(int fd, EventFd wake, int timeoutMs) {
        Pointer fds = Memory.allocateDirect(Native.runtime(), 16); // struct pollfd { int fd; short events, revents; } x2
        fds.putInt(0, fd);
        fds.putShort(4, POLLIN);
        fds.putInt(8, wake.fd().raw());
        fds.putShort(12, POLLIN);
        while (true) {
            fds.putShort(6, (short) 0);
            fds.putShort(14, (short) 0);
            int rc = Native.libc().poll(fds, 2, timeoutMs);
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
        byte[] tmp = off == 0 ? buf : new byte[len];
        while (true) {
            long rc = Native.libc().read(fd, tmp, len);
            if (rc >= 0) {
                if (tmp != buf) {
                    System.arraycopy(tmp, 0, buf, off, (int) rc);
                }
                return (int) rc;
            }
            int e = Native.errno();
            if (e == Errno.EINTR) {
                continue;
            }
            if (e == Errno.EAGAIN) {
                return -1;
            }
            throw new NativeCallException("read", e);
        }
    }

    /**
     * write(2) all of {@code buf[off..off+len)} to a descriptor the caller does not own (a port's output fd),
     * retrying on EINTR and waiting out EAGAIN on a non-blocking descriptor.
     */
    public static void writeFully(int fd, byte[] buf, int off, int len) {
        byte[] tmp = off == 0 ? buf : java.util.Arrays.copyOfRange(buf, off, off + len);
        int done = 0;
        while (done < len) {
            byte[] chunk = done == 0 ? tmp : java.util.Arrays.copyOfRange(tmp, done, len);
            long rc = Native.libc().write(fd, chunk, len - done);
            if (rc >= 0) {
                done += (int) rc;
                continue;
            }
            int e = Native.errno();
            if (e == Errno.EINTR) {
                continue;
            }
            if (e == Errno.EAGAIN) {
                Thread.onSpinWait();
                continue;
            }
            throw new NativeCallException("write", e);
        }
    }
}
