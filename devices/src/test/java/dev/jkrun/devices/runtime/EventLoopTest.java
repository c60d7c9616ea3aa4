package dev.jkrun.devices.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.devices.testing.CountingTrigger;
import dev.jkrun.devices.testing.LogCapture;
import dev.jkrun.devices.virtio.DeviceThreads;
import dev.jkrun.libc.EventFd;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.Poll;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link EventLoop} against real eventfds and FIFOs. */
class EventLoopTest {
    static final long TIMEOUT = 5000;
    final DeviceThreads threads = new DeviceThreads("event-loop-test");
    final List<AutoCloseable> closeables = new ArrayList<>();
    @TempDir
    Path dir;

    @AfterEach
    void tearDown() throws Exception {
        for (int i = closeables.size() - 1; i >= 0; i--) {
            closeables.get(i).close();
        }
        assertTrue(CountingTrigger.await(() -> threads.alive().isEmpty(), TIMEOUT), "loop threads left: " + threads.alive());
    }

    private <T extends AutoCloseable> T closing(T c) {
        closeables.add(c);
        return c;
    }

    private EventLoop started() {
        EventLoop loop = closing(new EventLoop("event-loop-test"));
        loop.start(threads);
        return loop;
    }

    /** A FIFO opened read-write and non-blocking: its own reader and writer. */
    private FileDescriptor fifo() throws IOException, InterruptedException {
        Path p = dir.resolve("fifo" + closeables.size());
        assertEquals(0, new ProcessBuilder("mkfifo", p.toString()).start().waitFor());
        return closing(FileDescriptor.open(p.toString(), FileDescriptor.O_RDWR | FileDescriptor.O_NONBLOCK));
    }

    @Test
    void aReadableEventFdRunsItsHandlerOnTheLoopThread() throws Exception {
        EventLoop loop = started();
        EventFd ev = closing(new EventFd());
        CountDownLatch ran = new CountDownLatch(1);
        AtomicBoolean onLoop = new AtomicBoolean();
        AtomicInteger ready = new AtomicInteger();
        loop.register(ev.fd().raw(), EventLoop.IN, events -> {
            ready.set(events);
            onLoop.set(loop.inLoopThread() && Thread.currentThread().getName().equals("event-loop-test"));
            ev.await();
            ran.countDown();
        });
        assertFalse(loop.inLoopThread());
        ev.signal();
        assertTrue(ran.await(TIMEOUT, TimeUnit.MILLISECONDS));
        assertEquals(EventLoop.IN, ready.get());
        assertTrue(onLoop.get());
    }

    @Test
    void interestCanBeModifiedAndParked() throws Exception {
        EventLoop loop = started();
        FileDescriptor fifo = fifo();
        AtomicInteger outs = new AtomicInteger(), ins = new AtomicInteger();
        EventLoop.Registration[] reg = new EventLoop.Registration[1];
        reg[0] = loop.register(fifo.raw(), 0, events -> {
            if ((events & EventLoop.OUT) != 0) {
                outs.incrementAndGet();
                reg[0].interest(0); // level-triggered: writable until parked
            }
            if ((events & EventLoop.IN) != 0) {
                ins.incrementAndGet();
                Poll.read(fifo.raw(), new byte[16], 0, 16);
            }
        });
        reg[0].interest(EventLoop.OUT); // registered parked: the handler may use reg[0] from the first event on
        assertTrue(CountingTrigger.await(() -> outs.get() == 1, TIMEOUT));
        Poll.write(fifo.raw(), new byte[] {1}, 0, 1);
        Thread.sleep(100);
        assertEquals(0, ins.get(), "parked: no events at all");
        reg[0].interest(EventLoop.IN);
        assertTrue(CountingTrigger.await(() -> ins.get() == 1, TIMEOUT));
        Thread.sleep(100);
        assertEquals(1, outs.get(), "IN only after the modify");
        assertEquals(1, ins.get(), "drained: not ready again");
    }

