package dev.jkrun.devices.testing;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.memory.MemoryRegion;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * A {@link GuestMemory} for tests that makes any access outside RAM a failure of the code under test. Code that
 * handles guest addresses must check them first (contains(), Queue.validate); an access that the memory would
 * have to refuse is recorded in {@link #violations()} and throws AssertionError, which queue code does not catch.
 * RAM is judged by its own unsigned arithmetic over a copy of the regions, not by {@link MemoryRegion#contains},
 * so a bug there does not hide here. {@link #accesses()} counts accesses, to bound the work one request causes.
 */
public final class StrictGuestMemory implements GuestMemory {
    private final GuestMemory inner;
    private final long[] starts;
    private final long[] ends;
    private final List<String> violations = new ArrayList<>();
    private long accesses;

    public StrictGuestMemory(GuestMemory inner) {
        this.inner = inner;
        List<MemoryRegion> rs = inner.regions();
        starts = new long[rs.size()];
        ends = new long[rs.size()];
        for (int i = 0; i < rs.size(); i++) {
            starts[i] = rs.get(i).start().value();
            ends[i] = starts[i] + rs.get(i).size(); // regions never reach 2^64
        }
    }

    /** Whether {@code [addr, addr+len)} lies inside one region, as unsigned 64-bit numbers. */
    public boolean insideRam(long addr, long len) {
        if (len < 0) {
            return false;
        }
        long end = addr + len;
        if (Long.compareUnsigned(end, addr) < 0) {
            return false;
        }
        for (int i = 0; i < starts.length; i++) {
            if (Long.compareUnsigned(addr, starts[i]) >= 0 && Long.compareUnsigned(end, ends[i]) <= 0) {
                return true;
            }
        }
        return false;
    }

    /** Every access outside RAM so far (normally empty). */
    public List<String> violations() { return violations; }

    /** Accesses (not contains() calls) so far. */
    public long accesses() { return accesses; }

    private void touch(String op, GuestAddress a, long len) {
        accesses++;
        if (!insideRam(a.value(), len)) {
            String v = String.format("%s of %d bytes at 0x%x: outside RAM", op, len, a.value());
            violations.add(v);
            throw new AssertionError(v);
        }
    }

    @Override
    public List<MemoryRegion> regions() { return inner.regions(); }

    @Override
    public boolean contains(GuestAddress addr, long len) { return inner.contains(addr, len); }

    @Override
    public byte readByte(GuestAddress addr) { touch("readByte", addr, 1); return inner.readByte(addr); }

    @Override
    public short readShort(GuestAddress addr) { touch("readShort", addr, 2); return inner.readShort(addr); }

    @Override
    public int readInt(GuestAddress addr) { touch("readInt", addr, 4); return inner.readInt(addr); }

    @Override
    public long readLong(GuestAddress addr) { touch("readLong", addr, 8); return inner.readLong(addr); }

    @Override
    public void writeByte(GuestAddress addr, byte value) { touch("writeByte", addr, 1); inner.writeByte(addr, value); }

    @Override
    public void writeShort(GuestAddress addr, short value) { touch("writeShort", addr, 2); inner.writeShort(addr, value); }

    @Override
    public void writeInt(GuestAddress addr, int value) { touch("writeInt", addr, 4); inner.writeInt(addr, value); }

    @Override
    public void writeLong(GuestAddress addr, long value) { touch("writeLong", addr, 8); inner.writeLong(addr, value); }

    @Override
    public short readShortAcquire(GuestAddress addr) { touch("readShortAcquire", addr, 2); return inner.readShortAcquire(addr); }

    @Override
    public void writeShortRelease(GuestAddress addr, short value) {
        touch("writeShortRelease", addr, 2);
        inner.writeShortRelease(addr, value);
    }

    @Override
    public void fullFence() { inner.fullFence(); }

    @Override
    public void read(GuestAddress addr, byte[] dst, int offset, int length) {
        touch("read", addr, length);
        inner.read(addr, dst, offset, length);
    }

    @Override
    public void write(GuestAddress addr, byte[] src, int offset, int length) {
        touch("write", addr, length);
        inner.write(addr, src, offset, length);
    }

    @Override
    public void read(GuestAddress addr, ByteBuffer dst) {
        touch("read", addr, dst.remaining());
        inner.read(addr, dst);
    }

    @Override
    public void write(GuestAddress addr, ByteBuffer src) {
        touch("write", addr, src.remaining());
        inner.write(addr, src);
    }

    @Override
    public void fill(GuestAddress addr, long length, byte value) {
        touch("fill", addr, length);
        inner.fill(addr, length, value);
    }

    @Override
    public ByteBuffer view(GuestAddress addr, int length) {
        touch("view", addr, length);
        return inner.view(addr, length);
    }
}
