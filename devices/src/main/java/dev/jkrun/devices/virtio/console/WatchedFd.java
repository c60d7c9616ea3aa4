package dev.jkrun.devices.virtio.console;

import dev.jkrun.devices.runtime.EventLoop;
import dev.jkrun.libc.Errno;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;

/**
 * A host descriptor of a port, watched on the device's loop through a duplicate of our own: one host descriptor may
 * be a port's input and output (a terminal) or serve two ports, and one epoll set cannot hold the same number twice.
 * Starts parked (interest 0). A descriptor epoll cannot watch (a regular file, /dev/null: EPERM) is always ready,
 * as poll(2) says of it; {@link #pollable()} is false then and the owner does not wait for it.
 */
public final class WatchedFd implements AutoCloseable {
    private final FileDescriptor dup;
    private final EventLoop.Registration registration;

    public WatchedFd(EventLoop loop, int fd, EventLoop.Handler handler) {
        FileDescriptor d = FileDescriptor.duplicate(fd, "console port fd " + fd);
        EventLoop.Registration r = loop.register(d.raw(), 0, handler);
        try {
            r.interest(EventLoop.IN); // EPERM here, not later, for what epoll cannot watch
            r.interest(0);
        } catch (NativeCallException e) {
            r.close();
            if (e.errno() != Errno.EPERM) {
                d.close();
                throw e;
            }
            r = null;
        }
        this.dup = d;
        this.registration = r;
    }

    public boolean pollable() { return registration != null; }

    public void interest(int events) {
        if (registration != null) {
            registration.interest(events);
        }
    }

    @Override
    public void close() {
        if (registration != null) {
            registration.close();
        }
        dup.close();
    }
}
