package dev.jkrun.libc;

import static dev.jkrun.libc.FfmCalls.I;
import static dev.jkrun.libc.FfmCalls.J;
import static dev.jkrun.libc.FfmCalls.UNREAD;
import static dev.jkrun.libc.FfmCalls.call;
import static dev.jkrun.libc.FfmCalls.enter;
import static dev.jkrun.libc.FfmCalls.rethrow;
import static dev.jkrun.libc.FfmCalls.saving;

import dev.jkrun.libc.FfmCalls.PerThread;
import java.lang.invoke.MethodHandle;

/**
 * {@link LibCEpoll.Calls} as FFM downcalls (JDK 22+).
 * Each function's handle is bound the first time it is called (its holder class's initialization): the JDK spins
 * code for each new call shape, so binding all of them up front cost a start-up ~140 ms.
 */
final class FfmEpoll implements LibCEpoll.Calls {
    private static final class FnEpollCreate1 {
        static final MethodHandle H = saving("epoll_create1", I, I);
    }

    private static final class FnEpollCtl {
        static final MethodHandle H = saving("epoll_ctl", I, I, I, I, J);
    }

    private static final class FnEpollWait {
        static final MethodHandle H = saving("epoll_wait", I, I, J, I, I);
    }

    @Override
    public int epoll_create1(int flags) {
        PerThread t = enter();
        try {
            return (int) call(FnEpollCreate1.H, t.state, flags);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int epoll_ctl(int epfd, int op, int fd, long event) {
        PerThread t = enter();
        try {
            return (int) call(FnEpollCtl.H, t.state, epfd, op, fd, event);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int epoll_wait(int epfd, long events, int maxevents, int timeout) {
        PerThread t = enter();
        try {
            return (int) call(FnEpollWait.H, t.state, epfd, events, maxevents, timeout);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }
}
