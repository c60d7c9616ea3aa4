package dev.jkrun.libc;

import static dev.jkrun.libc.FfmCalls.I;
import static dev.jkrun.libc.FfmCalls.J;
import static dev.jkrun.libc.FfmCalls.UNREAD;
import static dev.jkrun.libc.FfmCalls.call;
import static dev.jkrun.libc.FfmCalls.count;
import static dev.jkrun.libc.FfmCalls.enter;
import static dev.jkrun.libc.FfmCalls.rethrow;
import static dev.jkrun.libc.FfmCalls.saving;
import static dev.jkrun.libc.FfmCalls.socklen;

import dev.jkrun.libc.FfmCalls.PerThread;
import java.lang.invoke.MethodHandle;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;

/**
 * {@link LibCSocket.Calls} as FFM downcalls (JDK 22+); buffers as in {@link FfmFs}.
 * Each function's handle is bound the first time it is called (its holder class's initialization): the JDK spins
 * code for each new call shape, so binding all of them up front cost a start-up ~140 ms.
 */
final class FfmSockets implements LibCSocket.Calls {
    private static final class FnSocket {
        static final MethodHandle H = saving("socket", I, I, I, I);
    }

    private static final class FnSocketpair {
        static final MethodHandle H = saving("socketpair", I, I, I, I, J);
    }

    private static final class FnBind {
        static final MethodHandle H = saving("bind", I, I, J, I);
    }

    private static final class FnListen {
        static final MethodHandle H = saving("listen", I, I, I);
    }

    private static final class FnAccept4 {
        static final MethodHandle H = saving("accept4", I, I, J, J, I);
    }

    private static final class FnConnect {
        static final MethodHandle H = saving("connect", I, I, J, I);
    }

    private static final class FnRecv {
        static final MethodHandle H = saving("recv", J, I, J, J, I);
    }

    private static final class FnSend {
        static final MethodHandle H = saving("send", J, I, J, J, I);
    }

    private static final class FnShutdown {
        static final MethodHandle H = saving("shutdown", I, I, I);
    }

    private static final class FnGetsockopt {
        static final MethodHandle H = saving("getsockopt", I, I, I, I, J, J);
    }

    private static final class FnSetsockopt {
        static final MethodHandle H = saving("setsockopt", I, I, I, I, J, I);
    }

    private static final class FnGetsockname {
        static final MethodHandle H = saving("getsockname", I, I, J, J);
    }

    private static final class FnGetpeername {
        static final MethodHandle H = saving("getpeername", I, I, J, J);
    }

    private static final class FnSendto {
        static final MethodHandle H = saving("sendto", J, I, J, J, I, J, I);
    }

    private static final class FnRecvfrom {
        static final MethodHandle H = saving("recvfrom", J, I, J, J, I, J, J);
    }

    @Override
    public int socket(int domain, int type, int protocol) {
        PerThread t = enter();
        try {
            return (int) call(FnSocket.H, t.state, domain, type, protocol);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int socketpair(int domain, int type, int protocol, int[] sv) {
        PerThread t = enter();
        try {
            long svAt = t.out(sv);
            int rc = (int) call(FnSocketpair.H, t.state, domain, type, protocol, svAt);
            PerThread.back(svAt, sv);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int bind(int fd, byte[] addr, int addrlen) {
        PerThread t = enter();
        try {
            long addrAt = t.in(addr);
            return (int) call(FnBind.H, t.state, fd, addrAt, (int)count(addrlen,addr.length));
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int listen(int fd, int backlog) {
        PerThread t = enter();
        try {
            return (int) call(FnListen.H, t.state, fd, backlog);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int accept4(int fd, long addr, long addrlen, int flags) {
        PerThread t = enter();
        try {
            return (int) call(FnAccept4.H, t.state, fd, addr, addrlen, flags);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int connect(int fd, byte[] addr, int addrlen) {
        PerThread t = enter();
        try {
            long addrAt = t.in(addr);
            return (int) call(FnConnect.H, t.state, fd, addrAt, (int)count(addrlen,addr.length));
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long recv(int fd, ByteBuffer buf, long len, int flags) {
        PerThread t = enter();
        try {
            long bufAt = t.buffer(buf, false);
            long rc = (long) call(FnRecv.H, t.state, fd, bufAt, count(len,buf.remaining()), flags);
            PerThread.back(bufAt, buf, rc);
            Reference.reachabilityFence(buf);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long send(int fd, ByteBuffer buf, long len, int flags) {
        PerThread t = enter();
        try {
            long bufAt = t.buffer(buf, true);
            long rc = (long) call(FnSend.H, t.state, fd, bufAt, count(len,buf.remaining()), flags);
            Reference.reachabilityFence(buf);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int shutdown(int fd, int how) {
        PerThread t = enter();
        try {
            return (int) call(FnShutdown.H, t.state, fd, how);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int getsockopt(int fd, int level, int name, byte[] value, int[] len) {
        PerThread t = enter();
        try {
            socklen(len,value);
            long valueAt = t.out(value);
            long lenAt = t.in(len);
            int rc = (int) call(FnGetsockopt.H, t.state, fd, level, name, valueAt, lenAt);
            PerThread.back(valueAt, value, Long.MAX_VALUE);
            PerThread.back(lenAt, len);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int setsockopt(int fd, int level, int name, byte[] value, int len) {
        PerThread t = enter();
        try {
            long valueAt = t.in(value);
            return (int) call(FnSetsockopt.H, t.state, fd, level, name, valueAt, (int)count(len,value==null?0:value.length));
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int getsockname(int fd, byte[] addr, int[] len) {
        PerThread t = enter();
        try {
            socklen(len,addr);
            long addrAt = t.out(addr);
            long lenAt = t.in(len);
            int rc = (int) call(FnGetsockname.H, t.state, fd, addrAt, lenAt);
            PerThread.back(addrAt, addr, Long.MAX_VALUE);
            PerThread.back(lenAt, len);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public int getpeername(int fd, byte[] addr, int[] len) {
        PerThread t = enter();
        try {
            socklen(len,addr);
            long addrAt = t.out(addr);
            long lenAt = t.in(len);
            int rc = (int) call(FnGetpeername.H, t.state, fd, addrAt, lenAt);
            PerThread.back(addrAt, addr, Long.MAX_VALUE);
            PerThread.back(lenAt, len);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long sendto(int fd, ByteBuffer buf, long len, int flags, byte[] addr, int addrlen) {
        PerThread t = enter();
        try {
            long bufAt = t.buffer(buf, true);
            long addrAt = t.in(addr);
            long rc = (long) call(FnSendto.H, t.state, fd, bufAt, count(len,buf.remaining()), flags, addrAt, (int)count(addrlen,addr==null?0:addr.length));
            Reference.reachabilityFence(buf);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    @Override
    public long recvfrom(int fd, ByteBuffer buf, long len, int flags, byte[] addr, int[] alen) {
        PerThread t = enter();
        try {
            socklen(alen,addr);
            long bufAt = t.buffer(buf, false);
            long addrAt = t.out(addr);
            long alenAt = t.in(alen);
            long rc = (long) call(FnRecvfrom.H, t.state, fd, bufAt, count(len,buf.remaining()), flags, addrAt, alenAt);
            PerThread.back(bufAt, buf, rc);
            PerThread.back(addrAt, addr, Long.MAX_VALUE);
            PerThread.back(alenAt, alen);
            Reference.reachabilityFence(buf);
            return rc;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }
}
