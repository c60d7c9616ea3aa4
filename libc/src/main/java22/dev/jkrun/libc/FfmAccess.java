package dev.jkrun.libc;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;

/**
 * {@link RawMemory.Access} through the FFM API (JDK 22+): one segment spanning the address space. Callers have
 * checked every address against their own bounds; the segment's check only keeps addresses non-negative.
 */
final class FfmAccess implements RawMemory.Access {
    private static final MemorySegment ALL = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);

    @Override
    public byte getByte(long a) { return ALL.get(ValueLayout.JAVA_BYTE, a); }

    @Override
    public void putByte(long a, byte v) { ALL.set(ValueLayout.JAVA_BYTE, a, v); }

    @Override
    public short getShort(long a) { return ALL.get(ValueLayout.JAVA_SHORT_UNALIGNED, a); }

    @Override
    public void putShort(long a, short v) { ALL.set(ValueLayout.JAVA_SHORT_UNALIGNED, a, v); }

    @Override
    public int getInt(long a) { return ALL.get(ValueLayout.JAVA_INT_UNALIGNED, a); }

    @Override
    public void putInt(long a, int v) { ALL.set(ValueLayout.JAVA_INT_UNALIGNED, a, v); }

    @Override
    public long getLong(long a) { return ALL.get(ValueLayout.JAVA_LONG_UNALIGNED, a); }

    @Override
    public void putLong(long a, long v) { ALL.set(ValueLayout.JAVA_LONG_UNALIGNED, a, v); }

    @Override
    public void copyToArray(long a, byte[] dst, int at, int len) {
        MemorySegment.copy(ALL, ValueLayout.JAVA_BYTE, a, dst, at, len);
    }

    @Override
    public void copyFromArray(byte[] src, int at, long a, int len) {
        MemorySegment.copy(src, at, ALL, ValueLayout.JAVA_BYTE, a, len);
    }

    @Override
    public void fill(long a, long len, byte v) { ALL.asSlice(a, len).fill(v); }

    /** ofBuffer starts at the position; element 0 is that many bytes before it. */
    @Override
    public long address(ByteBuffer b) { return MemorySegment.ofBuffer(b).address() - b.position(); }
}
