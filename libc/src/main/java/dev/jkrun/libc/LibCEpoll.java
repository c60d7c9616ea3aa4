package dev.jkrun.libc;

import jnr.ffi.annotations.SaveError;

/**
 * The raw epoll(7) surface, package-private: {@link Epoll} is the typed wrapper. Public inside this holder for the
 * same reason as {@link LibCFs.Calls}: jnr-ffi implements it from its own class loader.
 */
final class LibCEpoll {
    private LibCEpoll() {}

    public interface Calls {
        @SaveError int epoll_create1(int flags);
        @SaveError int epoll_ctl(int epfd, int op, int fd, long event);
        @SaveError int epoll_wait(int epfd, long events, int maxevents, int timeout);
    }
}
