package dev.jkrun.memory;

import java.util.List;

/** The FFM backend. Instantiated by name from {@link GuestMemoryImpl} on JDK 22+ (this class is in versions/22). */
final class SegmentBackend implements MemoryBackend {
    SegmentBackend() {}

    @Override
    public GuestMemory heap(List<MemoryRegion> regions) { return SegmentGuestMemory.heap(regions); }

    @Override
    public Mapped mmap(List<MmapGuestMemory.Slot> slots) { return SegmentGuestMemory.mmap(slots); }
}
