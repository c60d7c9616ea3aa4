package dev.jkrun.devices.runtime;

import dev.jkrun.devices.RateLimitedLog;
import dev.jkrun.devices.virtio.DeviceThreads;
import dev.jkrun.libc.Poller;
import dev.jkrun.libc.Errno;
import dev.jkrun.libc.EventFd;
import dev.jkrun.libc.NativeCallException;
import java.util.ArrayDeque;
import java.util.PriorityQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One device thread waiting on many host descriptors at once ({@link Poller}: epoll, or poll(2) on macOS;
 * level-triggered), running tasks and timers
 * in between: queue notifications, host sockets, terminals, pipes. Everything a device does with its queues runs on
 * this one thread, so device state needs no locks beyond what other threads touch.
 *
 * <p>Each turn waits for at most {@link #BATCH} events (no wait while tasks are pending, else until the next timer),
 * dispatches them, runs the timers that are due, then every task queued before the turn's drain began (tasks a task
 * queues run next turn, so epoll is never starved). A handler or task that throws a RuntimeException is a device bug:
 * logged at a limited rate, and the loop goes on. An {@link Error} ends the thread at its {@link DeviceThreads}
 * boundary, which reports the device broken (DEVICE_NEEDS_RESET).
 *
 * <p>Registrations are keyed by a token unique to each, not by fd: a number closed and reused while its events are
 * still in a batch never reaches the new owner's handler.
 */
public final class EventLoop implements AutoCloseable {
    /** interest and ready bits, the values of EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDHUP */
    public static final int IN = Poller.IN, OUT = Poller.OUT, ERR = Poller.ERR, HUP = Poller.HUP, RDHUP = Poller.RDHUP;
    /** Most events one epoll_wait returns. */
    static final int BATCH = 64;
    private static final long JOIN_TIMEOUT_MS = 5000;
    private static final long WAKE_TOKEN = 0;
    private static final Logger LOG = LoggerFactory.getLogger(EventLoop.class);

    /** Called on the loop thread with the ready bits. */
    @FunctionalInterface
    public interface Handler {
        void onReady(int events);
    }

    /**
     * EPOLL_CTL_DEL on close (idempotent; does not close the fd); interest() = EPOLL_CTL_MOD. Interest 0 parks the
     * descriptor (it leaves the epoll set, so not even ERR or HUP is reported) until a non-zero interest again.
     * Close the registration before the descriptor: epoll keeps watching a file another descriptor still refers to.
     */
    public interface Registration extends AutoCloseable {
        void interest(int events);

        @Override
        void close();
    }

    /** A task scheduled with {@link #schedule}. */
    public interface Timer {
        /** The task will not run (unless it is running or has run). From any thread. */
        void cancel();
    }

    private final String name;
    private final Poller poller;
    private final EventFd wake;
    private final RateLimitedLog failures;
    private final ConcurrentHashMap<Long, Reg> registrations = new ConcurrentHashMap<>();
    private final AtomicLong nextToken = new AtomicLong(WAKE_TOKEN + 1);
    private final AtomicBoolean wakePending = new AtomicBoolean();
    private final Object lock = new Object();
    /** Guarded by {@link #lock}. */
    private ArrayDeque<Runnable> tasks = new ArrayDeque<>();
    /** Guarded by {@link #lock}. */
    private final PriorityQueue<TimerTask> timers = new PriorityQueue<>();
    private long timerSeq;
    private volatile Thread thread;
    private volatile boolean stopping;
    private boolean closed;

    /** Creates the poller and the wake EventFd; no thread yet. */
    public EventLoop(String name) {
        this.name = name;
        this.failures = new RateLimitedLog(LOG, name);
        Poller ep = Poller.open();
        EventFd w = null;
        try {
            w = new EventFd();
            ep.add(w.fd().raw(), IN, WAKE_TOKEN);
        } catch (RuntimeException e) {
            if (w != null) {
                w.close();
            }
            ep.close();
            throw e;
        }
        this.poller = ep;
        this.wake = w;
    }

    public String name() { return name; }

    /** Starts the loop's one thread, named {@link #name()}, through the device's {@code threads}. */
    public void start(DeviceThreads threads) {
        synchronized (lock) {
            if (thread != null || stopping) {
                throw new IllegalStateException(name + ": already started or stopped");
            }
            thread = threads.start(name, this::run);
        }
    }

    /** Watches {@code fd} for {@code interest} (level-triggered); from any thread. The fd stays the caller's. */
    public Registration register(int fd, int interest, Handler handler) {
        Reg r = new Reg(fd, nextToken.getAndIncrement(), handler);
        registrations.put(r.token, r);
        try {
            r.interest(interest);
        } catch (RuntimeException e) {
            registrations.remove(r.token);
            throw e;
        }
        return r;
    }

    /** Runs {@code task} on the loop thread soon; from any thread. Dropped once the loop is stopping. */
    public void execute(Runnable task) {
        synchronized (lock) {
            if (stopping) {
                return;
            }
            tasks.add(task);
        }
        wakeUp();
    }

    /** Runs {@code task} on the loop thread after at least {@code delayMillis}; from any thread. */
    public Timer schedule(long delayMillis, Runnable task) {
        long deadline = System.nanoTime() + Math.max(0, delayMillis) * 1_000_000L;
        TimerTask t;
        synchronized (lock) {
            t = new TimerTask(deadline, timerSeq++, task);
            if (!stopping) {
                timers.add(t);
            }
        }
        wakeUp(); // the wait's timeout may have to shrink
        return t;
    }

    public boolean inLoopThread() { return Thread.currentThread() == thread; }

