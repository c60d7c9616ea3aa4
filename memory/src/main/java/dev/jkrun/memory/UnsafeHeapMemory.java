package dev.jkrun.memory;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/** The Unsafe accessor over {@link HeapGuestMemory}'s byte arrays. */
final class UnsafeHeapMemory extends UnsafeGuestMemory {
    UnsafeHeapMemory(List<MemoryRegion> regions) { super(backings(regions)); }

    private static List<Backing> backings(List<MemoryRegion> regions) {
        List<Backing> bs = new ArrayList<>();
        for (MemoryRegion r : regions) {
            bs.add(new Backing(r, new byte[(int) r.size()], sun.misc.Unsafe.ARRAY_BYTE_BASE_OFFSET));
        }
        return bs;
    }

    @Override
    void ensureOpen() {}

    @Override
    ByteBuffer viewOf(Backing b, long offset, int length) {
        return ByteBuffer.wrap((byte[]) b.base(), (int) (offset - sun.misc.Unsafe.ARRAY_BYTE_BASE_OFFSET), length).slice();
    }
}
