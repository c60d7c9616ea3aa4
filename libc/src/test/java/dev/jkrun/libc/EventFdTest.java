package dev.jkrun.libc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * An {@link EventFd} as its users rely on it, whether it is an eventfd (Linux) or a pipe (macOS; this class runs
 * both ways: see the pom's macos-notifications execution): a signal makes {@link EventFd#fd()} readable and wakes
 * a blocked await; signals before an await are not lost; many signals never block the signaller.
 */
@Timeout(30)
class EventFdTest {
    @Test
    void whichKindThisRunUses() {
        assertEquals(!"pipe".equals(System.getProperty("jkrun.eventfd")), EventFd.kernelEventFds());
    }

    @Test
    void aSignalMakesItReadableAndAwaitClearsIt() {
        try (EventFd e = new EventFd(); Poller p = Poller.open()) {
            Poller.Events ev = new Poller.Events(1);
            p.add(e.fd().raw(), Poller.IN, 9);
            assertEquals(0, p.await(ev, 0));
            e.signal();
            e.signal();
            assertEquals(1, p.await(ev, 1000));
            assertEquals(2, e.await()); // the count: eventfd's counter, or the pipe's two bytes
            assertEquals(0, p.await(ev, 0));
        }
    }

    @Test
    void aBlockedAwaitWakesOnASignalFromAnotherThread() throws Exception {
        try (EventFd e = new EventFd()) {
            CompletableFuture<Long> r = CompletableFuture.supplyAsync(e::await);
            Thread.sleep(50);
            e.signal();
            assertTrue(r.get(5, TimeUnit.SECONDS) >= 1);
        }
    }

    @Test
    void aFloodOfSignalsNeverBlocksTheSignaller() {
        try (EventFd e = new EventFd()) {
            for (int i = 0; i < 200_000; i++) { // more than any pipe holds
                e.signal();
            }
            long drained = 0;
            try (Poller p = Poller.open()) {
                Poller.Events ev = new Poller.Events(1);
                p.add(e.fd().raw(), Poller.IN, 1);
                while (p.await(ev, 0) > 0) {
                    drained += e.await();
                }
            }
            assertTrue(drained >= 1);
            if (EventFd.kernelEventFds()) {
                assertEquals(200_000, drained);
            }
        }
    }
}