    @Test
    void aRegistrationClosedInABatchNeverRunsAgain() throws Exception {
        EventLoop loop = closing(new EventLoop("event-loop-test"));
        EventFd a = closing(new EventFd()), b = closing(new EventFd());
        AtomicInteger runs = new AtomicInteger();
        EventLoop.Registration[] regs = new EventLoop.Registration[2];
        regs[0] = loop.register(a.fd().raw(), EventLoop.IN, e -> {
            runs.incrementAndGet();
            regs[1].close();
            regs[0].close();
        });
        regs[1] = loop.register(b.fd().raw(), EventLoop.IN, e -> {
            runs.incrementAndGet();
            regs[0].close();
            regs[1].close();
        });
        a.signal();
        b.signal(); // both ready before the first wait: one batch
        loop.start(threads);
        CountDownLatch turn = new CountDownLatch(1);
        loop.execute(turn::countDown);
        assertTrue(turn.await(TIMEOUT, TimeUnit.MILLISECONDS));
        Thread.sleep(100);
        assertEquals(1, runs.get(), "the other handler ran after its registration was closed");
        regs[0].close(); // idempotent
    }

    @Test
    void tasksFromManyThreadsAllRunOnTheLoop() throws Exception {
        EventLoop loop = started();
        int perThread = 2000;
        AtomicInteger done = new AtomicInteger(), offLoop = new AtomicInteger();
        List<Thread> ts = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            Thread t = new Thread(() -> {
                for (int k = 0; k < perThread; k++) {
                    loop.execute(() -> {
                        if (!loop.inLoopThread()) {
                            offLoop.incrementAndGet();
                        }
                        done.incrementAndGet();
                    });
                }
            });
            t.start();
            ts.add(t);
        }
        for (Thread t : ts) {
            t.join();
        }
        assertTrue(CountingTrigger.await(() -> done.get() == 4 * perThread, TIMEOUT), done.get() + " tasks ran");
        assertEquals(0, offLoop.get());
    }

    @Test
    void aTaskQueuedByATaskRunsNextTurnNotStarvingEvents() throws Exception {
        EventLoop loop = started();
        EventFd ev = closing(new EventFd());
        CountDownLatch seen = new CountDownLatch(1);
        loop.register(ev.fd().raw(), EventLoop.IN, e -> {
            ev.await();
            seen.countDown();
        });
        AtomicBoolean stop = new AtomicBoolean();
        Runnable[] again = new Runnable[1];
        again[0] = () -> {
            if (!stop.get()) {
                loop.execute(again[0]);
            }
        };
        loop.execute(again[0]);
        ev.signal();
        assertTrue(seen.await(TIMEOUT, TimeUnit.MILLISECONDS), "a self-requeueing task starved the fd");
        stop.set(true);
    }

    @Test
    void timersRunInDeadlineOrderAndCancelledOnesNever() throws Exception {
        EventLoop loop = started();
        List<String> order = Collections.synchronizedList(new ArrayList<>());
        CountDownLatch last = new CountDownLatch(1);
        long t0 = System.nanoTime();
        loop.schedule(150, () -> {
            order.add("150");
            last.countDown();
        });
        loop.schedule(20, () -> order.add("20"));
        EventLoop.Timer cancelled = loop.schedule(80, () -> order.add("80"));
        loop.schedule(20, () -> order.add("20b"));
        loop.schedule(0, () -> order.add("0"));
        cancelled.cancel();
        assertTrue(last.await(TIMEOUT, TimeUnit.MILLISECONDS));
        assertTrue(System.nanoTime() - t0 >= 150_000_000L, "ran early");
        assertEquals(List.of("0", "20", "20b", "150"), order);
    }

    @Test
    void stopEndsAThreadBlockedInEpollWaitPromptly() throws Exception {
        EventLoop loop = started();
        EventFd ev = closing(new EventFd());
        loop.register(ev.fd().raw(), EventLoop.IN, e -> { });
        loop.schedule(60_000, () -> { });
        Thread.sleep(100);
        assertEquals(1, threads.alive().size());
        long t0 = System.nanoTime();
        loop.stop();
        assertTrue(threads.alive().isEmpty(), "still running after stop");
        assertTrue(System.nanoTime() - t0 < 1_000_000_000L, "stop took " + (System.nanoTime() - t0) / 1_000_000 + " ms");
        loop.stop(); // idempotent
        AtomicBoolean ran = new AtomicBoolean();
        loop.execute(() -> ran.set(true)); // dropped quietly
        assertFalse(ran.get());
    }

    @Test
    void aFailingHandlerIsLoggedAtALimitedRateAndTheLoopGoesOn() throws Exception {
        EventLoop loop = started();
        EventFd ev = closing(new EventFd());
        AtomicInteger calls = new AtomicInteger();
        try (LogCapture log = new LogCapture()) {
            long t0 = System.nanoTime();
            loop.register(ev.fd().raw(), EventLoop.IN, e -> {
                ev.await();
                calls.incrementAndGet();
                throw new IllegalStateException("handler refused");
            });
            for (int i = 0; i < 200; i++) {
                ev.signal();
                int want = i + 1;
                assertTrue(CountingTrigger.await(() -> calls.get() >= want, TIMEOUT));
            }
            for (int i = 0; i < 50; i++) {
                loop.execute(() -> {
                    throw new IllegalArgumentException("task refused");
                });
            }
            CountDownLatch alive = new CountDownLatch(1);
            loop.execute(alive::countDown);
            assertTrue(alive.await(TIMEOUT, TimeUnit.MILLISECONDS), "the loop ended");
            long n = log.count("refused");
            assertTrue(n >= 1 && n <= LogCapture.rateLimitBound((System.nanoTime() - t0) / 1_000_000), n + " lines");
        }
        assertEquals(1, threads.alive().size());
    }

    @Test
    void anErrorEndsTheThreadAndReportsTheDeviceBroken() throws Exception {
        AtomicInteger failures = new AtomicInteger();
        threads.onFailure(failures::incrementAndGet);
        EventLoop loop = started();
        try (LogCapture log = new LogCapture()) {
            loop.execute(() -> {
                throw new StackOverflowError("task recursed");
            });
            assertTrue(CountingTrigger.await(() -> threads.alive().isEmpty(), TIMEOUT));
        }
        assertEquals(1, failures.get());
    }

    @Test
    void closeReleasesTheEpollFdAndTheWakeEventFd() throws Exception {
        int before = FileDescriptor.openCount();
        for (int i = 0; i < 20; i++) {
            try (EventLoop loop = new EventLoop("event-loop-test"); EventFd ev = new EventFd()) {
                loop.register(ev.fd().raw(), EventLoop.IN, e -> ev.await());
                loop.start(threads);
                ev.signal();
                CountDownLatch turn = new CountDownLatch(1);
                loop.execute(turn::countDown);
                assertTrue(turn.await(TIMEOUT, TimeUnit.MILLISECONDS));
            }
        }
        assertEquals(before, FileDescriptor.openCount());
        assertTrue(threads.alive().isEmpty());
        // Only the kinds an event loop opens are counted (epoll, eventfd; pipes where eventfds are emulated): the JVM
        // may open a jar meanwhile (one CI saw 41 -> 42 fds).
        List<String> loopFds = loopKindFds();
        EventLoop loop = new EventLoop("event-loop-test");
        try {
            loop.start(threads);
            assertTrue(loopKindFds().size() > loopFds.size(), "the loop holds its wake-up descriptor");
        } finally {
            loop.close();
        }
        assertEquals(loopFds, loopKindFds());
    }

    /** The process's epoll, eventfd and pipe descriptors, as "fd target" lines, sorted. */
    private static List<String> loopKindFds() throws IOException {
        List<String> out = new ArrayList<>();
        try (var s = Files.list(Path.of("/proc/self/fd"))) {
            for (Path p : (Iterable<Path>) s::iterator) {
                try {
                    String target = Files.readSymbolicLink(p).toString();
                    if (target.equals("anon_inode:[eventpoll]") || target.equals("anon_inode:[eventfd]")
                            || target.startsWith("pipe:")) {
                        out.add(p.getFileName() + " " + target);
                    }
                } catch (IOException closedMeanwhile) {
                    // the directory stream's own fd, or one closed since the listing
                }
            }
        }
        Collections.sort(out);
        return out;
    }
}
