package dev.jkrun.devices.virtio.console;

import dev.jkrun.devices.runtime.EventLoop;
import dev.jkrun.devices.virtio.DeviceThreads;
import java.util.ArrayDeque;

/**
 * Port input the host posts messages into from any thread (a control channel such as jkrun's power-off request).
 * Bytes are delivered in order; a post tells the device's loop, when one is running.
 */
public final class QueuedInput implements PortInput {
    private final ArrayDeque<byte[]> pending = new ArrayDeque<>();
    private byte[] current;
    private int currentOff;
    private EventLoop loop;
    private Runnable readable;

    /** Queues {@code message} for the guest. */
    public void post(byte[] message) {
        if (message.length == 0) {
            return;
        }
        EventLoop l;
        Runnable r;
        synchronized (this) {
            pending.add(message.clone());
            l = loop;
            r = readable;
        }
        if (l != null) {
            l.execute(r);
        }
    }

    @Override
    public synchronized void start(EventLoop loop, DeviceThreads threads, String name, Runnable readable) {
        this.loop = loop;
        this.readable = readable;
    }

    @Override
    public synchronized int read(byte[] b, int off, int len) {
        if (current == null) {
            current = pending.poll();
            currentOff = 0;
            if (current == null) {
                return 0;
            }
        }
        int n = Math.min(len, current.length - currentOff);
        System.arraycopy(current, currentOff, b, off, n);
        currentOff += n;
        if (currentOff == current.length) {
            current = null;
        }
        return n;
    }

    @Override
    public synchronized void stop() {
        loop = null;
        readable = null;
    }
}
