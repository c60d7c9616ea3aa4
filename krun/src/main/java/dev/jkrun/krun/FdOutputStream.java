package dev.jkrun.krun;

import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.Poll;
import java.io.OutputStream;

/**
 * Log output to a descriptor of jkrun's own (a duplicate of krun_init_log's target): every write goes out whole,
 * waiting for room without spinning when the reader is slow ({@link Poll#writeFully}); a write that fails (the
 * reader went away: EPIPE) drops the record rather than failing the logging call, as a logger must.
 */
final class FdOutputStream extends OutputStream {
    private final FileDescriptor fd;
    private volatile boolean closed;

    FdOutputStream(FileDescriptor fd) {
        this.fd = fd;
    }

    @Override
    public void write(int b) {
        write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public synchronized void write(byte[] b, int off, int len) {
        java.util.Objects.checkFromIndexSize(off, len, b.length);
        if (closed || len == 0) {
            return;
        }
        try {
            Poll.writeFully(fd.raw(), b, off, len, () -> closed);
        } catch (NativeCallException e) {
            // the record is lost; the caller's logging goes on
        }
    }

    @Override
    public void close() {
        closed = true;
        synchronized (this) {
            fd.close();
        }
    }
}
