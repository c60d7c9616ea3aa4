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
            byte[] a = new byte[(int) r.size()];
            bs.add(new Backing(r, a, sun.misc.Unsafe.ARRAY_BYTE_BASE_OFFSET, a.length));
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
