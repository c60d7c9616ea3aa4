package dev.jkrun.devices.virtio.vsock;

import dev.jkrun.devices.runtime.EventLoop;

/**
 * The device's {@link EventLoop} as the muxer's {@link Reactor}; after every handler and timer it runs the device's
 * {@code after} hook, which moves what the event produced into the rx queue.
 */
final class LoopReactor implements Reactor {
    private final EventLoop loop;
    private final Runnable after;

    LoopReactor(EventLoop loop, Runnable after) {
        this.loop = loop;
        this.after = after;
    }

    @Override
    public Watch watch(int fd, int interest, Handler handler) {
        EventLoop.Registration r = loop.register(fd, interest, events -> {
            handler.onReady(events);
            after.run();
        });
        return new Watch() {
            @Override
            public void interest(int events) { r.interest(events); }

            @Override
            public void close() { r.close(); }
        };
    }

    @Override
    public Timer schedule(long delayMillis, Runnable task) {
        EventLoop.Timer t = loop.schedule(delayMillis, () -> {
            task.run();
            after.run();
        });
        return t::cancel;
    }

    @Override
    public long nowMillis() { return System.nanoTime() / 1_000_000; }
}
