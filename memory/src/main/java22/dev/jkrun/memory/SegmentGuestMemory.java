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
 * ({@link MemorySegment#ofArray}) or an anonymous mapping's in a shared {@link Arena}. jkrun picks the region whose
 * start the address falls after (unsigned); the JDK then checks {@code [offset, offset+length)} against that
 * segment, which is exactly the region, right where memory is touched, and for mapped RAM that the arena is still
 * open. Closing a shared arena makes every thread still inside an access throw before close returns, so a device
 * thread racing {@link #retire()} or {@link #release()} gets {@link IllegalStateException} instead of reaching
 * discarded or unmapped memory. The exception is a virtqueue's ring windows over mapped RAM ({@link Raw}),
 * which jkrun alone checks, as the Unsafe accessor does, for speed: those rely on the VMM's order (threads joined
 * before the unmap), as everything does with Unsafe.
 *
 * <p>Mapped RAM has two arenas over the same addresses: every accessor uses the first, which {@link #retire()}
 * closes at once; {@link #view} buffers come from the second, which only {@link #release()} closes, waiting for NIO
 * operations that hold a view (the JDK refuses the close meanwhile). So retiring never waits for stuck I/O, and a
 * view taken before it stays usable, on zeroed pages, until release, as with the Unsafe accessor.
 */
final class SegmentGuestMemory implements MemoryBackend.Mapped {
    // Explicit little-endian (guest byte order) and unaligned (the guest picks the addresses): static final so the
    // JIT folds each layout's VarHandle into the access.
    private static final ValueLayout.OfByte BYTE = ValueLayout.JAVA_BYTE;
    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private record Part(MemoryRegion region, MemorySegment segment, MemorySegment viewSegment) {}

    // Parallel arrays, sorted by start: the lookup on every access reads two longs per region, no records.
    private final long[] starts;
    private final long[] sizes;
    private final MemorySegment[] segments;
    private final MemorySegment[] viewSegments;
    private final MemoryRegion[] regionArray;
    private final List<MemoryRegion> regions;
    /** The accessors' and the views' lifetimes over mapped RAM; null for heap memory, which has none to end. */
    private final Arena arena;
    private final Arena viewArena;

    private SegmentGuestMemory(List<Part> parts, Arena arena, Arena viewArena) {
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
        viewSegments = new MemorySegment[n];
        List<MemoryRegion> rs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Part p = sorted.get(i);
            starts[i] = p.region().start().value();
            sizes[i] = p.region().size();
            segments[i] = p.segment();
            viewSegments[i] = p.viewSegment();
            rs.add(p.region());
        }
        regionArray = rs.toArray(new MemoryRegion[0]);
        regions = Collections.unmodifiableList(rs);
        this.arena = arena;
        this.viewArena = viewArena;
    }

    static SegmentGuestMemory heap(List<MemoryRegion> regions) {
        List<Part> parts = new ArrayList<>();
        for (MemoryRegion r : regions) {
            MemorySegment seg = MemorySegment.ofArray(new byte[Math.toIntExact(r.size())]);
            parts.add(new Part(r, seg, seg));
        }
        return new SegmentGuestMemory(parts, null, null);
    }

    /**
     * Wraps mappings that are already made (the slots KVM registers) in segments of exactly each region's size. The
     * arenas only fence the addresses off: the caller owns the mappings and unmaps them after {@link #release()}.
     */
    static SegmentGuestMemory mmap(List<MmapGuestMemory.Slot> slots) {
        Arena arena = Arena.ofShared();
        Arena viewArena = Arena.ofShared();
        try {
            List<Part> parts = new ArrayList<>();
            for (MmapGuestMemory.Slot s : slots) {
                AnonymousMapping m = s.mapping();
                long size = s.region().size();
                // A segment longer than its mapping would let the JDK's check pass over unmapped host memory.
                if (m.size() < size) {
                    throw new IllegalArgumentException("region " + s.region() + " larger than its mapping (" + m.size() + " bytes)");
                }
                // reinterpret is restricted: without --enable-native-access the JDK warns once per module (jffi's
                // System.load, which runs first, already triggers the same warning).
                MemorySegment base = MemorySegment.ofAddress(m.address());
                parts.add(new Part(s.region(), base.reinterpret(size, arena, null), base.reinterpret(size, viewArena, null)));
            }
            return new SegmentGuestMemory(parts, arena, viewArena);
        } catch (RuntimeException | Error e) {
            arena.close();
            viewArena.close();
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
     * {@code [addr, addr+len)} as a slice of its segment (or of its view segment); the JDK checks it lies inside.
     * Slicing does not check the arena, so retired memory is refused here.
     */
    private MemorySegment slice(long addr, long len, MemorySegment[] from) {
        if (arena != null && !arena.scope().isAlive()) {
            throw new IllegalStateException("guest memory is released");
        }
        int i = index(addr, len);
        try {
            return from[i].asSlice(addr - starts[i], len);
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
    public short readShortAcquire(GuestAddress addr) { return acquire(readShort(addr)); }

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
    public void read(GuestAddress addr, ByteBuffer dst) {
        dst.put(slice(addr.value(), dst.remaining(), segments).asByteBuffer());
    }

    @Override
    public void write(GuestAddress addr, ByteBuffer src) {
        slice(addr.value(), src.remaining(), segments).asByteBuffer().put(src);
    }

    @Override
    public void fill(GuestAddress addr, long length, byte value) { slice(addr.value(), length, segments).fill(value); }

    @Override
    public GuestWindow window(GuestAddress addr, long len) {
        MemorySegment seg = slice(addr.value(), len, segments);
        if (arena == null) {
            return new Window(seg, addr);   // heap memory: no address to take, no lifetime to end
        }
        return windows.add(new Raw(seg.address(), addr, len));
    }

    private final RawWindow.Registry windows = new RawWindow.Registry();

    /**
     * A window over mapped RAM, checked by jkrun alone ({@link RawWindow}), as the Unsafe accessor's is. The JDK's
     * own checks on an arena-scoped slice (the slice's bound, then the shared arena's liveness, on top of the
     * window's bound) cost ~5 ns of a virtqueue pop + addUsed's ~31 in QueueBench (eight ring accesses); here each
     * access goes through one global segment over all of the address space, whose bound and lifetime the JIT folds
     * away. What that gives up: the arena's guarantee that a ring access racing {@link #release()} throws instead of
     * reaching an unmapped range. The VMM unmaps only after joining every vCPU and device thread (and only retires,
     * keeping the range mapped, while one still runs), so for it nothing changes; every other access (buffers,
     * views, the memory's own accessors) keeps the arena's guarantee.
     */
    private static final class Raw extends RawWindow {
        /** Every address; restricted (reinterpret), made on the first window, so heap memory never needs it. */
        private static final MemorySegment EVERYTHING = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);

        Raw(long address, GuestAddress start, long length) { super(address, start, length); }

        @Override
        public short readShort(long offset) { return EVERYTHING.get(SHORT, at(offset, 2)); }

        @Override
        public long readLong(long offset) { return EVERYTHING.get(LONG, at(offset, 8)); }

        @Override
        public void writeShort(long offset, short value) { EVERYTHING.set(SHORT, at(offset, 2), value); }

        @Override
        public void writeLong(long offset, long value) { EVERYTHING.set(LONG, at(offset, 8), value); }

        @Override
        public short readShortAcquire(long offset) { return acquire(readShort(offset)); }

        @Override
        public void writeShortRelease(long offset, short value) {
            VarHandle.releaseFence();
            writeShort(offset, value);
        }
    }

    /** A plain read made an acquire: the layouts' getAcquire needs alignment that neither arrays nor rings promise. */
    private static short acquire(short v) {
        VarHandle.acquireFence();
        return v;
    }

    /**
     * A window over heap memory: a slice of the region's array segment; the offset is checked here (refused as outside
     * RAM, as the other windows do), then by the JDK against the segment.
     */
    private record Window(MemorySegment segment, GuestAddress start) implements GuestWindow {
        private long at(long offset, int n) {
            if (offset < 0 || offset > segment.byteSize() - n) {
                throw GuestWindow.outside(start, offset, n);
            }
            return offset;
        }

        @Override
        public long length() { return segment.byteSize(); }

        @Override
        public short readShort(long offset) { return segment.get(SHORT, at(offset, 2)); }

        @Override
        public long readLong(long offset) { return segment.get(LONG, at(offset, 8)); }

        @Override
        public void writeShort(long offset, short value) { segment.set(SHORT, at(offset, 2), value); }

        @Override
        public void writeLong(long offset, long value) { segment.set(LONG, at(offset, 8), value); }

        @Override
        public short readShortAcquire(long offset) { return acquire(readShort(offset)); }

        @Override
        public void writeShortRelease(long offset, short value) {
            VarHandle.releaseFence();
            writeShort(offset, value);
        }
    }

    @Override
    public ByteBuffer view(GuestAddress addr, int length) {
        return slice(addr.value(), length, viewSegments).asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * Shuts the ring windows and closes the accessors' arena: the JDK makes every thread still inside an access
     * throw. Views stay usable.
     */
    @Override
    public void retire() {
        if (arena != null) {
            windows.shutAll();
            close(arena);
        }
    }

    /**
     * Closes both arenas. Closing the views' arena is refused while an NIO operation holds a view (the JDK
     * "acquires" the segment for the syscall); that is retried for a while, after which this throws and the caller
     * leaves the memory mapped: a leak, never an unmap under a syscall.
     */
    @Override
    public void release() {
        if (arena != null) {
            windows.shutAll();
            close(arena);
            close(viewArena);
        }
    }

    private static void close(Arena a) {
        for (int tries = 0; ; tries++) {
            try {
                a.close();
                return;
            } catch (IllegalStateException e) {
                if (!a.scope().isAlive()) {
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
