package dev.jkrun.memory;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/** Guest memory on the Java heap, for tests and tools that need no hypervisor. Regions up to 2 GiB each. */
public final class HeapGuestMemory extends UnsafeGuestMemory {
    private HeapGuestMemory(List<Backing> backings) { super(backings); }

    /** One region of {@code size} bytes at {@code start}. */
    public static HeapGuestMemory of(long start, int size) { return of(new MemoryRegion(GuestAddress.of(start), size)); }

    public static HeapGuestMemory of(MemoryRegion... regions) {
        List<Backing> bs = new ArrayList<>();
        for (MemoryRegion r : regions) {
            if (r.size() > Integer.MAX_VALUE - 16) {
                throw new IllegalArgumentException("heap region too large: " + r.size());
            }
            byte[] a = new byte[(int) r.size()];
            bs.add(new Backing(r, a, sun.misc.Unsafe.ARRAY_BYTE_BASE_OFFSET, a.length));
        }
        return new HeapGuestMemory(bs);
    }

    @Override
    void ensureOpen() {}

    @Override
    ByteBuffer viewOf(Backing b, long offset, int length) {
        return ByteBuffer.wrap((byte[]) b.base(), (int) (offset - sun.misc.Unsafe.ARRAY_BYTE_BASE_OFFSET), length).slice();
    }
}
