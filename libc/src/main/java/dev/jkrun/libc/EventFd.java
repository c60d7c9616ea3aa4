package dev.jkrun.libc;

import jnr.ffi.Memory;
import jnr.ffi.Pointer;

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

    /** Adds 1 to the counter, waking a reader (or KVM, for an irqfd). */
    public void signal() {
        Pointer p = Memory.allocateDirect(Native.runtime(), 8);
        p.putLong(0, 1);
        while (true) {
            long rc = Native.libc().write(fd.raw(), p, 8);
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
        Pointer p = Memory.allocateDirect(Native.runtime(), 8);
        while (true) {
            long rc = Native.libc().read(fd.raw(), p, 8);
            if (rc == 8) {
                return p.getLong(0);
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
