package dev.jkrun.memory;

import java.util.List;

/**
 * Builds the accessor behind {@link HeapGuestMemory} and {@link MmapGuestMemory} for one {@link GuestMemoryImpl}.
 * The FFM backend ({@code SegmentBackend}) lives in the jar's {@code META-INF/versions/22} and is loaded by name,
 * so nothing compiled for JDK 17 refers to it.
 */
interface MemoryBackend {
    /** Zeroed byte arrays, one per region; regions are checked (size, overlap) by the caller or the accessor. */
    GuestMemory heap(List<MemoryRegion> regions);

    /** An accessor over already-mapped slots; {@link Mapped#release()} unmaps them. */
    Mapped mmap(List<MmapGuestMemory.Slot> slots);

    /** Guest memory that owns its mappings. */
    interface Mapped extends GuestMemory {
        /** Unmaps everything; idempotent. Every access afterwards throws {@link IllegalStateException}. */
        void release();
    }

    MemoryBackend UNSAFE = new MemoryBackend() {
        @Override
        public GuestMemory heap(List<MemoryRegion> regions) { return new UnsafeHeapMemory(regions); }

        @Override
        public Mapped mmap(List<MmapGuestMemory.Slot> slots) { return new UnsafeMmapMemory(slots); }
    };
}
