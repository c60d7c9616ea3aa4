package dev.jkrun.libc;

/**
 * A doorbell between threads, and between KVM (ioeventfd, irqfd) and device threads: an eventfd(2) on Linux; on
 * macOS, which has no eventfd, a pipe whose read end is {@link #fd()} (what an event loop watches) and whose write end
 * takes one byte per {@link #signal()} (libkrun's macOS EventFd is a pipe too). {@code -Djkrun.eventfd=pipe} makes
 * every EventFd a pipe on Linux as well, so the device runtime runs as it would on macOS; the hypervisor then gets no
 * ioeventfds or irqfds ({@link #kernelEventFds()}). {@link #await()} blocks in read(2); {@link #signal()} adds 1.
 */
public final class EventFd implements AutoCloseable {
    private static final int EFD_CLOEXEC = 0x80000;
    private static final boolean PIPES = !System.getProperty("os.name", "").equals("Linux")
            || "pipe".equals(System.getProperty("jkrun.eventfd"));
    /** A signal's byte on a pipe; what one await drains at most (more left in the pipe keeps it readable). */
    private static final int DRAIN = 64;
    private final FileDescriptor fd;
    /** The pipe's write end; null for an eventfd. */
    private final FileDescriptor writeEnd;

    public EventFd() {
        if (PIPES) {
            int[] fds = new int[2];
            if (Native.libc().pipe(fds) < 0) {
                throw new NativeCallException("pipe", Native.errno());
            }
            fd = FileDescriptor.adopt(fds[0], "event pipe");
            writeEnd = FileDescriptor.adopt(fds[1], "event pipe (write)");
            try {
                fd.setCloseOnExec(true);
                writeEnd.setCloseOnExec(true);
                writeEnd.setNonBlocking(); // a full pipe is already readable: a signal never blocks
            } catch (RuntimeException e) {
                fd.close();
                writeEnd.close();
                throw e;
            }
            return;
        }
        int rc = Native.libc().eventfd(0, EFD_CLOEXEC);
        if (rc < 0) {
            throw new NativeCallException("eventfd", Native.errno());
        }
        fd = FileDescriptor.adopt(rc, "eventfd");
        writeEnd = null;
    }

    /**
     * Whether EventFds are the kernel's eventfd(2), which KVM's ioeventfd and irqfd take; false where they are
     * pipes (macOS, or -Djkrun.eventfd=pipe).
     */
    public static boolean kernelEventFds() { return !PIPES; }

    /** The descriptor to watch for a signal (the eventfd, or the pipe's read end). */
    public FileDescriptor fd() { return fd; }

    /** The counter's increment, 1, as the 8 native-endian bytes write(2) takes. */
    private static final byte[] ONE = java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.nativeOrder()).putLong(0, 1).array();

    /** Adds 1 to the counter, waking a reader (or KVM, for an irqfd). */
    public void signal() {
        FileDescriptor target = writeEnd != null ? writeEnd : fd;
        int len = writeEnd != null ? 1 : 8;
        while (true) {
            long rc = Native.libc().write(target.raw(), ONE, len);
            if (rc == len) {
                return;
            }
            int e = Native.errno();
            if (rc < 0 && e == HostOs.EAGAIN && writeEnd != null) {
                return; // the pipe is full of earlier signals: readable already
            }
            if (rc < 0 && e != Errno.EINTR) {
                throw new NativeCallException(writeEnd != null ? "write(event pipe)" : "write(eventfd)", e);
            }
        }
    }

    /**
     * Blocks until signalled; returns and clears the count (a pipe: the signals drained, at most 64 at a time;
     * any left keep it readable).
     */
    public long await() {
        byte[] b = new byte[writeEnd != null ? DRAIN : 8];
        while (true) {
            long rc = Native.libc().read(fd.raw(), b, b.length);
            if (writeEnd != null && rc > 0) {
                return rc;
            }
            if (writeEnd != null && rc == 0) { // end of file: cannot happen while this object holds the write end
                throw new NativeCallException("read(event pipe): end of file", Errno.EIO);
            }
            if (rc == 8) {
                return java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.nativeOrder()).getLong();
            }
            int e = Native.errno();
            if (rc < 0 && e != Errno.EINTR) {
                throw new NativeCallException(writeEnd != null ? "read(event pipe)" : "read(eventfd)", e);
            }
        }
    }

    @Override
    public void close() {
        fd.close();
        if (writeEnd != null) {
            writeEnd.close();
        }
    }
}
