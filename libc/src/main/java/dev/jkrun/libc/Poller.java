package dev.jkrun.libc;

/**
 * Readiness of many descriptors for one waiting thread, level-triggered: register a descriptor with an interest set
 * and a 64-bit token, then wait for a batch of ready ones. {@link Epoll} on Linux; {@link PollSet}, on poll(2), where
 * there is no epoll (macOS) or when {@code -Djkrun.poller=poll} asks for it on Linux (so the device runtime's macOS
 * path runs in Linux's tests). The bits are epoll's, which poll(2) shares on both systems (RDHUP only on Linux).
 */
public interface Poller extends AutoCloseable {
    int IN = 0x1, OUT = 0x4, ERR = 0x8, HUP = 0x10, RDHUP = 0x2000;

    /** The host's poller. */
    static Poller open() {
        boolean linux = System.getProperty("os.name", "").equals("Linux");
        return linux && !"poll".equals(System.getProperty("jkrun.poller")) ? new Epoll() : new PollSet();
    }

    void add(int fd, int events, long token);

    void modify(int fd, int events, long token);

    void delete(int fd);

    /**
     * Waits up to {@code timeoutMs} (-1: forever, 0: not at all) for ready descriptors and fills {@code out}.
     * Returns the number of events (0 on timeout or a signal).
     */
    int await(Events out, int timeoutMs);

    @Override
    void close();

    /** Where one wait's ready descriptors land; reuse one per waiting thread (nothing allocates per wait). */
    final class Events {
        final int[] bits;
        final long[] tokens;
        int size;

        public Events(int capacity) {
            if (capacity < 1) {
                throw new IllegalArgumentException("capacity " + capacity);
            }
            bits = new int[capacity];
            tokens = new long[capacity];
        }

        public int capacity() { return bits.length; }

        public int size() { return size; }

        /** The ready bits of event {@code i}. */
        public int events(int i) { return bits[check(i)]; }

        /** The token event {@code i}'s descriptor was registered with. */
        public long data(int i) { return tokens[check(i)]; }

        private int check(int i) {
            if (i < 0 || i >= size) {
                throw new IndexOutOfBoundsException(i + " of " + size);
            }
            return i;
        }
    }
}
