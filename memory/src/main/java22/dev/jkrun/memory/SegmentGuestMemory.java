package dev.jkrun.memory;

import dev.jkrun.libc.AnonymousMapping;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * Guest memory on {@code java.lang.foreign}: one {@link MemorySegment} per region, a byte array's
 * ({@link MemorySegment#ofArray}) or an anonymous mapping's in a shared {@link Arena}. jkrun only picks the region
 * whose start the address falls after; the JDK checks {@code [offset, offset+length)} against that segment, and for
 * mapped RAM that the arena is still open. Closing a shared arena waits out (or interrupts with an exception) every
 * thread inside an access before the cleanup unmaps, so a device thread racing {@link #release()} gets
 * {@link IllegalStateException} instead of reading or writing unmapped memory.
 */
final class SegmentGuestMemory implements MemoryBackend.Mapped {
    // Explicit little-endian (guest byte order) and unaligned (the guest picks the addresses): static final so the
    // JIT folds each layout's VarHandle into the access.
    private static final ValueLayout.OfByte BYTE = ValueLayout.JAVA_BYTE;
    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private record Part(MemoryRegion region, MemorySegment segment) {}

    // Parallel arrays, sorted by start: the lookup on every access reads two longs per region, no records.
    private final long[] starts;
    private final long[] sizes;
    private final MemorySegment[] segments;
    private final MemoryRegion[] regionArray;
    private final List<MemoryRegion> regions;
    /** The mappings' lifetime; null for heap memory, which has none to end. */
    private final Arena arena;

    private SegmentGuestMemory(List<Part> parts, Arena arena) {
        List<Part> sorted = new ArrayList<>(parts);
        sorted.sort((a, b) -> a.region().start().compareTo(b.region().start()));
        for (int i = 1; i < sorted.size(); i++) {
            if (Long.compareUnsigned(sorted.get(i).region().start().value(), sorted.get(i - 1).region().end()) < 0) {
                throw new IllegalArgumentException("overlapping guest memory regions");
            }
        }
        int n = sorted.size();
        starts = new long[n];
        sizes = new long[n];
        segments = new MemorySegment[n];
        List<MemoryRegion> rs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Part p = sorted.get(i);
            starts[i] = p.region().start().value();
            sizes[i] = p.region().size();
            segments[i] = p.segment();
            rs.add(p.region());
        }
        regionArray = rs.toArray(new MemoryRegion[0]);
        regions = Collections.unmodifiableList(rs);
        this.arena = arena;
    }

    static SegmentGuestMemory heap(List<MemoryRegion> regions) {
        List<Part> parts = new ArrayList<>();
        for (MemoryRegion r : regions) {
            parts.add(new Part(r, MemorySegment.ofArray(new byte[Math.toIntExact(r.size())])));
        }
        return new SegmentGuestMemory(parts, null);
    }

    /**
     * Wraps mappings that are already made (the slots KVM registers) in segments of one shared arena whose close
     * unmaps them. If this throws, whatever it had wrapped is unmapped; the caller unmaps the rest (close is idempotent).
     */
    static SegmentGuestMemory mmap(List<MmapGuestMemory.Slot> slots) {
        Arena arena = Arena.ofShared();
        try {
            List<Part> parts = new ArrayList<>();
            for (MmapGuestMemory.Slot s : slots) {
                AnonymousMapping m = s.mapping();
                // reinterpret is restricted: without --enable-native-access the JDK warns once per module (jffi's
                // System.load, which runs first, already triggers the same warning).
                MemorySegment seg = MemorySegment.ofAddress(m.address()).reinterpret(s.region().size(), arena, unused -> m.close());
                parts.add(new Part(s.region(), seg));
            }
            return new SegmentGuestMemory(parts, arena);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    @Override
    public List<MemoryRegion> regions() { return regions; }

    @Override
    public boolean contains(GuestAddress addr, long len) {
        for (MemoryRegion r : regionArray) {   // an array, not the List: this is on the virtqueue hot path
            if (r.contains(addr.value(), len)) {
                return true;
            }
        }
        return false;
    }

    /**
     * The region {@code addr} falls in (unsigned {@code 0 <= addr - start < size}); the JDK then checks the length.
     * An empty access exactly at a region's end is inside it, as {@link MemoryRegion#contains} says.
     */
    private int index(long addr, long len) {
        long[] st = starts, sz = sizes;
        for (int i = 0; i < st.length; i++) {
            if (Long.compareUnsigned(addr - st[i], sz[i]) < 0) {
                return i;
            }
        }
        if (len == 0) {
            for (int i = 0; i < st.length; i++) {
                if (addr - st[i] == sz[i]) {
                    return i;
                }
            }
        }
        throw refused(addr, len);
    }

    /** The exception for a refused access, with the same precedence as the Unsafe accessor's checks. */
    private RuntimeException refused(long addr, long len) {
        GuestAddress a = new GuestAddress(addr);
        if (arena != null && !arena.scope().isAlive()) {
            return new IllegalStateException("guest memory is released");
        }
        if (len < 0) {
            return new GuestMemoryException(GuestMemoryException.Reason.BAD_LENGTH, a, len);
        }
        if (Long.compareUnsigned(addr + len, addr) < 0) {
            return new GuestMemoryException(GuestMemoryException.Reason.OVERFLOW, a, len);
        }
        return new GuestMemoryException(GuestMemoryException.Reason.OUT_OF_BOUNDS, a, len);
    }

    /**
     * {@code [addr, addr+len)} as a slice of its segment; the JDK checks it lies inside. Slicing does not check the
     * arena, so a released memory is refused here (a view made just before release throws when used).
     */
    private MemorySegment slice(long addr, long len) {
        if (arena != null && !arena.scope().isAlive()) {
            throw new IllegalStateException("guest memory is released");
        }
        int i = index(addr, len);
        try {
            return segments[i].asSlice(addr - starts[i], len);
        } catch (IndexOutOfBoundsException e) {
            throw refused(addr, len);
        }
    }

    @Override
    public byte readByte(GuestAddress addr) {
        long a = addr.value();
        int i = index(a, 1);
        return segments[i].get(BYTE, a - starts[i]);
    }

    @Override
    public short readShort(GuestAddress addr) {
        long a = addr.value();
        int i = index(a, 2);
        try {
            return segments[i].get(SHORT, a - starts[i]);
        } catch (IndexOutOfBoundsException e) {
            throw refused(a, 2);
        }
    }

    @Override
    public int readInt(GuestAddress addr) {
        long a = addr.value();
        int i = index(a, 4);
        try {
            return segments[i].get(INT, a - starts[i]);
        } catch (IndexOutOfBoundsException e) {
            throw refused(a, 4);
        }
    }

    @Override
    public long readLong(GuestAddress addr) {
        long a = addr.value();
        int i = index(a, 8);
        try {
            return segments[i].get(LONG, a - starts[i]);
        } catch (IndexOutOfBoundsException e) {
            throw refused(a, 8);
        }
    }

    @Override
    public void writeByte(GuestAddress addr, byte value) {
        long a = addr.value();
        int i = index(a, 1);
        segments[i].set(BYTE, a - starts[i], value);
    }

    @Override
    public void writeShort(GuestAddress addr, short value) {
        long a = addr.value();
        int i = index(a, 2);
        try {
            segments[i].set(SHORT, a - starts[i], value);
        } catch (IndexOutOfBoundsException e) {
            throw refused(a, 2);
        }
    }

    @Override
    public void writeInt(GuestAddress addr, int value) {
        long a = addr.value();
        int i = index(a, 4);
        try {
            segments[i].set(INT, a - starts[i], value);
        } catch (IndexOutOfBoundsException e) {
            throw refused(a, 4);
        }
    }

    @Override
    public void writeLong(GuestAddress addr, long value) {
        long a = addr.value();
        int i = index(a, 8);
        try {
            segments[i].set(LONG, a - starts[i], value);
        } catch (IndexOutOfBoundsException e) {
            throw refused(a, 8);
        }
    }

    // Fences around plain accesses rather than the layouts' getAcquire/setRelease: those need an aligned layout,
    // and byte[] segments (and a guest's misaligned ring) do not give that alignment.
    @Override
    public short readShortAcquire(GuestAddress addr) {
        short v = readShort(addr);
        VarHandle.acquireFence();
        return v;
    }

    @Override
    public void writeShortRelease(GuestAddress addr, short value) {
        VarHandle.releaseFence();
        writeShort(addr, value);
    }

    @Override
    public void fullFence() { VarHandle.fullFence(); }

    @Override
    public void read(GuestAddress addr, byte[] dst, int offset, int length) {
        Objects.checkFromIndexSize(offset, length, dst.length);   // the caller's array, not the guest's range
        long a = addr.value();
        int i = index(a, length);
        try {
            MemorySegment.copy(segments[i], BYTE, a - starts[i], dst, offset, length);
        } catch (IndexOutOfBoundsException e) {
            throw refused(a, length);
        }
    }

    @Override
    public void write(GuestAddress addr, byte[] src, int offset, int length) {
        Objects.checkFromIndexSize(offset, length, src.length);
        long a = addr.value();
        int i = index(a, length);
        try {
            MemorySegment.copy(src, offset, segments[i], BYTE, a - starts[i], length);
        } catch (IndexOutOfBoundsException e) {
            throw refused(a, length);
        }
    }

    @Override
    public void read(GuestAddress addr, ByteBuffer dst) { dst.put(slice(addr.value(), dst.remaining()).asByteBuffer()); }

    @Override
    public void write(GuestAddress addr, ByteBuffer src) { slice(addr.value(), src.remaining()).asByteBuffer().put(src); }

    @Override
    public void fill(GuestAddress addr, long length, byte value) { slice(addr.value(), length).fill(value); }

    @Override
    public ByteBuffer view(GuestAddress addr, int length) {
        return slice(addr.value(), length).asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * Closes the arena: the JDK makes every thread still inside an access throw, then the cleanups unmap. A close
     * refused because an NIO operation holds a view (the JDK "acquires" the segment for it) is retried for a while;
     * after that the memory stays mapped — a leak, never an unmap under a syscall — and this throws.
     */
    @Override
    public void release() {
        if (arena == null) {
            return;
        }
        for (int tries = 0; ; tries++) {
            try {
                arena.close();
                return;
            } catch (IllegalStateException e) {
                if (!arena.scope().isAlive()) {
                    return;   // closed already, by us or a racing caller
                }
                if (tries >= 2000) {
                    throw new IllegalStateException("guest memory still in use by an I/O operation after 2 s; left mapped", e);
                }
                try {
                    Thread.sleep(1);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted while guest memory is in use; left mapped", e);
                }
            }
        }
    }
}
