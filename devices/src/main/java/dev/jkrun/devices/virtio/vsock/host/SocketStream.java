package dev.jkrun.devices.virtio.vsock.host;

import dev.jkrun.devices.virtio.vsock.host.UnixHostSockets.SocketException;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.Sockets;
import java.io.IOException;
import java.nio.ByteBuffer;

/** A {@link HostStream} over a non-blocking stream socket of any family (libc {@link Sockets}); owns the descriptor. */
public final class SocketStream implements HostStream {
    private final FileDescriptor fd;

    public SocketStream(FileDescriptor fd) { this.fd = fd; }

    /** The socket, for calls beyond the stream's (getpeername). */
    public FileDescriptor descriptor() { return fd; }

    @Override
    public int fd() { return fd.raw(); }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        try {
            return Sockets.read(fd, dst);
        } catch (NativeCallException e) {
            throw new SocketException(e);
        }
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
        try {
            return Sockets.write(fd, src);
        } catch (NativeCallException e) {
            throw new SocketException(e);
        }
    }

    @Override
    public void shutdownInput() throws IOException { shutdown(Sockets.SHUT_RD); }

    @Override
    public void shutdownOutput() throws IOException { shutdown(Sockets.SHUT_WR); }

    private void shutdown(int how) throws IOException {
        try {
            Sockets.shutdown(fd, how);
        } catch (NativeCallException e) {
            throw new SocketException(e);
        }
    }

    @Override
    public void finishConnect() throws IOException {
        try {
            int err = Sockets.soError(fd);
            if (err != 0) {
                throw new SocketException(new NativeCallException("connect", err));
            }
        } catch (NativeCallException e) {
            throw new SocketException(e);
        }
    }

    @Override
    public void close() { fd.close(); }

    @Override
    public String toString() { return "stream " + fd; }
}
