package dev.jkrun.libc;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;

/**
 * Typed, non-blocking BSD sockets for device backends. Conventions:
 * <ul>
 *   <li>Every socket is created SOCK_NONBLOCK | SOCK_CLOEXEC (accepted ones too).</li>
 *   <li>Waiting is a value, never an exception: {@link #read} and {@link #write} follow non-blocking
 *       {@code java.nio.channels.SocketChannel} (count, 0 when it would block, -1 at end of stream), {@link #accept}
 *       returns null and {@link #connect} false ({@code EINPROGRESS}). Real failures throw
 *       {@link NativeCallException} with the errno; EINTR is retried.</li>
 *   <li>Writes pass MSG_NOSIGNAL: a peer that went away is EPIPE, never SIGPIPE.</li>
 *   <li>Addresses are {@link SockAddr} raw bytes, so every family goes through the same calls.</li>
 * </ul>
 */
public final class Sockets {
    public static final int SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_NONBLOCK = 04000, SOCK_CLOEXEC = 02000000;
    public static final int SHUT_RD = 0, SHUT_WR = 1, SHUT_RDWR = 2;
    public static final int SOL_SOCKET = 1, SO_REUSEADDR = 2, SO_TYPE = 3, SO_ERROR = 4, SO_SNDBUF = 7, SO_RCVBUF = 8,
            SO_REUSEPORT = 15;
    /** listen(2) clamps the backlog to this ({@code net.core.somaxconn}'s default). */
    public static final int SOMAXCONN = 4096;
    static final int MSG_NOSIGNAL = 0x4000, MSG_TRUNC = 0x20;
    /** errno values socket callers react to ({@code <asm-generic/errno.h>}). */
    public static final int EPIPE = 32, EADDRINUSE = 98, ECONNABORTED = 103, ECONNRESET = 104, ENOTCONN = 107,
            ECONNREFUSED = 111, EINPROGRESS = 115, EMFILE = 24, ENFILE = 23, EAFNOSUPPORT = 97, EADDRNOTAVAIL = 99,
            ENOBUFS = 105, EISCONN = 106, EALREADY = 114, EOPNOTSUPP = 95, EMSGSIZE = 90, ENETUNREACH = 101;

    private static final LibCSocket.Calls NET = Native.sockets();

    private Sockets() {}

    private static int errno() { return Native.errno(); }

    private static void check(String call, int rc) {
        if (rc < 0) {
            throw new NativeCallException(call, errno());
        }
    }

    /** socket(2) of {@code family} and {@code type} (SOCK_STREAM, SOCK_DGRAM), non-blocking and close-on-exec. */
    public static FileDescriptor socket(int family, int type) {
        int rc = NET.socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (rc < 0) {
            throw new NativeCallException("socket", errno());
        }
        return FileDescriptor.adopt(rc, "socket");
    }

    /**
     * socketpair(2) of AF_UNIX sockets of {@code type} (SOCK_STREAM, SOCK_DGRAM), both non-blocking and close-on-exec;
     * {@code inheritable} leaves close-on-exec off the second, for a child process (passt) to be given.
     */
    public static FileDescriptor[] socketPair(int type, boolean inheritable) {
        int[] sv = new int[2];
        check("socketpair", NET.socketpair(SockAddr.AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv));
        FileDescriptor a = FileDescriptor.adopt(sv[0], "socketpair");
        FileDescriptor b = FileDescriptor.adopt(sv[1], "socketpair");
        if (inheritable) {
            try {
                b.setCloseOnExec(false);
            } catch (RuntimeException e) {
                a.close();
                b.close();
                throw e;
            }
        }
        return new FileDescriptor[] {a, b};
    }

    /** The type of socket {@code fd} is (SO_TYPE: SOCK_STREAM, SOCK_DGRAM...); throws ENOTSOCK for another file. */
    public static int socketType(int fd) {
        byte[] v = new byte[4];
        int[] len = {4};
        check("getsockopt(SO_TYPE, " + fd + ")", NET.getsockopt(fd, SOL_SOCKET, SO_TYPE, v, len));
        return ByteBuffer.wrap(v).order(ByteOrder.nativeOrder()).getInt();
    }

