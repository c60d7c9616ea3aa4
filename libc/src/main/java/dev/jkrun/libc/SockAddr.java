package dev.jkrun.libc;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * A socket address as the kernel takes it: the raw bytes of a {@code struct sockaddr_*} (family first, in host
 * byte order). Only AF_UNIX is built here; AF_INET and AF_INET6 add a factory each, nothing else changes.
 */
public final class SockAddr {
    public static final int AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10;
    /** {@code sizeof(((struct sockaddr_un *) 0)->sun_path)} on Linux. */
    public static final int SUN_PATH_SIZE = 108;
    /** The largest {@code struct sockaddr} any family uses ({@code struct sockaddr_storage}). */
    public static final int MAX_SIZE = 128;
    private static final int SUN_PATH_OFFSET = 2;

    private final byte[] raw;

    private SockAddr(byte[] raw) { this.raw = raw; }

    /**
     * {@code struct sockaddr_un} for a path socket: the path's bytes plus the terminating NUL must fit sun_path,
     * so at most {@code SUN_PATH_SIZE - 1} bytes.
     *
     * @throws IllegalArgumentException for an empty path, one holding NUL, or one too long for sun_path
     */
    public static SockAddr unix(Path path) {
        byte[] p = path.toString().getBytes(StandardCharsets.UTF_8);
        if (p.length == 0) {
            throw new IllegalArgumentException("unix socket path is empty");
        }
        if (p.length > SUN_PATH_SIZE - 1) {
            throw new IllegalArgumentException("unix socket path is " + p.length + " bytes, more than the "
                    + (SUN_PATH_SIZE - 1) + " sun_path holds: " + path);
        }
        for (byte b : p) {
            if (b == 0) {
                throw new IllegalArgumentException("unix socket path holds a NUL byte: " + path);
            }
        }
        ByteBuffer b = ByteBuffer.allocate(SUN_PATH_OFFSET + p.length + 1).order(ByteOrder.nativeOrder());
        b.putShort((short) AF_UNIX).put(p).put((byte) 0);
        return new SockAddr(b.array());
    }

    /** Wraps raw sockaddr bytes as returned by the kernel (getsockname, accept). */
    public static SockAddr ofRaw(byte[] raw) {
        if (raw.length < 2 || raw.length > MAX_SIZE) {
            throw new IllegalArgumentException("sockaddr of " + raw.length + " bytes");
        }
        return new SockAddr(raw.clone());
    }

    public int family() { return ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder()).getShort(0) & 0xffff; }

    /** A copy of the raw bytes. */
    public byte[] bytes() { return raw.clone(); }

    int length() { return raw.length; }

    byte[] raw() { return raw; }

    @Override
    public boolean equals(Object o) { return o instanceof SockAddr s && Arrays.equals(raw, s.raw); }

    @Override
    public int hashCode() { return Arrays.hashCode(raw); }

    @Override
    public String toString() {
        if (family() == AF_UNIX && raw.length > SUN_PATH_OFFSET) {
            int end = SUN_PATH_OFFSET;
            while (end < raw.length && raw[end] != 0) {
                end++;
            }
            return "unix:" + new String(raw, SUN_PATH_OFFSET, end - SUN_PATH_OFFSET, StandardCharsets.UTF_8);
        }
        return "sockaddr[family " + family() + ", " + raw.length + " bytes]";
    }
}
