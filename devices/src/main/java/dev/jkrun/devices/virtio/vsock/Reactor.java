package dev.jkrun.devices.virtio.vsock;

/**
 * What the vsock muxer needs of an event loop: level-triggered readiness of host descriptors, timers and a clock,
 * all on one thread. The device adapts the device runtime's event loop to it; tests drive fakes.
 */
public interface Reactor {
    /** epoll event bits. ERR and HUP are reported whatever the interest. */
    int IN = 0x1, OUT = 0x4, ERR = 0x8, HUP = 0x10;

    @FunctionalInterface
    interface Handler {
        void onReady(int events);
    }

    /** A watched descriptor; {@link #close()} stops watching (before the descriptor is closed). */
    interface Watch extends AutoCloseable {
        void interest(int events);

        @Override
        void close();
    }

    interface Timer {
        void cancel();
    }

    Watch watch(int fd, int interest, Handler handler);

    Timer schedule(long delayMillis, Runnable task);

    /** Milliseconds on a monotonic clock. */
    long nowMillis();
}