    /**
     * Asks the thread to stop and wakes it, without waiting: a device with several loops asks them all first, so
     * their threads wind down together, then {@link #stop()}s each. Idempotent; returns the thread to wait for (null
     * when there is none, or when called from it).
     */
    public Thread requestStop() {
        Thread t;
        synchronized (lock) {
            stopping = true;
            tasks.clear();
            timers.clear();
            t = thread;
        }
        if (t == null || t == Thread.currentThread()) {
            return null;
        }
        DeviceThreads.requestStop(t);
        try {
            wake.signal();
        } catch (RuntimeException ignored) {
            // closed: the thread is leaving anyway
        }
        return t;
    }

    /** Wakes the thread and waits (bounded) for it to end; idempotent, and from the loop thread it only asks. */
    public void stop() {
        Thread t = requestStop();
        if (t == null) {
            return;
        }
        try {
            t.join(JOIN_TIMEOUT_MS);
            if (t.isAlive()) {
                t.interrupt(); // a handler stuck in an interruptible host write (a Java stream) leaves then
                t.join(JOIN_TIMEOUT_MS);
            }
            if (t.isAlive()) {
                LOG.error("{}: event loop did not stop within {} ms", name, 2 * JOIN_TIMEOUT_MS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        failures.flush();
    }

    /** {@link #stop()}, then closes the poller and the wake EventFd. Registrations left are dropped. */
    @Override
    public void close() {
        stop();
        synchronized (lock) {
            if (closed) {
                return;
            }
            closed = true;
        }
        registrations.clear();
        poller.close();
        wake.close();
    }

    private void wakeUp() {
        if (!inLoopThread() && wakePending.compareAndSet(false, true)) {
            try {
                wake.signal();
            } catch (RuntimeException e) {
                wakePending.set(false);
                if (!stopping) {
                    throw e;
                }
            }
        }
    }

    private void run() {
        Poller.Events events = new Poller.Events(BATCH);
        while (!stopping) {
            poller.await(events, timeoutMs());
            for (int i = 0; i < events.size() && !stopping; i++) {
                long token = events.data(i);
                if (token == WAKE_TOKEN) {
                    // Drained before the flag drops: a wake-up that lands in between finds its task run this turn.
                    wake.await(); // readable: does not block
                    wakePending.set(false);
                    continue;
                }
                Reg r = registrations.get(token);
                if (r != null && !r.closed) { // closed by an earlier handler of this batch: never called again
                    guarded(r.handler, events.events(i));
                }
            }
            runTimers();
            runTasks();
        }
    }

    private int timeoutMs() {
        synchronized (lock) {
            if (!tasks.isEmpty()) {
                return 0;
            }
            TimerTask next = timers.peek();
            if (next == null) {
                return -1;
            }
            long ms = (next.deadline - System.nanoTime() + 999_999L) / 1_000_000L; // rounded up: never wake early
            return (int) Math.max(0, Math.min(ms, Integer.MAX_VALUE));
        }
    }

    private void runTimers() {
        long now = System.nanoTime();
        while (!stopping) {
            TimerTask due;
            synchronized (lock) {
                TimerTask next = timers.peek();
                if (next == null || next.deadline - now > 0) {
                    return;
                }
                due = timers.poll();
            }
            guarded(due.task);
        }
    }

    private void runTasks() {
        ArrayDeque<Runnable> batch;
        synchronized (lock) {
            if (tasks.isEmpty()) {
                return;
            }
            batch = tasks;
            tasks = new ArrayDeque<>();
        }
        Runnable task;
        while (!stopping && (task = batch.poll()) != null) {
            guarded(task);
        }
    }

    private void guarded(Handler h, int ready) {
        try {
            h.onReady(ready);
        } catch (RuntimeException e) {
            failures.warn("{}: handler failed: {}", name, e.toString());
        }
    }

    private void guarded(Runnable task) {
        try {
            task.run();
        } catch (RuntimeException e) {
            failures.warn("{}: task failed: {}", name, e.toString());
        }
    }

    private final class Reg implements Registration {
        private final int fd;
        private final long token;
        private final Handler handler;
        private volatile boolean closed;
        /** Whether fd is in the epoll set; guarded by this. */
        private boolean armed;

        Reg(int fd, long token, Handler handler) {
            this.fd = fd;
            this.token = token;
            this.handler = handler;
        }

        @Override
        public synchronized void interest(int events) {
            if (closed) {
                return;
            }
            if (events == 0) {
                disarm();
            } else if (armed) {
                poller.modify(fd, events, token);
            } else {
                poller.add(fd, events, token);
                armed = true;
            }
        }

        @Override
        public synchronized void close() {
            if (closed) {
                return;
            }
            closed = true;
            registrations.remove(token);
            try {
                disarm();
            } catch (IllegalStateException e) {
                // the loop is closed: its epoll set is gone with it
            }
        }

        private void disarm() {
            if (!armed) {
                return;
            }
            armed = false;
            try {
                poller.delete(fd);
            } catch (NativeCallException e) {
                // the fd was closed first (its file gone, so the entry with it): nothing left to delete
                if (e.errno() != Errno.EBADF && e.errno() != Errno.ENOENT) {
                    throw e;
                }
            }
        }
    }

    private final class TimerTask implements Timer, Comparable<TimerTask> {
        private final long deadline;
        private final long seq;
        private final Runnable task;

        TimerTask(long deadline, long seq, Runnable task) {
            this.deadline = deadline;
            this.seq = seq;
            this.task = task;
        }

        @Override
        public int compareTo(TimerTask o) {
            int c = Long.compare(deadline - o.deadline, 0);
            return c != 0 ? c : Long.compare(seq, o.seq);
        }

        @Override
        public void cancel() {
            synchronized (lock) {
                timers.remove(this);
            }
        }
    }
}
