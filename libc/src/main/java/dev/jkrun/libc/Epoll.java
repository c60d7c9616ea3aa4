package dev.jkrun.libc;

/**
 * An epoll(7) instance: register descriptors with an interest set and a 64-bit token, then wait for readiness in
 * batches. Level-triggered only (no EPOLLET): a ready descriptor stays ready until its owner drains it. Every
 * failure throws {@link NativeCallException}; EINTR in {@link #await} is an empty batch.
 */
public final class Epoll implements Poller {
    /** Event bits (sys/epoll.h). */
    public static final int EPOLLIN = 0x1, EPOLLPRI = 0x2, EPOLLOUT = 0x4, EPOLLERR = 0x8, EPOLLHUP = 0x10,
            EPOLLRDHUP = 0x2000;
    private static final int EPOLL_CLOEXEC = 0x80000;
    private static final int EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3;
    /**
     * struct epoll_event: u32 events at 0 and u64 data after it, packed on x86_64 (data at 4, 12 bytes) and naturally
     * aligned elsewhere (data at 8, 16 bytes), as sys/epoll.h's __EPOLL_PACKED says.
     */
    private static final boolean PACKED = System.getProperty("os.arch").equals("amd64");
    static final int EVENT_SIZE = PACKED ? 12 : 16;
    private static final int DATA = PACKED ? 4 : 8;

    private static final LibCEpoll.Calls EP = Native.epoll();

    private final FileDescriptor fd;
    /** One event for epoll_ctl; ctl calls are serialized on it (they come from any thread). */
    private final NativeBuffer ctlEvent = NativeBuffer.allocate(EVENT_SIZE);

    public Epoll() {
        int rc = EP.epoll_create1(EPOLL_CLOEXEC);
        if (rc < 0) {
            throw new NativeCallException("epoll_create1", Native.errno());
        }
        fd = FileDescriptor.adopt(rc, "epoll");
    }

    /** Where the ready events of one {@link #await} land; reuse one per waiting thread. */
    public static final class Events {
        private final NativeBuffer buf;
        private final int capacity;
        private int size;

        public Events(int capacity) {
            if (capacity < 1) {
                throw new IllegalArgumentException("capacity " + capacity);
            }
            this.capacity = capacity;
            this.buf = NativeBuffer.allocate(Math.multiplyExact(capacity, EVENT_SIZE));
        }

        public int capacity() { return capacity; }

        /** Events in the last batch. */
        public int size() { return size; }

        /** The ready bits of event {@code i}. */
        public int events(int i) { return buf.getInt(check(i) * (long) EVENT_SIZE); }

        /** The token event {@code i}'s descriptor was registered with. */
        public long data(int i) { return buf.getLong(check(i) * (long) EVENT_SIZE + DATA); }

        private int check(int i) {
            if (i < 0 || i >= size) {
                throw new IndexOutOfBoundsException(i + " of " + size);
            }
            return i;
        }
    }

    public FileDescriptor fd() { return fd; }

    public void add(int target, int events, long data) { ctl(EPOLL_CTL_ADD, "EPOLL_CTL_ADD", target, events, data); }

    public void modify(int target, int events, long data) { ctl(EPOLL_CTL_MOD, "EPOLL_CTL_MOD", target, events, data); }

    public void delete(int target) { ctl(EPOLL_CTL_DEL, "EPOLL_CTL_DEL", target, 0, 0); }

    private synchronized void ctl(int op, String name, int target, int events, long data) {
        ctlEvent.putInt(0, events);
        ctlEvent.putLong(DATA, data);
        if (EP.epoll_ctl(fd.raw(), op, target, ctlEvent.address()) < 0) {
            throw new NativeCallException("epoll_ctl(" + name + ", " + target + ")", Native.errno());
        }
    }

    /**
     * Waits up to {@code timeoutMs} (-1: forever, 0: not at all) for ready descriptors and fills {@code out}.
     * Returns the number of events (0 on timeout or a signal).
     */
    public int await(Events out, int timeoutMs) {
        int rc = EP.epoll_wait(fd.raw(), out.buf.address(), out.capacity, timeoutMs);
        if (rc < 0) {
            int e = Native.errno();
            if (e != Errno.EINTR) {
                out.size = 0;
                throw new NativeCallException("epoll_wait", e);
            }
            rc = 0;
        }
        out.size = rc;
        return rc;
    }

    /** The native events {@link #await(Poller.Events, int)} fills before copying; one waiting thread uses it. */
    private Events batch;

    @Override
    public int await(Poller.Events out, int timeoutMs) {
        Events b = batch;
        if (b == null || b.capacity() < out.capacity()) {
            batch = b = new Events(out.capacity());
        }
        int n = await(b, Math.min(timeoutMs < 0 ? -1 : timeoutMs, Integer.MAX_VALUE));
        n = Math.min(n, out.capacity());
        for (int i = 0; i < n; i++) {
            out.bits[i] = b.events(i);
            out.tokens[i] = b.data(i);
        }
        out.size = n;
        return n;
    }

    @Override
    public void close() { fd.close(); }
}
