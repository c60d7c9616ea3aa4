package dev.jkrun.libc;

import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * A socket address as the kernel takes it: the raw bytes of a {@code struct sockaddr_*} (family first, in host
 * byte order). Factories build AF_UNIX, AF_INET and AF_INET6 addresses; ports and IP addresses inside are in
 * network byte order, as the kernel keeps them.
 */
public final class SockAddr {
    public static final int AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10;
    /** {@code sizeof(struct sockaddr_in)} and {@code sizeof(struct sockaddr_in6)}. */
    public static final int INET_SIZE = 16, INET6_SIZE = 28;
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

    /**
     * {@code struct sockaddr_in} or {@code struct sockaddr_in6} (by the address's kind) for {@code ip:port}; an
     * IPv6 address keeps its scope id.
     *
     * @throws IllegalArgumentException for a port outside 0..65535
     */
    public static SockAddr inet(InetAddress ip, int port) {
        if (port < 0 || port > 0xffff) {
            throw new IllegalArgumentException("port " + port + " is not in 0..65535");
        }
        byte[] a = ip.getAddress();
        if (ip instanceof Inet4Address) {
            ByteBuffer b = ByteBuffer.allocate(INET_SIZE).order(ByteOrder.nativeOrder());
            b.putShort((short) AF_INET).order(ByteOrder.BIG_ENDIAN).putShort((short) port).put(a);
            return new SockAddr(b.array());
        }
        int scope = ip instanceof Inet6Address v6 ? v6.getScopeId() : 0;
        ByteBuffer b = ByteBuffer.allocate(INET6_SIZE).order(ByteOrder.nativeOrder());
        b.putShort((short) AF_INET6).order(ByteOrder.BIG_ENDIAN).putShort((short) port).putInt(0).put(a)
                .order(ByteOrder.nativeOrder()).putInt(scope);
        return new SockAddr(b.array());
    }

    /** The wildcard address of {@code family} (AF_INET or AF_INET6) with port 0: bind there for an ephemeral port. */
    public static SockAddr anyInet(int family) {
        return inet(family == AF_INET6 ? ANY6 : ANY4, 0);
    }

    private static final InetAddress ANY4, ANY6;

    static {
        try {
            ANY4 = InetAddress.getByAddress(new byte[4]);
            ANY6 = InetAddress.getByAddress(new byte[16]);
        } catch (java.net.UnknownHostException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** The port of an AF_INET or AF_INET6 address; -1 for other families. */
    public int port() {
        int f = family();
        if ((f == AF_INET && raw.length >= 4) || (f == AF_INET6 && raw.length >= 4)) {
            return ((raw[2] & 0xff) << 8) | (raw[3] & 0xff);
        }
        return -1;
    }

    /** The IP of an AF_INET (16 bytes) or AF_INET6 (24 bytes at least) address; null for anything else. */
    public InetAddress ip() {
        try {
            int f = family();
            if (f == AF_INET && raw.length >= 8) {
                return InetAddress.getByAddress(Arrays.copyOfRange(raw, 4, 8));
            }
            if (f == AF_INET6 && raw.length >= 24) {
                return InetAddress.getByAddress(Arrays.copyOfRange(raw, 8, 24));
            }
        } catch (java.net.UnknownHostException e) {
            return null; // not reached: the lengths are right
        }
        return null;
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
        InetAddress ip = ip();
        if (ip != null) {
            return (ip instanceof Inet6Address ? "[" + ip.getHostAddress() + "]" : ip.getHostAddress()) + ":" + port();
        }
        return "sockaddr[family " + family() + ", " + raw.length + " bytes]";
    }
}
