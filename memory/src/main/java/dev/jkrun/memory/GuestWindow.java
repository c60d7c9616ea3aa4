package dev.jkrun.memory;

/**
 * A checked window onto one range of guest RAM that lies inside a single region, for structures a device touches on
 * every request (the virtqueue rings): the range is resolved and checked against guest RAM once, when the window is
 * made, and each access checks only its offset against the window's length ({@link GuestMemoryException} outside
 * it, as outside RAM). Little-endian, unaligned accesses allowed. A window of released memory refuses every access
 * made after the release, as the memory itself does (for a window over mapped RAM: by a thread that has
 * synchronized with the release; see {@link RawWindow}).
 */
public interface GuestWindow {
    GuestAddress start();

    long length();

    short readShort(long offset);

    long readLong(long offset);

    void writeShort(long offset, short value);

    void writeLong(long offset, long value);

    /** {@link GuestMemory#readShortAcquire}, at {@code start + offset}. */
    short readShortAcquire(long offset);

    /** {@link GuestMemory#writeShortRelease}, at {@code start + offset}. */
    void writeShortRelease(long offset, short value);

    /**
     * The refusal of an access at {@code offset} of {@code n} bytes outside a window: the same exception as an access
     * outside guest RAM, so that code handling one handles both.
     */
    static GuestMemoryException outside(GuestAddress start, long offset, int n) {
        return new GuestMemoryException(GuestMemoryException.Reason.OUT_OF_BOUNDS, GuestAddress.of(start.value() + offset), n);
    }

    /** The window any {@link GuestMemory} can give: each access goes through the memory's own checked calls. */
    final class Delegating implements GuestWindow {
        private final GuestMemory mem;
        private final long start;
        private final long length;

        Delegating(GuestMemory mem, GuestAddress start, long length) {
            this.mem = mem;
            this.start = start.value();
            this.length = length;
        }

        private GuestAddress at(long offset, int n) {
            if (offset < 0 || offset > length - n) {
                throw outside(GuestAddress.of(start), offset, n);
            }
            return GuestAddress.of(start + offset);
        }

        @Override
        public GuestAddress start() { return GuestAddress.of(start); }

        @Override
        public long length() { return length; }

        @Override
        public short readShort(long offset) { return mem.readShort(at(offset, 2)); }

        @Override
        public long readLong(long offset) { return mem.readLong(at(offset, 8)); }

        @Override
        public void writeShort(long offset, short value) { mem.writeShort(at(offset, 2), value); }

        @Override
        public void writeLong(long offset, long value) { mem.writeLong(at(offset, 8), value); }

        @Override
        public short readShortAcquire(long offset) { return mem.readShortAcquire(at(offset, 2)); }

        @Override
        public void writeShortRelease(long offset, short value) { mem.writeShortRelease(at(offset, 2), value); }
    }
}
