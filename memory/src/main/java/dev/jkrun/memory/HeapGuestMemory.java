package dev.jkrun.memory;

import java.nio.ByteBuffer;
import java.util.List;

/**
 * Guest memory on the Java heap, for tests and tools that need no hypervisor. Regions up to 2 GiB each. The accessor
 * is {@link GuestMemoryImpl#preferred()} unless one is named.
 */
public final class HeapGuestMemory implements GuestMemory {
    private final GuestMemoryImpl impl;
    private final GuestMemory m;

    private HeapGuestMemory(GuestMemoryImpl impl, GuestMemory m) {
        this.impl = impl;
        this.m = m;
    }

    /** One region of {@code size} bytes at {@code start}. */
    public static HeapGuestMemory of(long start, int size) { return of(new MemoryRegion(GuestAddress.of(start), size)); }

    public static HeapGuestMemory of(MemoryRegion... regions) { return of(GuestMemoryImpl.preferred(), regions); }

    public static HeapGuestMemory of(GuestMemoryImpl impl, MemoryRegion... regions) {
        MemoryBackend backend = impl.backend();
        for (MemoryRegion r : regions) {
            if (r.size() > Integer.MAX_VALUE - 16) {
                throw new IllegalArgumentException("heap region too large: " + r.size());
            }
        }
        return new HeapGuestMemory(impl, backend.heap(List.of(regions)));
    }

    /** The accessor behind this memory. */
    public GuestMemoryImpl impl() { return impl; }

    @Override
    public List<MemoryRegion> regions() { return m.regions(); }

    @Override
    public boolean contains(GuestAddress addr, long len) { return m.contains(addr, len); }

    @Override
    public byte readByte(GuestAddress addr) { return m.readByte(addr); }

    @Override
    public short readShort(GuestAddress addr) { return m.readShort(addr); }

    @Override
    public int readInt(GuestAddress addr) { return m.readInt(addr); }

    @Override
    public long readLong(GuestAddress addr) { return m.readLong(addr); }

    @Override
    public void writeByte(GuestAddress addr, byte value) { m.writeByte(addr, value); }

    @Override
    public void writeShort(GuestAddress addr, short value) { m.writeShort(addr, value); }

    @Override
    public void writeInt(GuestAddress addr, int value) { m.writeInt(addr, value); }

    @Override
    public void writeLong(GuestAddress addr, long value) { m.writeLong(addr, value); }

    @Override
    public short readShortAcquire(GuestAddress addr) { return m.readShortAcquire(addr); }

    @Override
    public void writeShortRelease(GuestAddress addr, short value) { m.writeShortRelease(addr, value); }

    @Override
    public void fullFence() { m.fullFence(); }

    @Override
    public void read(GuestAddress addr, byte[] dst, int offset, int length) { m.read(addr, dst, offset, length); }

    @Override
    public void write(GuestAddress addr, byte[] src, int offset, int length) { m.write(addr, src, offset, length); }

    @Override
    public void read(GuestAddress addr, ByteBuffer dst) { m.read(addr, dst); }

    @Override
    public void write(GuestAddress addr, ByteBuffer src) { m.write(addr, src); }

    @Override
    public void fill(GuestAddress addr, long length, byte value) { m.fill(addr, length, value); }

    @Override
    public ByteBuffer view(GuestAddress addr, int length) { return m.view(addr, length); }

    @Override
    public GuestWindow window(GuestAddress addr, long len) { return m.window(addr, len); }
}
