package dev.jkrun.devices.virtio.console;

import java.util.ArrayDeque;

/**
 * Port input the host posts messages into from any thread (a control channel such as jkrun's power-off request).
 * Bytes are delivered in order; {@link #wakeup()} follows {@link PortInput}'s sticky contract.
 */
public final class QueuedInput implements PortInput {
    private final ArrayDeque<byte[]> pending = new ArrayDeque<>();
    private byte[] current;
    private int currentOff;
    private boolean woken;

    /** Queues {@code message} for the guest. */
    public synchronized void post(byte[] message) {
        if (message.length > 0) {
            pending.add(message.clone());
            notifyAll();
        }
    }

    @Override
    public synchronized int read(byte[] b, int off, int len) {
        while (current == null && pending.isEmpty() && !woken) {
            try {
                wait();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return 0;
            }
        }
        if (woken) {
            woken = false;
            return 0;
        }
        if (current == null) {
            current = pending.poll();
            currentOff = 0;
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
    public synchronized void wakeup() {
        woken = true;
        notifyAll();
    }
}
