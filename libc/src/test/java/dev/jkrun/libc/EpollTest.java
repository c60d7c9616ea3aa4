package dev.jkrun.libc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** {@link Epoll} on eventfds: the packed event layout, modify, delete, errors. */
class EpollTest {
    @Test
    void readyDescriptorsComeBackWithTheirTokens() {
        try (Epoll ep = new Epoll(); EventFd a = new EventFd(); EventFd b = new EventFd()) {
            Epoll.Events ev = new Epoll.Events(4);
            ep.add(a.fd().raw(), Epoll.EPOLLIN, 0x1122_3344_5566_7788L);
            ep.add(b.fd().raw(), Epoll.EPOLLIN, -2);
            assertEquals(0, ep.await(ev, 0));
            b.signal();
            assertEquals(1, ep.await(ev, 1000));
            assertEquals(-2, ev.data(0));
            assertEquals(Epoll.EPOLLIN, ev.events(0));
            a.signal();
            assertEquals(2, ep.await(ev, 1000), "level-triggered: b is still readable");
            assertEquals(java.util.Set.of(0x1122_3344_5566_7788L, -2L), java.util.Set.of(ev.data(0), ev.data(1)));
            ep.modify(a.fd().raw(), Epoll.EPOLLOUT, 7);
            ep.delete(b.fd().raw());
            assertEquals(1, ep.await(ev, 1000));
            assertEquals(7, ev.data(0));
            assertEquals(Epoll.EPOLLOUT, ev.events(0));
            assertThrows(IndexOutOfBoundsException.class, () -> ev.data(1));
            NativeCallException e = assertThrows(NativeCallException.class, () -> ep.delete(b.fd().raw()));
            assertEquals(Errno.ENOENT, e.errno());
        }
    }
}
