package dev.jkrun.libc;

import java.nio.ByteBuffer;
import jnr.ffi.annotations.In;
import jnr.ffi.annotations.Out;
import jnr.ffi.annotations.SaveError;

/**
 * The raw BSD-socket surface, package-private: {@link Sockets} is the typed wrapper. Socket addresses are raw
 * {@code struct sockaddr} bytes ({@link SockAddr}), so new families need no new declarations here. The interface
 * is public inside this holder for jnr-ffi's generated class, as in {@link LibCFs}.
 */
final class LibCSocket {
    private LibCSocket() {}

    public interface Calls {
    @SaveError int socket(int domain, int type, int protocol);
    @SaveError int socketpair(int domain, int type, int protocol, @Out int[] sv);
    @SaveError int bind(int fd, @In byte[] addr, int addrlen);
    @SaveError int listen(int fd, int backlog);
    @SaveError int accept4(int fd, long addr, long addrlen, int flags);
    @SaveError int connect(int fd, @In byte[] addr, int addrlen);
    @SaveError long recv(int fd, @Out ByteBuffer buf, long len, int flags);
    @SaveError long send(int fd, @In ByteBuffer buf, long len, int flags);
    @SaveError int shutdown(int fd, int how);
    @SaveError int getsockopt(int fd, int level, int name, @Out byte[] value, @In @Out int[] len);
    @SaveError int setsockopt(int fd, int level, int name, @In byte[] value, int len);
    @SaveError int getsockname(int fd, @Out byte[] addr, @In @Out int[] len);
    @SaveError int getpeername(int fd, @Out byte[] addr, @In @Out int[] len);
    @SaveError long sendto(int fd, @In ByteBuffer buf, long len, int flags, @In byte[] addr, int addrlen);
    @SaveError long recvfrom(int fd, @Out ByteBuffer buf, long len, int flags, @Out byte[] addr, @In @Out int[] alen);
    }
}
