package dev.jkrun.devices.block;

import dev.jkrun.libc.FileDescriptor;

/**
 * A descriptor that several queue threads make calls on while another may close the image: {@link #close} does not
 * wait for them, and the number is closed by whichever comes last, so that a call never goes to the same number
 * reopened meanwhile as another file (a device is closed after its threads were asked to stop, and a stop may give up
 * on a thread still in I/O).
 */
final class InFlightDescriptor implements AutoCloseable {
    private final FileDescriptor fd;
    private int users;
    private boolean closed;

    InFlightDescriptor(FileDescriptor fd) {
        this.fd = fd;
    }

    /** The descriptor for one call, to be {@link #release}d after it; null once closed. */
    synchronized FileDescriptor acquire() {
        if (closed) {
            return null;
        }
        users++;
        return fd;
    }

    synchronized void release() {
        if (--users == 0 && closed) {
            fd.close();
        }
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            if (users == 0) {
                fd.close();
            }
        }
    }
}
