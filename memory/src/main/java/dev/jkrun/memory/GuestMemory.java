package dev.jkrun.memory;

import java.nio.ByteBuffer;
import java.util.List;

/**
 * The guest's physical RAM as the rest of jkrun sees it: bounds-checked, little-endian accessors at
 * {@link GuestAddress}es. Every access lies wholly inside one {@link MemoryRegion} or throws
 * {@link GuestMemoryException} without touching memory. Implementations: {@link MmapGuestMemory} (off-heap,
 * registered with the hypervisor) and {@link HeapGuestMemory} (tests).
 */
public interface GuestMemory {
    /** RAM regions in ascending address order, non-overlapping. */
    List<MemoryRegion> regions();

    /** Whether {@code [addr, addr+len)} is inside one region. */
    boolean contains(GuestAddress addr, long len);

    byte readByte(GuestAddress addr);

    short readShort(GuestAddress addr);

    int readInt(GuestAddress addr);

    long readLong(GuestAddress addr);

    void writeByte(GuestAddress addr, byte value);

    void writeShort(GuestAddress addr, short value);

    void writeInt(GuestAddress addr, int value);

    void writeLong(GuestAddress addr, long value);

    /**
     * A 16-bit load with acquire semantics: virtqueue avail/used indexes, where the ring entries written
     * before the index by the other side must be visible after reading it.
     */
    short readShortAcquire(GuestAddress addr);

    /** A 16-bit store with release semantics: publishes ring entries written before it. */
    void writeShortRelease(GuestAddress addr, short value);

    /** A full fence: orders our used-index store before our read of the driver's event index (virtio 2.7.7.2). */
    void fullFence();

    void read(GuestAddress addr, byte[] dst, int offset, int length);

    void write(GuestAddress addr, byte[] src, int offset, int length);

    /** Copies {@code dst.remaining()} bytes from guest memory into {@code dst}, advancing its position. */
    void read(GuestAddress addr, ByteBuffer dst);

    /** Copies {@code src.remaining()} bytes into guest memory, advancing its position. */
    void write(GuestAddress addr, ByteBuffer src);

    void fill(GuestAddress addr, long length, byte value);

    /**
     * A ByteBuffer aliasing {@code [addr, addr+length)} of guest memory, for zero-copy I/O (file reads straight
     * into a guest buffer). Valid only while the memory is open.
     */
    ByteBuffer view(GuestAddress addr, int length);

    /** The guest page size {@link #discard} works in. */
    long PAGE_SIZE = 4096;

    /**
     * Gives the host memory behind the whole 4 KiB pages of {@code [addr, addr+len)} back to the host (a balloon's
     * inflated or reported pages): afterwards they read as zeros and a write gets a fresh page. Partial pages at
     * either end are left alone. Returns the bytes discarded (0 for a range without a whole page).
     *
     * @throws GuestMemoryException when the range is not inside one region (nothing is discarded)
     */
    default long discard(GuestAddress addr, long len) {
        long[] pages = wholePages(this, addr, len);
        if (pages[1] > 0) {
            fill(GuestAddress.of(pages[0]), pages[1], (byte) 0);
        }
        return pages[1];
    }

    /**
     * {@code {first, length}} of the whole pages inside {@code [addr, addr+len)}, which must lie in one region of
     * {@code mem}; length 0 when there is none.
     */
    static long[] wholePages(GuestMemory mem, GuestAddress addr, long len) {
        if (len < 0 || !mem.contains(addr, len)) {
            throw new GuestMemoryException(GuestMemoryException.Reason.OUT_OF_BOUNDS, addr, len);
        }
        long start = addr.value();
        long end = start + len; // contains(): no wrap
        long first = (start + PAGE_SIZE - 1) & -PAGE_SIZE;
        long last = end & -PAGE_SIZE;
        if (Long.compareUnsigned(first, start) < 0 || Long.compareUnsigned(last, first) <= 0) {
            return new long[] {first, 0};
        }
        return new long[] {first, last - first};
    }

    /**
     * A window onto {@code [addr, addr+len)}, which must lie inside one region ({@link GuestMemoryException}
     * otherwise). Accessors override it with windows that check only the offset on each access.
     */
    default GuestWindow window(GuestAddress addr, long len) {
        if (len < 0 || Long.compareUnsigned(addr.value() + len, addr.value()) < 0 || !contains(addr, len)) {
            throw new GuestMemoryException(GuestMemoryException.Reason.OUT_OF_BOUNDS, addr, len);
        }
        return new GuestWindow.Delegating(this, addr, len);
    }

    default byte[] readBytes(GuestAddress addr, int length) {
        byte[] b = new byte[length];
        read(addr, b, 0, length);
        return b;
    }

    default void write(GuestAddress addr, byte[] src) { write(addr, src, 0, src.length); }

    /** Total bytes of RAM. */
    default long size() {
        long s = 0;
        for (MemoryRegion r : regions()) {
            s += r.size();
        }
        return s;
    }
}
