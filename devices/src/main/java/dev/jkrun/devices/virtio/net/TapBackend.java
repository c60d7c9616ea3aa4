package dev.jkrun.devices.virtio.net;

import dev.jkrun.libc.Errno;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.Poll;
import dev.jkrun.libc.Tun;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * libkrun's tap backend: a tap device opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR and a 12-byte vnet header
 * ({@code dev.jkrun.libc.Tun}), so frames, header included, pass through unchanged and the host kernel honours the
 * guest's offloads (it segments TSO/UFO frames and completes checksums itself). A frame the kernel refuses (EINVAL: a
 * header it will not take from a guest; EIO: the link is down) is dropped, not fatal.
 */
public final class TapBackend implements NetBackend {
    private final FileDescriptor fd;
    private final String name;

    /** Takes {@code fd} (the tap, non-blocking); closed with the backend. */
    public TapBackend(FileDescriptor fd, String name) {
        this.fd = fd;
        this.name = name;
    }

    @Override
    public String describe() { return "tap " + name; }

    @Override
    public boolean carriesHeader() { return true; }

    @Override
    public int fd() { return fd.raw(); }

    @Override
    public int read(ByteBuffer dst) {
        int room = Math.min(dst.remaining(), NetHeader.SIZE + MAX_FRAME);
        byte[] b = dst.hasArray() && dst.arrayOffset() + dst.position() == 0 ? dst.array() : new byte[room];
        int n = Poll.read(fd.raw(), b, 0, room);
        if (n < 0) {
            return NONE;
        }
        if (n < NetHeader.SIZE) {
            return DROPPED;
        }
        // The kernel writes a 10-byte header and skips the rest of the 12: num_buffers is ours to set (1, §5.1.6.4).
        b[10] = 1;
        b[11] = 0;
        if (b != dst.array()) {
            dst.put(b, 0, n);
        } else {
            dst.position(dst.position() + n);
        }
        return n;
    }

    @Override
    public WriteResult write(ByteBuffer frame) throws IOException {
        int len = frame.remaining();
        byte[] b;
        int off;
        if (frame.hasArray()) {
            b = frame.array();
            off = frame.arrayOffset() + frame.position();
        } else {
            b = new byte[len];
            frame.duplicate().get(b);
            off = 0;
        }
        try {
            int n = Poll.write(fd.raw(), b, off, len);
            if (n < 0) {
                return WriteResult.FULL;
            }
            frame.position(frame.position() + len); // a tap takes a frame whole or not at all
            return WriteResult.SENT;
        } catch (NativeCallException e) {
            if (e.errno() == Errno.EINVAL || e.errno() == Errno.EIO) {
                return WriteResult.REJECTED;
            }
            throw new IOException(e.getMessage(), e);
        }
    }

    /**
     * What the kernel may hand the guest follows what the driver accepted, not what was offered: partial checksums
     * only with GUEST_CSUM, TSO/UFO frames only with those (libkrun sets them from the request; a driver that
     * declines one would then get frames it cannot take).
     */
    @Override
    public void negotiated(long features) {
        int flags = 0;
        if ((features & 1L << VirtioNet.F_GUEST_CSUM) != 0) {
            flags |= Tun.TUN_F_CSUM;
            flags |= (features & 1L << VirtioNet.F_GUEST_TSO4) != 0 ? Tun.TUN_F_TSO4 : 0;
            flags |= (features & 1L << VirtioNet.F_GUEST_TSO6) != 0 ? Tun.TUN_F_TSO6 : 0;
            flags |= (features & 1L << VirtioNet.F_GUEST_UFO) != 0 ? Tun.TUN_F_UFO : 0;
        }
        Tun.setOffload(fd, flags);
    }

    @Override
    public void close() { fd.close(); }
}
