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

    /** An accessor over already-mapped slots; {@link MmapGuestMemory} owns the mappings and unmaps them. */
    Mapped mmap(List<MmapGuestMemory.Slot> slots);

    /** An accessor over mappings that can be fenced off before they are discarded or unmapped. */
    interface Mapped extends GuestMemory {
        /** Every access from now on throws {@link IllegalStateException}; idempotent. The mappings stay untouched. */
        void retire();

        /**
         * {@link #retire()}, and returns only once nothing can reach the mappings through this accessor any more, so
         * that the caller may unmap them; throws {@link IllegalStateException} if that cannot be made sure.
         */
        void release();
    }

    MemoryBackend UNSAFE = new MemoryBackend() {
        @Override
        public GuestMemory heap(List<MemoryRegion> regions) { return new UnsafeHeapMemory(regions); }

        @Override
        public Mapped mmap(List<MmapGuestMemory.Slot> slots) { return new UnsafeMmapMemory(slots); }
    };
}