    public static void bind(FileDescriptor fd, SockAddr addr) {
        check("bind(" + addr + ")", NET.bind(fd.raw(), addr.raw(), addr.length()));
    }

    public static void listen(FileDescriptor fd, int backlog) { check("listen", NET.listen(fd.raw(), backlog)); }

    /** accept4(2): the next pending connection, non-blocking and close-on-exec, or null when none is pending. */
    public static FileDescriptor accept(FileDescriptor fd) {
        while (true) {
            int rc = NET.accept4(fd.raw(), 0, 0, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (rc >= 0) {
                return FileDescriptor.adopt(rc, "accept4");
            }
            int e = errno();
            if (e == Errno.EAGAIN) {
                return null;
            }
            // accept(2): ECONNABORTED is a connection that went away while queued; EINTR a signal.
            if (e != Errno.EINTR && e != ECONNABORTED) {
                throw new NativeCallException("accept4", e);
            }
        }
    }

    /**
     * connect(2) of a non-blocking socket: true when connected, false when it goes on in the background
     * (EINPROGRESS: wait for the socket to be writable, then {@link #soError}). A full AF_UNIX backlog is EAGAIN,
     * thrown like any other failure.
     */
    public static boolean connect(FileDescriptor fd, SockAddr addr) {
        int rc = NET.connect(fd.raw(), addr.raw(), addr.length());
        if (rc == 0) {
            return true;
        }
        int e = errno();
        // connect(2): interrupted by a signal, the connection is still being established asynchronously.
        if (e == EINPROGRESS || e == Errno.EINTR) {
            return false;
        }
        throw new NativeCallException("connect(" + addr + ")", e);
    }

    /**
     * recv(2) into {@code dst} from its position (direct buffers without a copy); advances the position.
     *
     * @return the count, 0 when nothing is there yet (EAGAIN), -1 at end of stream
     */
    public static int read(FileDescriptor fd, ByteBuffer dst) {
        int want = dst.remaining();
        if (want == 0) {
            return 0;
        }
        while (true) {
            long n = NET.recv(fd.raw(), dst, want, 0);
            if (n > 0) {
                dst.position(dst.position() + (int) n);
                return (int) n;
            }
            if (n == 0) {
                return -1;
            }
            int e = errno();
            if (e == Errno.EAGAIN) {
                return 0;
            }
            if (e != Errno.EINTR) {
                throw new NativeCallException("recv", e);
            }
        }
    }

    /**
     * send(2) of {@code src} from its position with MSG_NOSIGNAL; advances the position.
     *
     * @return the count, 0 when the socket has no room (EAGAIN)
     */
    public static int write(FileDescriptor fd, ByteBuffer src) {
        int want = src.remaining();
        if (want == 0) {
            return 0;
        }
        while (true) {
            long n = NET.send(fd.raw(), src, want, MSG_NOSIGNAL);
            if (n >= 0) {
                src.position(src.position() + (int) n);
                return (int) n;
            }
            int e = errno();
            if (e == Errno.EAGAIN) {
                return 0;
            }
            if (e != Errno.EINTR) {
                throw new NativeCallException("send", e);
            }
        }
    }

    /** shutdown(2) with {@link #SHUT_RD}, {@link #SHUT_WR} or {@link #SHUT_RDWR}. */
    public static void shutdown(FileDescriptor fd, int how) { check("shutdown", NET.shutdown(fd.raw(), how)); }

    /** The pending error of a socket (SO_ERROR, cleared by reading it): 0 when none, else an errno. */
    public static int soError(FileDescriptor fd) { return intOption(fd, SOL_SOCKET, SO_ERROR); }

    public static int intOption(FileDescriptor fd, int level, int name) {
        byte[] v = new byte[4];
        int[] len = {4};
        check("getsockopt", NET.getsockopt(fd.raw(), level, name, v, len));
        return ByteBuffer.wrap(v).order(ByteOrder.nativeOrder()).getInt();
    }

    public static void setIntOption(FileDescriptor fd, int level, int name, int value) {
        byte[] v = ByteBuffer.allocate(4).order(ByteOrder.nativeOrder()).putInt(value).array();
        check("setsockopt", NET.setsockopt(fd.raw(), level, name, v, 4));
    }

    /** getsockname(2). */
    public static SockAddr localAddress(FileDescriptor fd) {
        byte[] a = new byte[SockAddr.MAX_SIZE];
        int[] len = {a.length};
        check("getsockname", NET.getsockname(fd.raw(), a, len));
        return SockAddr.ofRaw(java.util.Arrays.copyOf(a, Math.min(len[0], a.length)));
    }

    /** getpeername(2). */
    public static SockAddr peerAddress(FileDescriptor fd) {
        byte[] a = new byte[SockAddr.MAX_SIZE];
        int[] len = {a.length};
        check("getpeername", NET.getpeername(fd.raw(), a, len));
        return SockAddr.ofRaw(java.util.Arrays.copyOf(a, Math.min(len[0], a.length)));
    }

    /**
     * sendto(2) of one datagram from {@code src}'s position to {@code to} with MSG_NOSIGNAL; advances the position.
     *
     * @return the count, 0 when the socket has no room (EAGAIN: the datagram is not sent)
     */
    public static int sendTo(FileDescriptor fd, ByteBuffer src, SockAddr to) {
        int want = src.remaining();
        while (true) {
            long n = NET.sendto(fd.raw(), src, want, MSG_NOSIGNAL, to.raw(), to.length());
            if (n >= 0) {
                src.position(src.position() + (int) n);
                return (int) n;
            }
            int e = errno();
            if (e == Errno.EAGAIN) {
                return 0;
            }
            if (e != Errno.EINTR) {
                throw new NativeCallException("sendto(" + to + ")", e);
            }
        }
    }

    /** One datagram received: its length before truncation to the buffer ({@code MSG_TRUNC}) and its sender. */
    public record Datagram(int length, SockAddr from) {}

    /**
     * recvfrom(2) of one datagram into {@code dst} from its position (truncated to what remains); advances the
     * position by the bytes stored.
     *
     * @return the datagram, or null when none is queued (EAGAIN)
     */
    public static Datagram receiveFrom(FileDescriptor fd, ByteBuffer dst) {
        byte[] a = new byte[SockAddr.MAX_SIZE];
        while (true) {
            int[] alen = {a.length};
            long n = NET.recvfrom(fd.raw(), dst, dst.remaining(), MSG_TRUNC, a, alen);
            if (n >= 0) {
                dst.position(dst.position() + (int) Math.min(n, dst.remaining()));
                int len = Math.min(alen[0], a.length);
                return new Datagram((int) n, len >= 2 ? SockAddr.ofRaw(java.util.Arrays.copyOf(a, len)) : null);
            }
            int e = errno();
            if (e == Errno.EAGAIN) {
                return null;
            }
            if (e != Errno.EINTR) {
                throw new NativeCallException("recvfrom", e);
            }
        }
    }

    /**
     * A non-blocking AF_UNIX stream socket listening on {@code path} (which must not exist: bind fails EADDRINUSE).
     */
    public static FileDescriptor listenUnix(Path path, int backlog) {
        SockAddr addr = SockAddr.unix(path);
        FileDescriptor fd = socket(SockAddr.AF_UNIX, SOCK_STREAM);
        try {
            bind(fd, addr);
            listen(fd, backlog);
            return fd;
        } catch (RuntimeException e) {
            fd.close();
            throw e;
        }
    }

    /** An AF_UNIX stream socket connecting to {@code path}: connected, or (rarely) still connecting. */
    public record Connecting(FileDescriptor fd, boolean connected) {}

    /** Starts connecting a non-blocking AF_UNIX stream socket to {@code path}; the socket is closed on failure. */
    public static Connecting connectUnix(Path path) {
        SockAddr addr = SockAddr.unix(path);
        FileDescriptor fd = socket(SockAddr.AF_UNIX, SOCK_STREAM);
        try {
            return new Connecting(fd, connect(fd, addr));
        } catch (RuntimeException e) {
            fd.close();
            throw e;
        }
    }
}
