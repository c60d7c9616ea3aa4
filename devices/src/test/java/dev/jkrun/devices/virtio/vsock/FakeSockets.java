package dev.jkrun.devices.virtio.vsock;

import dev.jkrun.devices.virtio.vsock.host.HostListener;
import dev.jkrun.devices.virtio.vsock.host.HostSockets;
import dev.jkrun.devices.virtio.vsock.host.HostStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** In-memory host sockets: the test plays the host peer of each stream and decides how much room it has. */
final class FakeSockets implements HostSockets {
    private int nextFd = 1000;
    /** Paths that accept connections (as a listening host server), and what connected to each. */
    final Map<Path, List<FakeStream>> servers = new HashMap<>();
    final Map<Path, FakeListener> listeners = new HashMap<>();
    final List<FakeStream> all = new ArrayList<>();
    /** The next connects stay in progress (EINPROGRESS) when set. */
    boolean connectsInProgress;

    final class FakeStream implements HostStream {
        final int fd = nextFd++;
        /** What the host peer sent, for the guest. */
        final ByteArrayOutputStream fromPeer = new ByteArrayOutputStream();
        private int readPos;
        /** What reached the host peer. */
        final ByteArrayOutputStream toPeer = new ByteArrayOutputStream();
        /** Bytes the host peer will still take before the socket is full. */
        int room = Integer.MAX_VALUE;
        boolean peerEof;
        boolean peerGone;
        IOException connectError;
        boolean closed;
        boolean inputShut;
        boolean outputShut;

        void peerSends(byte[] b) { fromPeer.writeBytes(b); }

        int unread() { return fromPeer.size() - readPos; }

        @Override
        public int fd() { return fd; }

        @Override
        public int read(ByteBuffer dst) throws IOException {
            check();
            int n = Math.min(dst.remaining(), unread());
            if (n == 0) {
                return peerEof || peerGone ? -1 : 0;
            }
            dst.put(fromPeer.toByteArray(), readPos, n);
            readPos += n;
            return n;
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
            check();
            if (peerGone || outputShut) {
                throw new IOException("EPIPE");
            }
            int n = Math.min(src.remaining(), room);
            byte[] b = new byte[n];
            src.get(b);
            toPeer.writeBytes(b);
            room -= n;
            return n;
        }

        private void check() throws IOException {
            if (closed) {
                throw new IllegalStateException("I/O on a closed fake stream " + fd);
            }
        }

        @Override
        public void shutdownInput() { inputShut = true; }

        @Override
        public void shutdownOutput() { outputShut = true; }

        @Override
        public void finishConnect() throws IOException {
            if (connectError != null) {
                throw connectError;
            }
        }

        @Override
        public void close() { closed = true; }
    }

    final class FakeListener implements HostListener {
        final int fd = nextFd++;
        final Path path;
        final ArrayDeque<FakeStream> backlog = new ArrayDeque<>();
        IOException acceptError;
        boolean closed;

        FakeListener(Path path) { this.path = path; }

        /** A host client connects; returns the stream the VMM will accept. */
        FakeStream clientConnects() {
            FakeStream s = new FakeStream();
            all.add(s);
            backlog.add(s);
            return s;
        }

        @Override
        public int fd() { return fd; }

        @Override
        public HostStream accept() throws IOException {
            if (acceptError != null) {
                throw acceptError;
            }
            return backlog.poll();
        }

        @Override
        public void close() {
            closed = true;
            listeners.remove(path);
        }
    }

    /** A host server listens at {@code path}. */
    void serve(Path path) { servers.put(path, new ArrayList<>()); }

    @Override
    public Connecting connect(Path path) throws IOException {
        List<FakeStream> server = servers.get(path);
        if (server == null) {
            throw new IOException("ECONNREFUSED " + path);
        }
        FakeStream s = new FakeStream();
        all.add(s);
        server.add(s);
        return new Connecting(s, !connectsInProgress);
    }

    @Override
    public HostListener listen(Path path, int backlog) throws IOException {
        if (listeners.containsKey(path)) {
            throw new IOException("EADDRINUSE " + path);
        }
        FakeListener l = new FakeListener(path);
        listeners.put(path, l);
        return l;
    }

    long openStreams() { return all.stream().filter(s -> !s.closed).count(); }
}
