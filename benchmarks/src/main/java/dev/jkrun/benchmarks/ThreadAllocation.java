package dev.jkrun.benchmarks;

import java.lang.management.ManagementFactory;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.LockSupport;

/**
 * The heap bytes that the threads whose names end in a suffix (a VM's {@code -vcpu0}) allocate while a run goes on:
 * a poller reads each live one's counter (HotSpot's per-thread allocated bytes) every 0.2 ms and keeps the largest
 * value. What a thread allocates between the last poll and its end is missed; that tail is the same for every run of
 * one guest, so it cancels in a slope over two exit counts. The poller finds threads by enumerating them (no stack
 * walks, no safepoints), but it still costs CPU: runs it watches are not the timed ones.
 */
final class ThreadAllocation implements AutoCloseable {
    private final com.sun.management.ThreadMXBean mx =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    private final Map<Long, Long> seen = new ConcurrentHashMap<>();
    private final Thread poller;
    private volatile boolean done;

    ThreadAllocation(String nameSuffix) {
        poller = new Thread(() -> {
            while (!done) {
                Thread[] all = new Thread[Thread.activeCount() + 16];
                int n = Thread.enumerate(all);
                for (int i = 0; i < n; i++) {
                    Thread t = all[i];
                    if (t.getName().endsWith(nameSuffix)) {
                        long b = mx.getThreadAllocatedBytes(t.getId());
                        if (b > 0) {
                            seen.merge(t.getId(), b, Math::max);
                        }
                    }
                }
                LockSupport.parkNanos(200_000);
            }
        }, "alloc-poller");
        poller.setDaemon(true);
        poller.start();
    }

    /** The bytes seen so far, all matching threads together. */
    long bytes() { return seen.values().stream().mapToLong(Long::longValue).sum(); }

    @Override
    public void close() throws InterruptedException {
        done = true;
        poller.join();
    }
}
