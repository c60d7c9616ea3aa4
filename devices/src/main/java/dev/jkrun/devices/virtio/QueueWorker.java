package dev.jkrun.devices.virtio;

import dev.jkrun.devices.RateLimitedLog;
import dev.jkrun.devices.Trigger;
import dev.jkrun.devices.runtime.EventLoop;
import dev.jkrun.devices.virtio.queue.DescriptorChain;
import dev.jkrun.devices.virtio.queue.InvalidChainException;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.libc.EventFd;
import dev.jkrun.memory.GuestMemory;
import java.util.function.IntFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves one request queue on its device's {@link EventLoop}: on each driver notification it takes every available
 * chain, hands it to the device's {@link Handler}, returns it with the length the handler wrote, and interrupts the
 * driver when the ring's notification rules say so. Malformed chains go back with length 0 and the queue keeps
 * working; a handler that throws an exception is a device bug, logged (at a limited rate), and the chain still goes
 * back. Nothing a guest does escapes the drain; an {@link Error} ends the loop's thread at its {@link DeviceThreads}
 * boundary, which reports the device broken (DEVICE_NEEDS_RESET). A drain stops between chains once the loop is
 * stopping ({@link DeviceThreads#stopRequested()}); handlers with long loops check it too.
 *
 * <p>A worker may have a budget of used bytes per drain ({@link #serve(DeviceThreads, String, ActivationContext,
 * IntFunction, RateLimitedLog, long)}): once the chains served in one drain add up to it, the drain interrupts the
 * driver for what it returned and queues the rest as a task on the loop, so one busy queue takes turns with the
 * loop's other events and timers instead of holding the thread for as long as the driver keeps posting buffers.
 */
public final class QueueWorker {
    /**
     * Serves one chain; returns the number of bytes written into its device-writable part. The chain (and its
     * reader and writer) is the worker's one reused object: valid until {@code handle} returns, not to be kept.
     */
    @FunctionalInterface
    public interface Handler {
        int handle(DescriptorChain chain) throws InvalidChainException;
    }

    private static final Logger LOG = LoggerFactory.getLogger(QueueWorker.class);
    private final String name;
    private final GuestMemory mem;
    private final Queue queue;
    private final EventFd notify;
    private final Trigger interrupt;
    private final Handler handler;
    private final RateLimitedLog failures;
    private final long bytesPerTurn;
    /** The one chain every pop fills: serving a request allocates no chain, reader or writer. */
    private final DescriptorChain chain = new DescriptorChain();
    /** The loop {@link #attach} registered with: where the rest of a drain over budget goes. */
    private EventLoop loop;

    /** @param failures the device's log for failed requests (one per device; the device flushes it at reset) */
    public QueueWorker(String name, GuestMemory mem, ActiveQueue queue, Trigger interrupt, Handler handler,
                       RateLimitedLog failures) {
        this(name, mem, queue, interrupt, handler, failures, Long.MAX_VALUE);
    }

    /**
     * @param bytesPerTurn the used bytes after which a drain yields to the loop and goes on in a task (at least one
     *     chain is served per drain whatever its length)
     */
    public QueueWorker(String name, GuestMemory mem, ActiveQueue queue, Trigger interrupt, Handler handler,
                       RateLimitedLog failures, long bytesPerTurn) {
        if (bytesPerTurn <= 0) {
            throw new IllegalArgumentException("bytesPerTurn must be positive: " + bytesPerTurn);
        }
        this.bytesPerTurn = bytesPerTurn;
        this.name = name;
        this.mem = mem;
        this.queue = queue.queue();
        this.notify = queue.notification();
        this.interrupt = interrupt;
        this.handler = handler;
        this.failures = failures;
    }

    /**
     * One loop, started on {@code threads} and named {@code name}, serving every queue of {@code ctx} with the
     * handler {@code handlers} gives for its index. Close the loop to stop.
     */
    public static EventLoop serve(DeviceThreads threads, String name, ActivationContext ctx, IntFunction<Handler> handlers,
                                  RateLimitedLog failures) {
        return serve(threads, name, ctx, handlers, failures, Long.MAX_VALUE);
    }

    /** {@link #serve(DeviceThreads, String, ActivationContext, IntFunction, RateLimitedLog)} with a budget per drain. */
    public static EventLoop serve(DeviceThreads threads, String name, ActivationContext ctx, IntFunction<Handler> handlers,
                                  RateLimitedLog failures, long bytesPerTurn) {
        return serve(threads, name, ctx, java.util.stream.IntStream.range(0, ctx.queues().size()).toArray(), handlers,
                failures, bytesPerTurn);
    }

    /**
     * One loop serving only the queues at {@code queues} (indexes into {@code ctx}): a device that spreads its queues
     * over several threads (virtio-fs with several request queues) starts one such loop per group.
     */
    public static EventLoop serve(DeviceThreads threads, String name, ActivationContext ctx, int[] queues,
                                  IntFunction<Handler> handlers, RateLimitedLog failures, long bytesPerTurn) {
        EventLoop loop = new EventLoop(name);
        try {
            for (int q : queues) {
                new QueueWorker(name + "-q" + q, ctx.memory(), ctx.queue(q), ctx.usedBuffer(), handlers.apply(q),
                        failures, bytesPerTurn).attach(loop);
            }
            loop.start(threads);
        } catch (RuntimeException | Error e) {
            loop.close();
            throw e;
        }
        return loop;
    }

    /** Drains on every notification, and once when the loop starts (buffers may be there already). */
    public void attach(EventLoop loop) {
        this.loop = loop;
        loop.register(notify.fd().raw(), EventLoop.IN, events -> {
            notify.await(); // readable: does not block
            drain();
        });
        loop.execute(this::drain);
    }

    /** Serves every available chain (up to the budget, the rest in a task); on the loop thread. */
    public void drain() {
        if (!queue.isReady()) {
            return;
        }
        boolean used = false;
        long spent = 0;
        do {
            queue.disableNotification(mem);
            while (!DeviceThreads.stopRequested() && next()) {
                int len = 0;
                try {
                    len = handler.handle(chain);
                } catch (InvalidChainException e) {
                    LOG.debug("{}: {}", name, e.getMessage());
                } catch (RuntimeException e) {
                    failures.warn("{}: request failed: {}", name, e.toString());
                }
                queue.addUsed(mem, chain.headIndex(), len);
                used = true;
                if (queue.needsNotification(mem)) {
                    interrupt.trigger();
                    used = false;
                }
                spent += Integer.toUnsignedLong(len);
                if (spent >= bytesPerTurn && loop != null) {
                    // Notifications stay off: the task drains what the driver adds meanwhile, then turns them on.
                    if (used && queue.needsNotification(mem)) {
                        interrupt.trigger();
                    }
                    loop.execute(this::drain);
                    return;
                }
            }
        } while (!DeviceThreads.stopRequested() && queue.enableNotification(mem));
        if (used && queue.needsNotification(mem)) {
            interrupt.trigger();
        }
    }

    /** Pops the next well-formed chain into {@link #chain}; false when there is none. */
    private boolean next() {
        while (!DeviceThreads.stopRequested()) { // a driver may keep adding malformed chains
            try {
                return queue.pop(mem, chain);
            } catch (InvalidChainException e) {
                LOG.debug("{}: malformed chain: {}", name, e.getMessage());
                if (!e.isChainError()) {
                    return false;
                }
                queue.addUsed(mem, e.headIndex(), 0);
                if (queue.needsNotification(mem)) {
                    interrupt.trigger();
                }
            }
        }
        return false;
    }
}
