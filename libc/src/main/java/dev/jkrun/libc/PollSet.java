package dev.jkrun.libc;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A {@link Poller} on poll(2), for hosts without epoll (macOS): the registrations are kept here and handed to poll as
 * one pollfd array per wait. A change made while a wait is in progress wakes it (an {@link EventFd} of its own), so
 * the wait goes on with the new set, as an epoll wait would. struct pollfd and the POLL* bits are the same on Linux
 * and macOS; POLLRDHUP exists only on Linux and is asked for only there. A descriptor closed while registered is
 * reported once as ERR (POLLNVAL) and dropped, as epoll drops a closed file; a registration, as with epoll, should
 * end before its descriptor is closed (a number reused meanwhile would be watched under the old token).
 */
public final class PollSet implements Poller {
    private static final int POLLFD = 8, POLLNVAL = 0x20;
    private static final int RDHUP_SUPPORTED = HostOs.MACOS ? 0 : RDHUP;

    private record Reg(int events, long token) {}

    private final Object lock = new Object();
    /** fd → registration, guarded by {@link #lock}. */
    private final Map<Integer, Reg> regs = new LinkedHashMap<>();
    private boolean changed = true;
    private volatile boolean waiting;
    private final EventFd wake = new EventFd();
    private NativeBuffer fds = NativeBuffer.allocate(POLLFD);
    private long[] tokens = new long[0];
    private int count;
    /** Where the next batch starts looking, so that a full batch does not always favour the first descriptors. */
    private int rotate;
    private boolean closed;

    @Override
    public void add(int fd, int events, long token) {
        synchronized (lock) {
            if (regs.containsKey(fd)) {
                throw new NativeCallException("poll set add(" + fd + ")", Errno.EEXIST);
            }
            put(fd, events, token);
        }
    }

    @Override
    public void modify(int fd, int events, long token) {
        synchronized (lock) {
            if (!regs.containsKey(fd)) {
                throw new NativeCallException("poll set modify(" + fd + ")", Errno.ENOENT);
            }
            put(fd, events, token);
        }
    }

    private void put(int fd, int events, long token) {
        if (fd < 0) {
            throw new NativeCallException("poll set (" + fd + ")", Errno.EBADF);
        }
        regs.put(fd, new Reg(events & (IN | OUT | RDHUP_SUPPORTED), token));
        changedWhileWaiting();
    }

    @Override
    public void delete(int fd) {
        synchronized (lock) {
            if (regs.remove(fd) == null) {
                throw new NativeCallException("poll set delete(" + fd + ")", Errno.ENOENT);
            }
            changedWhileWaiting();
        }
    }

    private void changedWhileWaiting() {
        changed = true;
        if (waiting) {
            wake.signal();
        }
    }

    /** The pollfd array for the current set, with the wake descriptor last. Under {@link #lock}. */
    private void rebuild() {
        count = regs.size();
        if (fds.size() < (long) (count + 1) * POLLFD) {
            fds = NativeBuffer.allocate((count + 1) * 2 * POLLFD);
        }
        if (tokens.length < count) {
            tokens = new long[count * 2];
        }
        int i = 0;
        for (Map.Entry<Integer, Reg> e : regs.entrySet()) {
            fds.putInt((long) i * POLLFD, e.getKey());
            fds.putShort((long) i * POLLFD + 4, (short) e.getValue().events());
            tokens[i++] = e.getValue().token();
        }
        fds.putInt((long) count * POLLFD, wake.fd().raw());
        fds.putShort((long) count * POLLFD + 4, (short) IN);
        changed = false;
    }

    @Override
    public int await(Events out, int timeoutMs) {
        out.size = 0;
        synchronized (lock) {
            if (closed) {
                throw new IllegalStateException("poll set closed");
            }
            if (changed) {
                rebuild();
            }
            waiting = true;
        }
        int n = count;
        for (int i = 0; i <= n; i++) {
            fds.putShort((long) i * POLLFD + 6, (short) 0);
        }
        int rc = Native.libc().poll(fds.address(), n + 1, timeoutMs);
        int errno = rc < 0 ? Native.errno() : 0;
        waiting = false;
        if (rc < 0) {
            if (errno == Errno.EINTR) {
                return 0;
            }
            throw new NativeCallException("poll", errno);
        }
        if ((fds.getShort((long) n * POLLFD + 6) & 0xFFFF) != 0) {
            wake.await(); // a change: the caller waits again on the new set (readable: does not block)
        }
        int start = n == 0 ? 0 : rotate % n;
        for (int k = 0; k < n && out.size < out.capacity(); k++) {
            int i = (start + k) % n;
            int revents = fds.getShort((long) i * POLLFD + 6) & 0xFFFF;
            if (revents == 0) {
                continue;
            }
            out.bits[out.size] = (revents & (IN | OUT | ERR | HUP | RDHUP_SUPPORTED)) | ((revents & POLLNVAL) != 0 ? ERR : 0);
            out.tokens[out.size++] = tokens[i];
            if ((revents & POLLNVAL) != 0) { // closed before its registration: reported once, then dropped
                dropClosed(fds.getInt((long) i * POLLFD), tokens[i]);
            }
        }
        rotate = start + 1;
        return out.size;
    }

    /**
     * Drops the registration of a descriptor poll found closed (POLLNVAL), unless it was registered anew since (the
     * token tells): epoll forgets a closed file by itself, and a closed one must not fire on every wait.
     */
    private void dropClosed(int fd, long token) {
        synchronized (lock) {
            Reg r = regs.get(fd);
            if (r != null && r.token() == token) {
                regs.remove(fd);
                changed = true;
            }
        }
    }

    @Override
    public void close() {
        synchronized (lock) {
            if (closed) {
                return;
            }
            closed = true;
            regs.clear();
        }
        wake.close();
    }
}
