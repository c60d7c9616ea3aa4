package dev.jkrun.devices.virtio;

import dev.jkrun.devices.RateLimitedLog;
import dev.jkrun.devices.Trigger;
import dev.jkrun.devices.virtio.queue.DescriptorChain;
import dev.jkrun.devices.virtio.queue.InvalidChainException;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.libc.EventFd;
import dev.jkrun.memory.GuestMemory;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One thread serving one request queue: it waits for the driver's notification, takes every available chain,
 * hands it to the device's {@link Handler}, returns it with the length the handler wrote, and interrupts the
 * driver when the ring's notification rules say so. Malformed chains go back with length 0 and the queue keeps
 * working; a handler that throws an exception is a device bug, logged (at a limited rate), and the chain still goes
 * back. Nothing a guest does escapes this loop; an {@link Error} ends the thread at its {@link DeviceThreads}
 * boundary, which reports the device broken (DEVICE_NEEDS_RESET).
 */
public final class QueueWorker {
    /** Serves one chain; returns the number of bytes written into its device-writable part. */
    @FunctionalInterface
    public interface Handler {
        int handle(DescriptorChain chain) throws InvalidChainException;
    }

    private static final Logger LOG = LoggerFactory.getLogger(QueueWorker.class);
    private static final long JOIN_TIMEOUT_MS = 5000;
    private final String name;
    private final GuestMemory mem;
    private final Queue queue;
    private final EventFd event;
    private final Trigger interrupt;
    private final Handler handler;
    private final DeviceThreads threads;
    private final RateLimitedLog failures;
    private Thread thread;
    private volatile boolean stopping;

    /** @param threads the device's threads; the worker's thread is started there */
    public QueueWorker(DeviceThreads threads, String name, GuestMemory mem, Queue queue, EventFd event, Trigger interrupt,
                       Handler handler) {
        this.threads = threads;
        this.name = name;
        this.mem = mem;
        this.queue = queue;
        this.event = event;
        this.interrupt = interrupt;
        this.handler = handler;
        this.failures = new RateLimitedLog(LOG, name);
    }

    public synchronized QueueWorker start() {
        if (thread != null) {
            throw new IllegalStateException(name + " already started");
        }
        thread = threads.start(name, this::run);
        return this;
    }

    /**
     * Stops the thread and waits for it; the chain in progress, if any, is finished first (handlers with long loops
     * check {@link DeviceThreads#stopRequested()}).
     */
    public void stop() {
        Thread thread;
        synchronized (this) {
            thread = this.thread;
        }
        stopping = true;
        if (thread == null) {
            return;
        }
        DeviceThreads.requestStop(thread);
        try {
            event.signal();
        } catch (RuntimeException ignored) {
            // already closed: the thread is leaving anyway
        }
        try {
            thread.join(JOIN_TIMEOUT_MS);
            if (thread.isAlive()) {
                LOG.error("{}: worker did not stop within {} ms", name, JOIN_TIMEOUT_MS);
            }
            failures.flush();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void run() {
        drain();
        while (!stopping) {
            event.await();
            if (!stopping) {
                drain();
            }
        }
    }

    private void drain() {
        if (!queue.isReady()) {
            return;
        }
        boolean used = false;
        do {
            queue.disableNotification(mem);
            Optional<DescriptorChain> c;
            while (!stopping && (c = next()).isPresent()) {
                DescriptorChain chain = c.get();
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
            }
        } while (!stopping && queue.enableNotification(mem));
        if (used && queue.needsNotification(mem)) {
            interrupt.trigger();
        }
    }

    private Optional<DescriptorChain> next() {
        while (!stopping) { // a driver may keep adding malformed chains
            try {
                return queue.pop(mem);
            } catch (InvalidChainException e) {
                LOG.debug("{}: malformed chain: {}", name, e.getMessage());
                if (!e.isChainError()) {
                    return Optional.empty();
                }
                queue.addUsed(mem, e.headIndex(), 0);
                if (queue.needsNotification(mem)) {
                    interrupt.trigger();
                }
            }
        }
        return Optional.empty();
    }
}
