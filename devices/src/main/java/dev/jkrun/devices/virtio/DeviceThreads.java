package dev.jkrun.devices.virtio;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The threads one device runs. Each runs its body inside one boundary that catches everything — a device bug, an
 * {@link Error} such as running out of heap or stack — so that nothing a thread meets ends it silently: the first
 * failure is logged as an error for the device (later ones at debug level only, a guest may cause them again and
 * again), and the device is reported broken to the transport, which sets DEVICE_NEEDS_RESET. Failures after
 * {@link #requestStop} are expected (the device is being torn down) and only logged at debug level.
 *
 * <p>Long loops inside a thread's work (copying a chain, writing to a host descriptor) call {@link #stopRequested()}.
 * The VMM asks {@link #alive()} before it unmaps guest memory: a thread that outlived its stop may still touch it.
 */
public final class DeviceThreads {
    private static final Logger LOG = LoggerFactory.getLogger(DeviceThreads.class);

    /** For devices that run no threads of their own. */
    public static final DeviceThreads NONE = new DeviceThreads("(no threads)");

    private final String device;
    private final List<Thread> threads = new ArrayList<>();
    private final AtomicBoolean reported = new AtomicBoolean();
    private volatile Runnable onFailure = () -> { };

    /** @param device names the device in the log */
    public DeviceThreads(String device) { this.device = device; }

    /** What to do when a thread failed; the transport sets it (DEVICE_NEEDS_RESET and a config interrupt). */
    public void onFailure(Runnable r) {
        if (this != NONE) {
            onFailure = r;
        }
    }

    /** Starts a daemon thread named {@code name} running {@code body} inside the boundary. */
    public Thread start(String name, Runnable body) {
        if (this == NONE) {
            throw new IllegalStateException("a device that declares no threads started one");
        }
        Thread t = new DeviceThread(this, name, body);
        t.setDaemon(true);
        synchronized (threads) {
            threads.add(t);
        }
        try {
            t.start();
        } catch (RuntimeException | Error e) {
            synchronized (threads) {
                threads.remove(t);
            }
            throw e;
        }
        return t;
    }

    /** Marks {@code t} (a thread from {@link #start}) as asked to stop; its loops see {@link #stopRequested()}. */
    public static void requestStop(Thread t) {
        if (t instanceof DeviceThread d) {
            d.stopRequested = true;
        }
    }

    /** Whether the calling thread is a device thread that was asked to stop. */
    public static boolean stopRequested() {
        return Thread.currentThread() instanceof DeviceThread d && d.stopRequested;
    }

    /** The threads started here that have not ended yet, including any that did not stop when asked. */
    public List<Thread> alive() {
        synchronized (threads) {
            threads.removeIf(t -> !t.isAlive());
            return List.copyOf(threads);
        }
    }

    private void failed(DeviceThread t, Throwable e) {
        try {
            if (t.stopRequested) {
                LOG.debug("{}: thread {} ended while stopping: {}", device, t.getName(), e.toString());
                return;
            }
            if (reported.compareAndSet(false, true)) {
                LOG.error("{}: thread {} failed; the device needs a reset (further failures are not logged)", device, t.getName(), e);
            } else {
                LOG.debug("{}: thread {} failed: {}", device, t.getName(), e.toString());
            }
            onFailure.run();
        } catch (Throwable again) {
            // Out of memory again while reporting: the thread ends all the same, and the next failure tries again.
        }
    }

    private static final class DeviceThread extends Thread {
        private final DeviceThreads owner;
        private final Runnable body;
        private volatile boolean stopRequested;

        DeviceThread(DeviceThreads owner, String name, Runnable body) {
            super(name);
            this.owner = owner;
            this.body = body;
        }

        @Override
        public void run() {
            try {
                body.run();
            } catch (Throwable e) {
                owner.failed(this, e);
            } finally {
                synchronized (owner.threads) {
                    owner.threads.remove(this);
                }
            }
        }
    }
}
