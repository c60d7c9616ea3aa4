package dev.jkrun.libc;

/**
 * An eventfd(2): the doorbell between KVM (ioeventfd, irqfd) and device threads. {@link #await()} blocks the
 * calling platform thread in read(2); {@link #signal()} adds 1.
 */
public final class EventFd implements AutoCloseable {
    private static final int EFD_CLOEXEC = 0x80000;
    private final FileDescriptor fd;

    public EventFd() {
        int rc = Native.libc().eventfd(0, EFD_CLOEXEC);
        if (rc < 0) {
            throw new NativeCallException("eventfd", Native.errno());
        }
        fd = FileDescriptor.adopt(rc, "eventfd");
    }

    public FileDescriptor fd() { return fd; }

    /** The counter's increment, 1, as the 8 native-endian bytes write(2) takes. */
    private static final byte[] ONE = java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.nativeOrder()).putLong(0, 1).array();

    /** Adds 1 to the counter, waking a reader (or KVM, for an irqfd). */
    public void signal() {
        while (true) {
            long rc = Native.libc().write(fd.raw(), ONE, 8);
            if (rc == 8) {
                return;
            }
            int e = Native.errno();
            if (rc < 0 && e != Errno.EINTR) {
                throw new NativeCallException("write(eventfd)", e);
            }
        }
    }

    /** Blocks until the counter is non-zero; returns and clears it. */
    public long await() {
        byte[] b = new byte[8];
        while (true) {
            long rc = Native.libc().read(fd.raw(), b, 8);
            if (rc == 8) {
                return java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.nativeOrder()).getLong();
            }
            int e = Native.errno();
            if (rc < 0 && e != Errno.EINTR) {
                throw new NativeCallException("read(eventfd)", e);
            }
        }
    }

    @Override
    public void close() { fd.close(); }
}
