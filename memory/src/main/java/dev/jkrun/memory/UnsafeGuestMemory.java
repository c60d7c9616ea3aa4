package dev.jkrun.memory;

import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The accessor shared by the off-heap and heap-backed memories: each region is an (object, offset) pair that
 * {@code sun.misc.Unsafe} can address (null + host address for mmap, byte[] + array base for heap). Every public
 * method resolves its range to one region first, and checks the resulting offset against the backing once more
 * where memory is touched, so no unchecked address ever reaches Unsafe.
 */
abstract class UnsafeGuestMemory implements GuestMemory {
    static final sun.misc.Unsafe U;

    static {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new ExceptionInInitializerError("jkrun needs a little-endian host");
        }
        try {
            Field f = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            U = (sun.misc.Unsafe) f.get(null);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /**
     * A region and where Unsafe finds its first byte; {@code capacity} is how many bytes the host really holds
     * there (the array's length, the mapping's size), which every access is checked against once more.
     */
    static final class Backing {
        private final MemoryRegion region;
        private final Object base;
        private final long baseOffset;
        private final long capacity;
        /** The region's start and size, copied here so that a check reads them without two more indirections. */
        final long start;
        final long size;

        Backing(MemoryRegion region, Object base, long baseOffset, long capacity) {
            if (capacity < region.size()) {
                throw new IllegalArgumentException("region " + region + " larger than its backing (" + capacity + " bytes)");
            }
            this.region = region;
            this.base = base;
            this.baseOffset = baseOffset;
            this.capacity = capacity;
            this.start = region.start().value();
            this.size = region.size();
        }

        MemoryRegion region() { return region; }

        Object base() { return base; }

        long baseOffset() { return baseOffset; }

        long capacity() { return capacity; }

        /** {@link MemoryRegion#contains}, on the copied fields. */
        boolean contains(long addr, long len) { return MemoryRegion.contains(start, size, addr, len); }
    }

    private final Backing[] backings;
    private final List<MemoryRegion> regions;

    UnsafeGuestMemory(List<Backing> backings) {
        List<Backing> sorted = new ArrayList<>(backings);
        sorted.sort((a, b) -> a.region().start().compareTo(b.region().start()));
        for (int i = 1; i < sorted.size(); i++) {
            if (Long.compareUnsigned(sorted.get(i).region().start().value(), sorted.get(i - 1).region().end()) < 0) {
                throw new IllegalArgumentException("overlapping guest memory regions");
            }
        }
        this.backings = sorted.toArray(new Backing[0]);
        List<MemoryRegion> rs = new ArrayList<>();
        for (Backing b : this.backings) {
            rs.add(b.region());
        }
        this.regions = Collections.unmodifiableList(rs);
    }

    @Override
    public List<MemoryRegion> regions() { return regions; }

    /** The backings, sorted by guest address. */
    List<Backing> backingList() { return List.of(backings); }

    @Override
    public boolean contains(GuestAddress addr, long len) { return find(addr.value(), len) != null; }

    private Backing find(long addr, long len) {
        for (Backing b : backings) {
            if (b.contains(addr, len)) {
                return b;
            }
        }
        return null;
    }

    /** Checks the range and returns the backing that holds it; {@link #at} gives the Unsafe offset. */
    private Backing check(GuestAddress addr, long len) {
        ensureOpen();
        if (len < 0) {
            throw new GuestMemoryException(GuestMemoryException.Reason.BAD_LENGTH, addr, len);
        }
        if (Long.compareUnsigned(addr.value() + len, addr.value()) < 0) {
            throw new GuestMemoryException(GuestMemoryException.Reason.OVERFLOW, addr, len);
        }
        Backing b = find(addr.value(), len);
        if (b == null) {
            throw new GuestMemoryException(GuestMemoryException.Reason.OUT_OF_BOUNDS, addr, len);
        }
        return b;
    }

    /**
     * The Unsafe offset of {@code [addr, addr+len)} in {@code b}, checked again right before memory is touched:
     * independently of {@link MemoryRegion#contains} (a wrong answer there once let guest addresses at or above
     * 2^63 reach host memory below the mapping), the offset and the length must lie inside the backing. Both are
     * then below 2^63, so the signed comparison is exact; {@code capacity - off} cannot overflow.
     */
    static long at(Backing b, GuestAddress addr, long len) {
        long off = addr.value() - b.start;
        if ((off | len) < 0 || len > b.capacity - off) {
            throw new GuestMemoryException(GuestMemoryException.Reason.OUT_OF_BOUNDS, addr, len);
        }
        return b.baseOffset + off;
    }

    /** Throws once the memory is released. */
    abstract void ensureOpen();

    /** A ByteBuffer over {@code length} bytes at the given Unsafe location. */
    abstract ByteBuffer viewOf(Backing b, long offset, int length);

    @Override
    public byte readByte(GuestAddress addr) {
        Backing b = check(addr, 1);
        return U.getByte(b.base(), at(b, addr, 1));
    }

    @Override
    public short readShort(GuestAddress addr) {
        Backing b = check(addr, 2);
        return U.getShort(b.base(), at(b, addr, 2));
    }

    @Override
    public int readInt(GuestAddress addr) {
        Backing b = check(addr, 4);
        return U.getInt(b.base(), at(b, addr, 4));
    }

    @Override
    public long readLong(GuestAddress addr) {
        Backing b = check(addr, 8);
        return U.getLong(b.base(), at(b, addr, 8));
    }

    @Override
    public void writeByte(GuestAddress addr, byte value) {
        Backing b = check(addr, 1);
        U.putByte(b.base(), at(b, addr, 1), value);
    }

    @Override
    public void writeShort(GuestAddress addr, short value) {
        Backing b = check(addr, 2);
        U.putShort(b.base(), at(b, addr, 2), value);
    }

    @Override
    public void writeInt(GuestAddress addr, int value) {
        Backing b = check(addr, 4);
        U.putInt(b.base(), at(b, addr, 4), value);
    }

    @Override
    public void writeLong(GuestAddress addr, long value) {
        Backing b = check(addr, 8);
        U.putLong(b.base(), at(b, addr, 8), value);
    }

    // Acquire and release as a plain access plus a fence (as the FFM accessor does): a volatile store would add the
    // StoreLoad fence (x86: a locked instruction) that only needsNotification's explicit fullFence needs.
    @Override
    public short readShortAcquire(GuestAddress addr) {
        Backing b = check(addr, 2);
        return getShortAcquire(b.base(), at(b, addr, 2));
    }

    @Override
    public void writeShortRelease(GuestAddress addr, short value) {
        Backing b = check(addr, 2);
        putShortRelease(b.base(), at(b, addr, 2), value);
    }

    /** At an offset already checked. */
    static short getShortAcquire(Object base, long offset) {
        short v = U.getShort(base, offset);
        U.loadFence();
        return v;
    }

    /** At an offset already checked. */
    static void putShortRelease(Object base, long offset, short value) {
        U.storeFence();
        U.putShort(base, offset, value);
    }

    @Override
    public void fullFence() { U.fullFence(); }

    @Override
    public void read(GuestAddress addr, byte[] dst, int off, int length) {
        java.util.Objects.checkFromIndexSize(off, length, dst.length);
        Backing b = check(addr, length);
        U.copyMemory(b.base(), at(b, addr, length), dst, sun.misc.Unsafe.ARRAY_BYTE_BASE_OFFSET + off, length);
    }

    @Override
    public void write(GuestAddress addr, byte[] src, int off, int length) {
        java.util.Objects.checkFromIndexSize(off, length, src.length);
        Backing b = check(addr, length);
        U.copyMemory(src, sun.misc.Unsafe.ARRAY_BYTE_BASE_OFFSET + off, b.base(), at(b, addr, length), length);
    }

    @Override
    public void read(GuestAddress addr, ByteBuffer dst) {
        int n = dst.remaining();
        Backing b = check(addr, n);
        dst.put(viewOf(b, at(b, addr, n), n));
    }

    @Override
    public void write(GuestAddress addr, ByteBuffer src) {
        int n = src.remaining();
        Backing b = check(addr, n);
        viewOf(b, at(b, addr, n), n).put(src);
    }

    @Override
    public void fill(GuestAddress addr, long length, byte value) {
        Backing b = check(addr, length);
        U.setMemory(b.base(), at(b, addr, length), length, value);
    }

    @Override
    public GuestWindow window(GuestAddress addr, long len) {
        Backing b = check(addr, len);
        return newWindow(b, at(b, addr, len), addr, len);
    }

    /** A window over {@code len} bytes at the Unsafe location {@code (b.base(), offset)}, already checked. */
    GuestWindow newWindow(Backing b, long offset, GuestAddress addr, long len) {
        return new Window(b.base(), offset, addr, len);
    }

    /** A window checked against guest RAM once: each access checks its offset against the length, and liveness. */
    private final class Window implements GuestWindow {
        private final Object base;
        private final long baseOffset;
        private final GuestAddress start;
        private final long length;

        Window(Object base, long baseOffset, GuestAddress start, long length) {
            this.base = base;
            this.baseOffset = baseOffset;
            this.start = start;
            this.length = length;
        }

        private long at(long offset, int n) {
            if (offset < 0 || offset > length - n) {
                throw GuestWindow.outside(start, offset, n);
            }
            ensureOpen();
            return baseOffset + offset;
        }

        @Override
        public GuestAddress start() { return start; }

        @Override
        public long length() { return length; }

        @Override
        public short readShort(long offset) { return U.getShort(base, at(offset, 2)); }

        @Override
        public long readLong(long offset) { return U.getLong(base, at(offset, 8)); }

        @Override
        public void writeShort(long offset, short value) { U.putShort(base, at(offset, 2), value); }

        @Override
        public void writeLong(long offset, long value) { U.putLong(base, at(offset, 8), value); }

        @Override
        public short readShortAcquire(long offset) { return getShortAcquire(base, at(offset, 2)); }

        @Override
        public void writeShortRelease(long offset, short value) { putShortRelease(base, at(offset, 2), value); }
    }

    @Override
    public ByteBuffer view(GuestAddress addr, int length) {
        Backing b = check(addr, length);
        return viewOf(b, at(b, addr, length), length).order(ByteOrder.LITTLE_ENDIAN);
    }
}
