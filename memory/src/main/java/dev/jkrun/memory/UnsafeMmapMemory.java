package dev.jkrun.memory;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The Unsafe accessor over {@link MmapGuestMemory}'s mappings (JDK 17-21, or by choice). Retiring or releasing only
 * refuses new accesses: an access already past its check, or a view in use, still touches the range, so it must stay
 * mapped until every thread that can hold one has stopped. The FFM accessor ({@code SegmentGuestMemory}) has that
 * hazard only for ring windows ({@link RawWindow}).
 */
final class UnsafeMmapMemory extends UnsafeGuestMemory implements MemoryBackend.Mapped {
    /**
     * Set by retire/release; read on every access through the memory (windows are shut instead). Deliberately not
     * volatile: a volatile read there is a barrier the JIT cannot move the ring accesses of a virtqueue pop across
     * (3.5 of its ~31 ns in QueueBench), and it would buy no safety. Memory is unmapped only after every vCPU and
     * device thread has been joined (Vmm.releaseAll; retire() otherwise, which keeps the range mapped), so a thread
     * that reads a stale false touches a mapped, zeroed range. The join is what orders the unmap after a thread's last access; the flag is only guaranteed to
     * be seen by a thread that synchronizes with the writer (MmapGuestMemory.retire and close set it under their
     * lock), though HotSpot re-reads it after any call it cannot see into.
     */
    private boolean closed;
    /** Views are slices of direct buffers over 1 GiB pieces of each mapping, made once (no JNI call per view). */
    private static final int CHUNK_SHIFT = 30;
    private final java.util.Map<Backing, ByteBuffer[]> chunks = new java.util.IdentityHashMap<>();

    UnsafeMmapMemory(List<MmapGuestMemory.Slot> slots) {
        super(backings(slots));
        com.kenai.jffi.MemoryIO io = com.kenai.jffi.MemoryIO.getInstance();
        for (Backing b : backingList()) {
            long size = b.capacity();
            ByteBuffer[] cs = new ByteBuffer[(int) ((size + (1L << CHUNK_SHIFT) - 1) >>> CHUNK_SHIFT)];
            for (int i = 0; i < cs.length; i++) {
                long from = (long) i << CHUNK_SHIFT;
                cs[i] = io.newDirectByteBuffer(b.baseOffset() + from, (int) Math.min(1L << CHUNK_SHIFT, size - from));
            }
            chunks.put(b, cs);
        }
    }

    private static List<Backing> backings(List<MmapGuestMemory.Slot> slots) {
        List<Backing> bs = new ArrayList<>();
        for (MmapGuestMemory.Slot s : slots) {
            bs.add(new Backing(s.region(), null, s.mapping().address(), s.mapping().size()));
        }
        return bs;
    }

    @Override
    void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("guest memory is released");
        }
    }

    @Override
    ByteBuffer viewOf(Backing b, long offset, int length) {
        long rel = offset - b.baseOffset(); // checked by at(): inside the mapping
        int chunk = (int) (rel >>> CHUNK_SHIFT);
        if (length > 0 && ((rel + length - 1) >>> CHUNK_SHIFT) == chunk) {
            return chunks.get(b)[chunk].slice((int) (rel - ((long) chunk << CHUNK_SHIFT)), length);
        }
        return com.kenai.jffi.MemoryIO.getInstance().newDirectByteBuffer(offset, length); // across two pieces
    }

    /**
     * Windows over a mapping ({@link RawWindow}) address Unsafe with the raw host address, not a (null) base object:
     * an access through an Object base that C2 cannot prove null may alias any Java field, so each field the ring code
     * reads after one (a window's bound, the queue's indices) would be loaded again; a raw access aliases only raw
     * memory. Their liveness is part of their bound check instead of a read of {@link #closed} through the virtual
     * {@code ensureOpen}. Each ~1 ns of a virtqueue pop + addUsed in QueueBench (see benchmarks/README.md). The
     * memory's other accessors gained nothing measurable from raw addressing (a chain's 64-byte read and status
     * write), so they keep the shared code.
     */
    @Override
    GuestWindow newWindow(Backing b, long offset, GuestAddress addr, long len) {
        return windows.add(new Window(offset, addr, len));
    }

    private final RawWindow.Registry windows = new RawWindow.Registry();

    /** Marks the memory closed and shuts every window: an access through one then fails its bound check. */
    private void close() {
        closed = true;
        windows.shutAll();
    }

    private static final class Window extends RawWindow {
        Window(long address, GuestAddress start, long length) { super(address, start, length); }

        @Override
        public short readShort(long offset) { return U.getShort(at(offset, 2)); }

        @Override
        public long readLong(long offset) { return U.getLong(at(offset, 8)); }

        @Override
        public void writeShort(long offset, short value) { U.putShort(at(offset, 2), value); }

        @Override
        public void writeLong(long offset, long value) { U.putLong(at(offset, 8), value); }

        @Override
        public short readShortAcquire(long offset) { return getShortAcquire(null, at(offset, 2)); }

        @Override
        public void writeShortRelease(long offset, short value) { putShortRelease(null, at(offset, 2), value); }
    }

    @Override
    public void retire() { close(); }

    @Override
    public void release() { close(); }
}
