package dev.jkrun.devices.virtio.vsock.tsi;

import dev.jkrun.libc.Errno;
import dev.jkrun.libc.SockAddr;
import dev.jkrun.libc.Sockets;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * The TSI control protocol's wire format (libkrunfw's {@code include/net/af_tsi.h}, libkrun's {@code packet.rs}):
 * guest requests arrive as vsock DGRAM payloads at host port = message type; structs are packed little-endian;
 * addresses are raw Linux sockaddr bytes of at most {@link #ADDR_LEN}. Everything here is untrusted: a parse either
 * returns a well-formed request or throws {@link BadControlMessage} with the errno to answer.
 */
public final class TsiMessages {
    /** The host port a guest TSI stream connects its vsock socket to once the proxy is connected or listening. */
    public static final int DEFAULT_PORT = 620;
    public static final int PROXY_CREATE = 1024, CONNECT = 1025, GETNAME = 1026, SENDTO_ADDR = 1027,
            SENDTO_DATA = 1028, LISTEN = 1029, ACCEPT = 1030, PROXY_RELEASE = 1031;
    public static final int ADDR_LEN = 128;
    /** {@code sizeof(struct tsi_getname_rsp)}: result, addr_len, addr[128]. */
    public static final int GETNAME_REPLY_SIZE = 8 + ADDR_LEN;
    public static final int SOCK_STREAM = 1, SOCK_DGRAM = 2;
    /** O_NONBLOCK as the guest passes it in TSI_ACCEPT's flags. */
    public static final int O_NONBLOCK = 04000;

    private TsiMessages() {}

    public static boolean isControlPort(int port) { return port >= PROXY_CREATE && port <= PROXY_RELEASE; }

    public record ProxyCreate(int svmPort, int family, int type) {}

    /** TSI_CONNECT and TSI_SENDTO_ADDR share a layout: svm_port, addr_len, addr. */
    public record Addressed(int svmPort, SockAddr addr) {}

    public record Getname(int svmPort, int svmPeerPort, boolean peer) {}

    public record Listen(int svmPort, int vmPort, int backlog, SockAddr addr) {}

    public record Accept(int svmPort, int flags) {
        public boolean nonBlocking() { return (flags & O_NONBLOCK) != 0; }
    }

    public record Release(int svmPort, int svmPeerPort) {}

    private static ByteBuffer le(byte[] b) { return ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN); }

    private static void need(byte[] b, int bytes, String what) throws BadControlMessage {
        if (b.length < bytes) {
            throw new BadControlMessage(Errno.EINVAL, what + " of " + b.length + " bytes, needs " + bytes);
        }
    }

    /** The svm_port every request starts with, or -1 when not even that arrived (the reply still goes out). */
    public static long svmPort(byte[] b) { return b.length < 4 ? -1 : Integer.toUnsignedLong(le(b).getInt(0)); }

    public static ProxyCreate proxyCreate(byte[] b) throws BadControlMessage {
        need(b, 8, "TSI_PROXY_CREATE");
        ByteBuffer h = le(b);
        return new ProxyCreate(h.getInt(0), Short.toUnsignedInt(h.getShort(4)), Short.toUnsignedInt(h.getShort(6)));
    }

    /** TSI_CONNECT or TSI_SENDTO_ADDR, its address checked against the proxy's {@code family}. */
    public static Addressed addressed(byte[] b, int family) throws BadControlMessage {
        need(b, 8, "TSI_CONNECT/TSI_SENDTO_ADDR");
        ByteBuffer h = le(b);
        return new Addressed(h.getInt(0), address(b, 8, h.getInt(4), family));
    }

    public static Getname getname(byte[] b) throws BadControlMessage {
        need(b, 12, "TSI_GETNAME");
        ByteBuffer h = le(b);
        return new Getname(h.getInt(0), h.getInt(4), h.getInt(8) != 0);
    }

    public static Listen listen(byte[] b, int family) throws BadControlMessage {
        need(b, 16, "TSI_LISTEN");
        ByteBuffer h = le(b);
        return new Listen(h.getInt(0), h.getInt(4), h.getInt(8), address(b, 16, h.getInt(12), family));
    }

    public static Accept accept(byte[] b) throws BadControlMessage {
        need(b, 8, "TSI_ACCEPT");
        ByteBuffer h = le(b);
        return new Accept(h.getInt(0), h.getInt(4));
    }

    public static Release release(byte[] b) throws BadControlMessage {
        need(b, 8, "TSI_PROXY_RELEASE");
        ByteBuffer h = le(b);
        return new Release(h.getInt(0), h.getInt(4));
    }

    /**
     * The sockaddr of {@code addrLen} (unsigned) bytes at {@code off}: at most {@link #ADDR_LEN}, all present, of
     * {@code family} (the proxy's, as the guest itself checks), and long enough for it. IPv4 and IPv6 addresses are
     * rebuilt from their fields (padding and flow info are not passed on); AF_UNIX ones are kept as sent.
     */
    static SockAddr address(byte[] b, int off, int addrLen, int family) throws BadControlMessage {
        long len = Integer.toUnsignedLong(addrLen);
        if (len > ADDR_LEN) {
            throw new BadControlMessage(Errno.EINVAL, "addr_len " + len + " > " + ADDR_LEN);
        }
        if (len > b.length - off) {
            throw new BadControlMessage(Errno.EINVAL, "addr_len " + len + " beyond the message's "
                    + Math.max(0, b.length - off) + " address bytes");
        }
        if (len < 2) {
            throw new BadControlMessage(Errno.EINVAL, "addr_len " + len + " holds no family");
        }
        int f = Short.toUnsignedInt(le(b).getShort(off));
        if (f != family) {
            throw new BadControlMessage(f == SockAddr.AF_INET || f == SockAddr.AF_INET6 || f == SockAddr.AF_UNIX
                    ? Errno.EINVAL : Sockets.EAFNOSUPPORT, "family " + f + " on a proxy of family " + family);
        }
        int port = len < 4 ? 0 : ((b[off + 2] & 0xff) << 8) | (b[off + 3] & 0xff); // checked per family below
        try {
            switch (f) {
                case SockAddr.AF_INET -> {
                    if (len < 8) {
                        throw new BadControlMessage(Errno.EINVAL, "AF_INET addr_len " + len);
                    }
                    return SockAddr.inet(InetAddress.getByAddress(Arrays.copyOfRange(b, off + 4, off + 8)), port);
                }
                case SockAddr.AF_INET6 -> {
                    if (len < 24) {
                        throw new BadControlMessage(Errno.EINVAL, "AF_INET6 addr_len " + len);
                    }
                    // The scope id is the guest's interface index, meaningless here: not passed on.
                    return SockAddr.inet(InetAddress.getByAddress(Arrays.copyOfRange(b, off + 8, off + 24)), port);
                }
                case SockAddr.AF_UNIX -> {
                    if (len < 3 || len > 2 + SockAddr.SUN_PATH_SIZE) {
                        throw new BadControlMessage(Errno.EINVAL, "AF_UNIX addr_len " + len);
                    }
                    return SockAddr.ofRaw(Arrays.copyOfRange(b, off, off + (int) len));
                }
                default -> throw new BadControlMessage(Sockets.EAFNOSUPPORT, "family " + f);
            }
        } catch (UnknownHostException e) {
            throw new BadControlMessage(Errno.EINVAL, "address: " + e.getMessage()); // not reached: lengths are right
        }
    }

    /** {@code struct tsi_connect_rsp} / {@code tsi_listen_rsp} / {@code tsi_accept_rsp}: one i32. */
    public static byte[] result(int result) { return le(new byte[4]).putInt(0, result).array(); }

    /** {@code struct tsi_getname_rsp}; {@code addr} null for an error. */
    public static byte[] getnameReply(int result, SockAddr addr) {
        ByteBuffer r = le(new byte[GETNAME_REPLY_SIZE]).putInt(0, result);
        if (addr != null) {
            byte[] a = addr.bytes();
            r.putInt(4, a.length).put(8, a, 0, Math.min(a.length, ADDR_LEN));
        }
        return r.array();
    }
}
