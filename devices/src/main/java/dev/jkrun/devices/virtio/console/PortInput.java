package dev.jkrun.devices.virtio.console;

import dev.jkrun.devices.runtime.EventLoop;
import dev.jkrun.devices.virtio.DeviceThreads;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.Poll;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;

/**
 * The host side of a console port's input (host → guest), read on the device's {@link EventLoop} without ever
 * blocking it. Between {@link #start} and {@link #stop} (one activation of the device) the input calls
 * {@code readable} on the loop thread when {@link #read} may have something; the device says with {@link #want}
 * whether it can take input at all (the guest opened the port and gave buffers), so a descriptor whose data must wait
 * is not watched meanwhile.
 */
public interface PortInput extends AutoCloseable {
    /** Begins an activation: {@code readable} runs on {@code loop}'s thread; helper threads start on {@code threads}. */
    void start(EventLoop loop, DeviceThreads threads, String name, Runnable readable);

    /** Whether the device can take input now; false at {@link #start}. On the loop thread. */
    default void want(boolean on) {}

    /** Reads what is there now, without blocking: the count, 0 when nothing, -1 at end of input. On the loop thread. */
    int read(byte[] b, int off, int len) throws IOException;

    /** Ends the activation (the loop has stopped): helper threads are joined, descriptors unwatched. */
    void stop();

    /** Releases host resources; the caller's streams or descriptors are not closed unless documented. */
    @Override
    default void close() {}

    /** Input that never produces data (console output to a file). */
    static PortInput empty() {
        return new PortInput() {
            @Override
            public void start(EventLoop loop, DeviceThreads threads, String name, Runnable readable) {}

            @Override
            public int read(byte[] b, int off, int len) { return 0; }

            @Override
            public void stop() {}
        };
    }

    /**
     * Input from a stream, which cannot be waited on with other descriptors: a helper thread reads it, one chunk
     * ahead, and hands the chunk to the loop. {@link #stop()} interrupts that thread, which ends reads of
     * interruptible streams (pipes, sockets' channels, {@code PipedInputStream}); a read blocked in a plain
     * FileInputStream cannot be ended, so for host descriptors use {@link #ofFd}. The stream is closed by
     * {@link #close()}.
     */
    static PortInput of(InputStream in) { return new StreamInput(in); }

    /**
     * Input from a host file descriptor (for example 0, stdin), watched on the loop; read only when epoll says it
     * is readable, so a blocking descriptor never blocks the loop. The descriptor is not closed.
     */
    static PortInput ofFd(int fd) { return new FdInput(fd); }

    /** See {@link PortInput#of(InputStream)}. */
    final class StreamInput implements PortInput {
        private static final int CHUNK = 4096;
        private static final long JOIN_TIMEOUT_MS = 5000;
        private final InputStream in;
        private final byte[] chunk = new byte[CHUNK];
        /** Guarded by this: bytes of {@link #chunk} not yet read, from {@link #chunkOff}; whether the stream ended. */
        private int chunkLen, chunkOff;
        private boolean eof;
        private Thread pump;
        private volatile boolean stopping;

        StreamInput(InputStream in) { this.in = in; }

        @Override
        public void start(EventLoop loop, DeviceThreads threads, String name, Runnable readable) {
            stopping = false;
            pump = threads.start(name, () -> pump(loop, readable));
        }

        private void pump(EventLoop loop, Runnable readable) {
            byte[] buf = new byte[CHUNK];
            while (!stopping) {
                synchronized (this) {
                    while (chunkLen > 0 && !stopping) {
                        try {
                            wait();
                        } catch (InterruptedException e) {
                            return;
                        }
                    }
                    if (stopping || eof) {
                        return;
                    }
                }
                int n;
                try {
                    n = in.read(buf, 0, buf.length);
                } catch (InterruptedIOException e) {
                    return;
                } catch (IOException e) {
                    n = -1; // as before: a failed stream ends the port's input
                }
                synchronized (this) {
                    if (stopping) {
                        return;
                    }
                    if (n < 0) {
                        eof = true;
                    } else {
                        System.arraycopy(buf, 0, chunk, 0, n);
                        chunkOff = 0;
                        chunkLen = n;
                    }
                }
                loop.execute(readable);
            }
        }

        @Override
        public synchronized int read(byte[] b, int off, int len) {
            if (chunkLen == 0) {
                return eof ? -1 : 0;
            }
            int n = Math.min(len, chunkLen);
            System.arraycopy(chunk, chunkOff, b, off, n);
            chunkOff += n;
            chunkLen -= n;
            if (chunkLen == 0) {
                notifyAll();
            }
            return n;
        }

        @Override
        public void stop() {
            Thread t;
            synchronized (this) {
                stopping = true;
                notifyAll();
                t = pump;
                pump = null;
            }
            if (t == null) {
                return;
            }
            DeviceThreads.requestStop(t);
            t.interrupt();
            try {
                t.join(JOIN_TIMEOUT_MS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
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
        private WatchedFd watched;
        private EventLoop loop;
        private Runnable readable;
        private boolean wanted;
        /** epoll said readable since the last read: one read(2) will not block. */
        private boolean ready;

        FdInput(int fd) { this.fd = fd; }

        @Override
        public void start(EventLoop loop, DeviceThreads threads, String name, Runnable readable) {
            this.loop = loop;
            this.readable = readable;
            this.wanted = false;
            this.ready = false;
            this.watched = new WatchedFd(loop, fd, events -> {
                ready = true;
                readable.run();
            });
        }

        @Override
        public void want(boolean on) {
            if (on == wanted || watched == null) {
                return;
            }
            wanted = on;
            if (watched.pollable()) {
                watched.interest(on ? EventLoop.IN : 0);
            } else if (on) {
                loop.execute(readable); // a file is always readable
            }
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (watched == null || (watched.pollable() && !ready)) {
                return 0;
            }
            ready = false;
            int n;
            try {
                n = Poll.read(fd, b, off, len);
            } catch (NativeCallException e) {
                throw new IOException(e.getMessage(), e);
            }
            return n == 0 ? -1 : Math.max(n, 0); // -1 from Poll.read is EAGAIN: nothing now
        }

        @Override
        public void stop() {
            if (watched != null) {
                watched.close();
                watched = null;
            }
        }
    }
}
