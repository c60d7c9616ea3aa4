package dev.jkrun.devices.virtio.console;

import dev.jkrun.libc.EventFd;
import dev.jkrun.libc.Poll;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The host side of a console port's input (host → guest). One rx thread calls {@link #read} at a time; the device
 * calls {@link #wakeup()} from another thread when it stops, and the blocked (or next) read returns 0 promptly.
 */
public interface PortInput extends AutoCloseable {
    /**
     * Blocks until input is available; reads up to {@code len} bytes. Returns the count, -1 at end of input, or
     * 0 after {@link #wakeup()} (wake-ups are sticky: a wake-up before the read makes the read return 0).
     */
    int read(byte[] b, int off, int len) throws IOException;

    /** Makes a blocked (or the next) {@link #read} return 0. */
    void wakeup();

    /** Releases host resources; the caller's streams or descriptors are not closed unless documented. */
    @Override
    default void close() {}

    /** Input that never produces data (console output to a file). */
    static PortInput empty() {
        return new PortInput() {
            private boolean woken;

            @Override
            public synchronized int read(byte[] b, int off, int len) {
                while (!woken) {
                    try {
                        wait();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        return 0;
                    }
                }
                woken = false;
                return 0;
            }

            @Override
            public synchronized void wakeup() {
                woken = true;
                notifyAll();
            }
        };
    }

    /**
     * Input from a stream. {@link #wakeup()} interrupts the reading thread, which stops reads on interruptible
     * streams (pipes, sockets' channels, {@code PipedInputStream}); a read blocked in a plain FileInputStream
     * cannot be woken, so for host descriptors use {@link #ofFd}. The stream is closed by {@link #close()}.
     */
    static PortInput of(InputStream in) { return new StreamInput(in); }

    /**
     * Input from a host file descriptor (for example 0, stdin), waited on with poll(2) together with a wake
     * EventFd, so stopping never hangs. The descriptor is not closed.
     */
    static PortInput ofFd(int fd) { return new FdInput(fd); }

    /** See {@link PortInput#of(InputStream)}. */
    final class StreamInput implements PortInput {
        private final InputStream in;
        private final AtomicBoolean woken = new AtomicBoolean();
        private volatile Thread reader;

        StreamInput(InputStream in) { this.in = in; }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            reader = Thread.currentThread();
            try {
                if (woken.getAndSet(false)) {
                    return 0;
                }
                return in.read(b, off, len);
            } catch (InterruptedIOException e) {
                woken.set(false);
                return 0;
            } finally {
                reader = null;
                Thread.interrupted();
            }
        }

        @Override
        public void wakeup() {
            woken.set(true);
            Thread t = reader;
            if (t != null) {
                t.interrupt();
            }
        }

        @Override
        public void close() {
            try {
                in.close();
            } catch (IOException ignored) {
                // nothing left to do
            }
        }
    }

    /** See {@link PortInput#ofFd(int)}. */
    final class FdInput implements PortInput {
        private final int fd;
        private final EventFd wake = new EventFd();

        FdInput(int fd) { this.fd = fd; }

        @Override
        public int read(byte[] b, int off, int len) {
            if (Poll.awaitReadable(fd, wake, -1) == Poll.Ready.WOKEN) {
                wake.await();
                return 0;
            }
            int n = Poll.read(fd, b, off, len);
            if (n == 0) {
                return -1;
            }
            return Math.max(n, 0); // -1 from Poll.read is EAGAIN: nothing now
        }

        @Override
        public void wakeup() { wake.signal(); }

        @Override
        public void close() { wake.close(); }
    }
}
