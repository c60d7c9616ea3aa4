package dev.jkrun.devices.virtio.vsock.host;

import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.Sockets;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** {@link HostSockets} over real AF_UNIX stream sockets (libc {@link Sockets}). */
public final class UnixHostSockets implements HostSockets {
    public static final UnixHostSockets INSTANCE = new UnixHostSockets();

    private UnixHostSockets() {}

    /** A libc failure as an IOException that keeps the errno. */
    public static final class SocketException extends IOException {
        private final int errno;

        public SocketException(NativeCallException e) {
            super(e.getMessage(), null);
            this.errno = e.errno();
        }

        public int errno() { return errno; }
    }

    @Override
    public Connecting connect(Path path) throws IOException {
        try {
            Sockets.Connecting c = Sockets.connectUnix(path);
            return new Connecting(new SocketStream(c.fd()), c.connected());
        } catch (NativeCallException e) {
            throw new SocketException(e);
        } catch (IllegalArgumentException e) {
            throw new IOException(e.getMessage());
        }
    }

    @Override
    public HostListener listen(Path path, int backlog) throws IOException {
        try {
            return new Listener(Sockets.listenUnix(path, backlog), path);
        } catch (NativeCallException e) {
            throw new SocketException(e);
        } catch (IllegalArgumentException e) {
            throw new IOException(e.getMessage());
        }
    }

    private static final class Listener implements HostListener {
        private final FileDescriptor fd;
        private final Path path;

        Listener(FileDescriptor fd, Path path) {
            this.fd = fd;
            this.path = path;
        }

        @Override
        public int fd() { return fd.raw(); }

        @Override
        public HostStream accept() throws IOException {
            try {
                FileDescriptor s = Sockets.accept(fd);
                return s == null ? null : new SocketStream(s);
            } catch (NativeCallException e) {
                throw new SocketException(e);
            }
        }

        @Override
        public void close() {
            if (fd.isOpen()) {
                fd.close();
                try {
                    Files.deleteIfExists(path);
                } catch (IOException ignored) {
                    // someone else removed or replaced it; nothing of ours is left
                }
            }
        }

        @Override
        public String toString() { return "unix listener " + path; }
    }
}
