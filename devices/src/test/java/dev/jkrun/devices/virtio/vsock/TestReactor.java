package dev.jkrun.devices.virtio.vsock;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * A {@link Reactor} a test drives by hand on its own thread: {@link #pump()} reports every watched descriptor ready
 * for all it is interested in (level-triggered readiness, spurious when it is not: non-blocking sockets answer
 * "would block", which the muxer must take in its stride), {@link #fire} reports chosen events (HUP, ERR), and
 * timers run on a manual clock ({@link #advance}) or the real one.
 */
final class TestReactor implements Reactor {
    private final boolean realClock;
    private long now;
    private long seq;
    private final Map<Integer, W> watches = new LinkedHashMap<>();
    private final PriorityQueue<T> timers = new PriorityQueue<>(Comparator.comparingLong((T t) -> t.due).thenComparingLong(t -> t.seq));

    private final class W implements Watch {
        final int fd;
        int interest;
        final Handler handler;
        boolean closed;

        W(int fd, int interest, Handler handler) {
            this.fd = fd;
            this.interest = interest;
            this.handler = handler;
        }

        @Override
        public void interest(int events) {
            if (closed) {
                throw new IllegalStateException("interest on a closed watch of fd " + fd);
            }
            interest = events;
        }

        @Override
        public void close() {
            if (!closed) {
                closed = true;
                watches.remove(fd);
            }
        }
    }

    private static final class T implements Timer {
        final long due;
        final long seq;
        final Runnable task;
        boolean cancelled;

        T(long due, long seq, Runnable task) {
            this.due = due;
            this.seq = seq;
            this.task = task;
        }

        @Override
        public void cancel() { cancelled = true; }
    }

    TestReactor(boolean realClock) { this.realClock = realClock; }

    @Override
    public Watch watch(int fd, int interest, Handler handler) {
        if (watches.containsKey(fd)) {
            throw new IllegalStateException("fd " + fd + " watched twice");
        }
        W w = new W(fd, interest, handler);
        watches.put(fd, w);
        return w;
    }

    @Override
    public Timer schedule(long delayMillis, Runnable task) {
        T t = new T(nowMillis() + delayMillis, seq++, task);
        timers.add(t);
        return t;
    }

    @Override
    public long nowMillis() { return realClock ? System.nanoTime() / 1_000_000 : now; }

    /** One round: every watch with an interest gets it as its events, then due timers run. */
    void pump() {
        for (W w : new ArrayList<>(watches.values())) {
            if (!w.closed && w.interest != 0) {
                w.handler.onReady(w.interest);
            }
        }
        runTimers();
    }

    void fire(int fd, int events) {
        W w = watches.get(fd);
        if (w == null) {
            throw new IllegalStateException("fd " + fd + " is not watched");
        }
        w.handler.onReady(events);
    }

    /** Moves the manual clock on, running the timers that fall due on the way. */
    void advance(long millis) {
        now += millis;
        runTimers();
    }

    private void runTimers() {
        long t = nowMillis();
        while (!timers.isEmpty() && timers.peek().due <= t) {
            T timer = timers.poll();
            if (!timer.cancelled) {
                timer.task.run();
            }
        }
    }

    boolean watched(int fd) { return watches.containsKey(fd); }

    int interest(int fd) { return watches.get(fd).interest; }

    int watchCount() { return watches.size(); }

    /** Timers not cancelled and not run yet. */
    int liveTimers() { return (int) timers.stream().filter(t -> !t.cancelled).count(); }

    List<Integer> watchedFds() { return List.copyOf(watches.keySet()); }
}
