package dev.jkrun.devices.virtio.net;

import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.Sockets;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * libkrun's unixgram backend (gvproxy in vfkit mode, vmnet-helper): a connected SOCK_DGRAM socket carrying one
 * Ethernet frame per datagram, no header. A datagram longer than {@link #MAX_FRAME} arrives truncated and is
 * dropped; ENOBUFS on send is "try again shortly" ({@link WriteResult#BUSY}), EMSGSIZE refuses that one frame.
 */
public final class DatagramBackend implements NetBackend {
    /** libkrun's SO_SNDBUF and SO_RCVBUF for this backend on Linux. */
    static final int BUFFER = 7 << 20;
    private final FileDescriptor fd;
    private final String what;

    /** Takes {@code fd} (a connected datagram socket, made non-blocking here); closed with the backend. */
    public DatagramBackend(FileDescriptor fd, String what) {
        this.fd = fd;
        this.what = what;
        fd.setNonBlocking();
        for (int opt : new int[] {Sockets.SO_SNDBUF, Sockets.SO_RCVBUF}) {
            try {
                Sockets.setIntOption(fd, Sockets.SOL_SOCKET, opt, BUFFER);
            } catch (RuntimeException e) {
                // smaller buffers only mean more waits
            }
        }
    }

    @Override
    public String describe() { return "unixgram " + what; }

    @Override
    public boolean carriesHeader() { return false; }

    @Override
    public int fd() { return fd.raw(); }

    @Override
    public int read(ByteBuffer dst) {
        int room = Math.min(dst.remaining(), MAX_FRAME);
        ByteBuffer view = dst.slice(dst.position(), room);
        Sockets.Datagram d = Sockets.receiveFrom(fd, view);
        if (d == null) {
            return NONE;
        }
        if (d.length() == 0 || d.length() > room) {
            return DROPPED;
        }
        dst.position(dst.position() + d.length());
        return d.length();
    }

    @Override
    public WriteResult write(ByteBuffer frame) throws IOException {
        try {
            return Sockets.write(fd, frame) > 0 ? WriteResult.SENT : WriteResult.FULL;
        } catch (NativeCallException e) {
            if (e.errno() == Sockets.ENOBUFS) {
                return WriteResult.BUSY;
            }
            if (e.errno() == Sockets.EMSGSIZE) {
                return WriteResult.REJECTED;
            }
            throw new IOException(e.getMessage(), e);
        }
    }

    @Override
    public void close() { fd.close(); }
}
