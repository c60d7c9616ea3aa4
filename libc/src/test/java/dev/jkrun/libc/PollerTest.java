package dev.jkrun.libc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The {@link Poller} contract, the same for epoll and for {@link PollSet} (poll(2), macOS's device loop): tokens,
 * level triggering, modify and delete, hang-ups, and a change made while another thread waits.
 */
@Timeout(30)
class PollerTest {
    static Stream<Arguments> pollers() {
        return Stream.of(Arguments.of("epoll", (Supplier<Poller>) Epoll::new),
                Arguments.of("poll", (Supplier<Poller>) PollSet::new));
    }

    /** A pipe: {read, write}. */
    static FileDescriptor[] pipe() {
        int[] fds = new int[2];
        assertEquals(0, Native.libc().pipe(fds));
        return new FileDescriptor[] {FileDescriptor.adopt(fds[0], "r"), FileDescriptor.adopt(fds[1], "w")};
    }

    static void closeAll(FileDescriptor... fds) {
        for (FileDescriptor f : fds) {
            f.close();
        }
    }

    static void write(FileDescriptor fd) { assertEquals(1, Native.libc().write(fd.raw(), new byte[] {1}, 1)); }

    @ParameterizedTest(name = "{0}")
    @MethodSource("pollers")
    void readyDescriptorsComeBackWithTheirTokensUntilDrained(String name, Supplier<Poller> make) {
        FileDescriptor[] a = pipe(), b = pipe();
        try (Poller p = make.get()) {
            Poller.Events ev = new Poller.Events(4);
            p.add(a[0].raw(), Poller.IN, 0x1122_3344_5566_7788L);
            p.add(b[0].raw(), Poller.IN, -2);
            assertEquals(0, p.await(ev, 0));
            write(b[1]);
            assertEquals(1, p.await(ev, 1000));
            assertEquals(-2, ev.data(0));
            assertEquals(Poller.IN, ev.events(0));
            write(a[1]);
            assertEquals(2, p.await(ev, 1000), "level-triggered: b is still readable");
            assertEquals(Set.of(0x1122_3344_5566_7788L, -2L), Set.of(ev.data(0), ev.data(1)));
            p.modify(a[0].raw(), 0, 7); // no interest: nothing but errors and hang-ups
            p.delete(b[0].raw());
            assertEquals(0, p.await(ev, 50));
            p.modify(a[0].raw(), Poller.IN, 8);
            assertEquals(1, p.await(ev, 1000));
            assertEquals(8, ev.data(0));
            assertThrows(IndexOutOfBoundsException.class, () -> ev.data(1));
            assertEquals(Errno.ENOENT, assertThrows(NativeCallException.class, () -> p.delete(b[0].raw())).errno());
            assertEquals(Errno.ENOENT, assertThrows(NativeCallException.class, () -> p.modify(b[0].raw(), Poller.IN, 1)).errno());
            assertEquals(Errno.EEXIST, assertThrows(NativeCallException.class, () -> p.add(a[0].raw(), Poller.IN, 1)).errno());
        } finally {
            closeAll(a[0], a[1], b[0], b[1]);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("pollers")
    void writeRoomAndHangUps(String name, Supplier<Poller> make) {
        FileDescriptor[] a = pipe();
        try (Poller p = make.get()) {
            Poller.Events ev = new Poller.Events(2);
            p.add(a[1].raw(), Poller.OUT, 1);
            assertEquals(1, p.await(ev, 1000));
            assertEquals(Poller.OUT, ev.events(0));
            p.delete(a[1].raw());
            p.add(a[0].raw(), Poller.IN, 2);
            a[1].close(); // the writer goes: the reader sees a hang-up
            assertEquals(1, p.await(ev, 1000));
            assertTrue((ev.events(0) & Poller.HUP) != 0, Integer.toHexString(ev.events(0)));
        } finally {
            closeAll(a);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("pollers")
    void aPeerThatShutsDownItsSendingSideIsReadHangUp(String name, Supplier<Poller> make) {
        FileDescriptor[] s = Sockets.socketPair(Sockets.SOCK_STREAM, false);
        try (Poller p = make.get()) {
            Poller.Events ev = new Poller.Events(2);
            p.add(s[0].raw(), Poller.IN | Poller.RDHUP, 3);
            Sockets.shutdown(s[1], Sockets.SHUT_WR);
            assertEquals(1, p.await(ev, 1000));
            assertEquals(Poller.IN | Poller.RDHUP, ev.events(0) & (Poller.IN | Poller.RDHUP | Poller.HUP));
        } finally {
            closeAll(s);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("pollers")
    void aDescriptorAddedWhileAnotherThreadWaitsIsSeenByThatWait(String name, Supplier<Poller> make) throws Exception {
        FileDescriptor[] a = pipe();
        try (Poller p = make.get()) {
            Poller.Events ev = new Poller.Events(2);
            CompletableFuture<Long> seen = CompletableFuture.supplyAsync(() -> {
                while (true) {
                    if (p.await(ev, 10_000) > 0) {
                        return ev.data(0);
                    }
                }
            });
            Thread.sleep(100); // the wait has begun, on an empty set
            write(a[1]);
            p.add(a[0].raw(), Poller.IN, 42);
            assertEquals(42L, seen.get(5, TimeUnit.SECONDS));
        } finally {
            closeAll(a);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("pollers")
    void aDescriptorClosedWhileRegisteredIsForgotten(String name, Supplier<Poller> make) {
        FileDescriptor[] a = pipe();
        try (Poller p = make.get()) {
            Poller.Events ev = new Poller.Events(2);
            p.add(a[0].raw(), Poller.IN, 5);
            a[0].close(); // epoll forgets the file; poll reports it once (POLLNVAL as ERR) and drops it
            int n = p.await(ev, 100);
            if (n > 0) {
                assertEquals(5, ev.data(0));
                assertTrue((ev.events(0) & Poller.ERR) != 0);
            }
            assertEquals(0, p.await(ev, 50), "no event on every wait after");
        } finally {
            a[1].close();
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("pollers")
    void aFullBatchLeavesTheRestForTheNextWait(String name, Supplier<Poller> make) {
        FileDescriptor[][] pipes = new FileDescriptor[5][];
        try (Poller p = make.get()) {
            for (int i = 0; i < pipes.length; i++) {
                pipes[i] = pipe();
                write(pipes[i][1]);
                p.add(pipes[i][0].raw(), Poller.IN, i);
            }
            Poller.Events ev = new Poller.Events(2);
            java.util.Set<Long> seen = new java.util.HashSet<>();
            for (int round = 0; round < 5; round++) {
                assertEquals(2, p.await(ev, 1000));
                seen.add(ev.data(0));
                seen.add(ev.data(1));
            }
            assertEquals(5, seen.size(), "every ready descriptor gets its turn: " + seen);
        } finally {
            for (FileDescriptor[] f : pipes) {
                if (f != null) {
                    closeAll(f);
                }
            }
        }
    }
}
