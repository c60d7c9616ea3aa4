package dev.jkrun.devices.virtio.net;

import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.Sockets;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * libkrun's unixstream backend (passt, socket_vmnet, gvproxy's QEMU mode): a connected SOCK_STREAM socket on which
 * every frame is preceded by its length as a 4-byte big-endian integer; no virtio-net header. Reads gather whatever
 * the socket has into one buffer and cut frames out of it; a length of 0 or over {@link #MAX_FRAME} is skipped (its
 * bytes discarded) and counted by the device as a drop. A write the socket takes only partly is finished as room
 * comes ({@link #flushPending}).
 */
public final class StreamBackend implements NetBackend {
    /** Room for a whole largest frame with its length, and as much again for the next ones. */
    static final int IN_CAPACITY = 2 * (4 + MAX_FRAME);
    /** libkrun's SO_SNDBUF for this backend: 16 MiB, so bursts of big frames fit in the kernel, not here. */
    static final int SEND_BUFFER = 16 << 20;
    private final FileDescriptor fd;
    private final String what;
    /** Bytes read and not yet cut into frames, in write mode. */
    private final ByteBuffer in = ByteBuffer.allocateDirect(IN_CAPACITY).order(ByteOrder.BIG_ENDIAN);
    /** The frame being written (length first), in read mode; empty when none. */
    private final ByteBuffer out = ByteBuffer.allocateDirect(4 + MAX_FRAME).order(ByteOrder.BIG_ENDIAN);
    /** Bytes of a refused frame still to discard. */
    private long skip;

    /** Takes {@code fd} (a connected stream socket, made non-blocking here); closed with the backend. */
    public StreamBackend(FileDescriptor fd, String what) {
        this.fd = fd;
        this.what = what;
        fd.setNonBlocking();
        try {
            Sockets.setIntOption(fd, Sockets.SOL_SOCKET, Sockets.SO_SNDBUF, SEND_BUFFER);
        } catch (RuntimeException e) {
            // a smaller buffer only means more waits for room
        }
        out.limit(0);
    }

    @Override
    public String describe() { return "unixstream " + what; }

    @Override
    public boolean carriesHeader() { return false; }

    @Override
    public int fd() { return fd.raw(); }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        while (true) {
            in.flip();
            try {
                if (skip > 0) {
                    int n = (int) Math.min(skip, in.remaining());
                    in.position(in.position() + n);
                    skip -= n;
                }
                if (skip == 0 && in.remaining() >= 4) {
                    int len = in.getInt(in.position());
                    if (len == 0 || Integer.compareUnsigned(len, MAX_FRAME) > 0) {
                        in.position(in.position() + 4);
                        skip = Integer.toUnsignedLong(len);
                        return DROPPED;
                    }
                    if (in.remaining() >= 4 + len) {
                        in.position(in.position() + 4);
                        ByteBuffer frame = in.slice(in.position(), len);
                        dst.put(frame);
                        in.position(in.position() + len);
                        return len;
                    }
                }
            } finally {
                in.compact();
            }
            int n = Sockets.read(fd, in);
            if (n == 0) {
                return NONE;
            }
            if (n < 0) {
                throw new EOFException("the peer closed the connection");
            }
        }
    }

    @Override
    public WriteResult write(ByteBuffer frame) throws IOException {
        if (out.hasRemaining()) {
            throw new IllegalStateException(what + ": write while a frame is pending");
        }
        out.clear();
        out.putInt(frame.remaining()).put(frame).flip();
        flushPending();
        return WriteResult.SENT;
    }

    @Override
    public boolean hasPendingWrite() { return out.hasRemaining(); }

    @Override
    public boolean flushPending() throws IOException {
        while (out.hasRemaining()) {
            if (Sockets.write(fd, out) == 0) {
                return false;
            }
        }
        return true;
    }

    @Override
    public void close() { fd.close(); }
}
