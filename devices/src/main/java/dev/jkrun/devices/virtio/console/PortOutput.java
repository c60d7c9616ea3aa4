package dev.jkrun.devices.virtio.console;

import dev.jkrun.devices.LogText;
import dev.jkrun.devices.virtio.DeviceThreads;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.Poll;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The host side of a console port's output (guest → host), called on the device's loop thread only. Outputs that
 * can wait for room beside other descriptors (host fds) say which descriptor ({@link #pollFd()}) and take only what
 * fits now ({@link #writeSome}); the others (streams, files, logs) write everything at once, as before.
 */
public interface PortOutput extends AutoCloseable {
    /** Writes all of {@code b[off..off+len)}, blocking as long as it takes. */
    void write(byte[] b, int off, int len) throws IOException;

    /**
     * Writes what the host takes now without blocking: the count, 0 when it takes nothing (then wait for
     * {@link #pollFd()} to be writable). The default writes everything.
     */
    default int writeSome(byte[] b, int off, int len) throws IOException {
        write(b, off, len);
        return len;
    }

    /** The descriptor to wait on when {@link #writeSome} took less than offered; -1 when it never does. */
    default int pollFd() { return -1; }

    /** Called after each batch of guest output. */
    default void flush() throws IOException {}

    @Override
    default void close() {}

    /** Output discarded. */
    static PortOutput discard() { return (b, off, len) -> { }; }

    /**
     * Output split into lines for {@code sink} (a logger), bounded per line: where a console has nowhere to print
     * (hvc0 when the command's stdio goes through named ports), its kernel messages stay available for diagnosis.
     * Control characters reach {@code sink} escaped ({@link LogText#escape}).
     */
    static PortOutput lines(java.util.function.Consumer<String> sink) {
        return new PortOutput() {
            private final java.io.ByteArrayOutputStream line = new java.io.ByteArrayOutputStream();

            @Override
            public void write(byte[] b, int off, int len) {
                for (int i = off; i < off + len; i++) {
                    if (b[i] == '\n') {
                        emit();
                    } else if (b[i] != '\r' && line.size() < 4096) {
                        line.write(b[i]);
                    }
                }
            }

            @Override
            public void close() { emit(); }

            private void emit() {
                if (line.size() > 0) {
                    sink.accept(LogText.escape(line.toString(java.nio.charset.StandardCharsets.UTF_8)));
                    line.reset();
                }
            }
        };
    }

    /** Output to a stream the caller keeps owning: flushed after each batch, never closed. */
    static PortOutput of(OutputStream out) {
        return new PortOutput() {
            @Override
            public void write(byte[] b, int off, int len) throws IOException { out.write(b, off, len); }

            @Override
            public void flush() throws IOException { out.flush(); }
        };
    }

    /**
     * Output to a host file descriptor the caller keeps owning (msb_krun's console port fds, stdout); never closed.
     * A reader that stops reading makes the device wait for room on its loop (epoll, not a thread in write(2));
     * when the device stops, the rest is dropped. On a blocking descriptor one write takes at most what poll's
     * "writable" promises ({@link Poll#PIPE_BUF}), so it cannot block either.
     */
    static PortOutput ofFd(int fd) {
        return new PortOutput() {
            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                int n;
                try {
                    n = Poll.writeFully(fd, b, off, len, DeviceThreads::stopRequested);
                } catch (NativeCallException e) {
                    throw new IOException(e.getMessage(), e);
                }
                if (n < len) {
                    throw new InterruptedIOException("device stopping: " + (len - n) + " bytes not written");
                }
            }

            @Override
            public int writeSome(byte[] b, int off, int len) throws IOException {
                try {
                    if (!Poll.isNonBlocking(fd)) {
                        if (!Poll.writable(fd)) {
                            return 0;
                        }
                        len = Math.min(len, Poll.PIPE_BUF);
                    }
                    return Math.max(0, Poll.write(fd, b, off, len));
                } catch (NativeCallException e) {
                    throw new IOException(e.getMessage(), e);
                }
            }

            @Override
            public int pollFd() { return fd; }
        };
    }

    /** Output appended to a file (created if needed), closed with the device (krun_set_console_output). */
    static PortOutput toFile(Path path) throws IOException {
        OutputStream out = Files.newOutputStream(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.APPEND);
        return new PortOutput() {
            @Override
            public void write(byte[] b, int off, int len) throws IOException { out.write(b, off, len); }

            @Override
            public void flush() throws IOException { out.flush(); }

            @Override
            public void close() {
                try {
                    out.close();
                } catch (IOException ignored) {
                    // nothing left to do
                }
            }
        };
    }
}
