package dev.jkrun.libc;

import java.nio.ByteBuffer;

/**
 * A bounded run of native memory for system-call arguments (ioctl structs, signal sets, event arrays) and for
 * memory the kernel maps (kvm_run): every access is checked against its size. Either allocated here (zeroed,
 * 16-byte aligned, freed by the collector once unreachable, like a direct buffer) or wrapped around memory
 * someone else owns and keeps mapped. Pass {@link #address()} to a call only while the buffer is reachable
 * (a field, or used after the call, or kept with {@link java.lang.ref.Reference#reachabilityFence}).
 */
public final class NativeBuffer {
    private final long address;
    private final long size;
    /** The direct buffer that owns allocated memory (null when wrapped): frees it when this is unreachable. */
    private final ByteBuffer owner;

    private NativeBuffer(long address, long size, ByteBuffer owner) {
        this.address = address;
        this.size = size;
        this.owner = owner;
    }

    /** Zeroed native memory of {@code size} bytes. */
    public static NativeBuffer allocate(int size) {
        if (size < 0) {
            throw new IllegalArgumentException("negative native buffer size " + size);
        }
        ByteBuffer b = ByteBuffer.allocateDirect(Math.max(size, 1) + 15).alignedSlice(16);
        return new NativeBuffer(DirectBuffers.address(b), size, b);
    }

    /** A view of {@code size} bytes at {@code address} that the caller keeps mapped while this is used. */
    public static NativeBuffer wrap(long address, long size) {
        if (address == 0 || size < 0 || Long.compareUnsigned(address + size, address) < 0) {
            throw new IllegalArgumentException("native range [" + Long.toHexString(address) + ", +" + size + ") is invalid");
        }
        return new NativeBuffer(address, size, null);
    }

    public long address() { return address; }

    public long size() { return size; }

    private long at(long offset, long len) {
        if (offset < 0 || offset > size - len) {
            throw new IndexOutOfBoundsException("[" + offset + ", +" + len + ") outside a native buffer of " + size);
        }
        return address + offset;
    }

    public byte getByte(long offset) { return RawMemory.ACCESS.getByte(at(offset, 1)); }

    public void putByte(long offset, byte v) { RawMemory.ACCESS.putByte(at(offset, 1), v); }

    public short getShort(long offset) { return RawMemory.ACCESS.getShort(at(offset, 2)); }

    public void putShort(long offset, short v) { RawMemory.ACCESS.putShort(at(offset, 2), v); }

    public int getInt(long offset) { return RawMemory.ACCESS.getInt(at(offset, 4)); }

    public void putInt(long offset, int v) { RawMemory.ACCESS.putInt(at(offset, 4), v); }

    public long getLong(long offset) { return RawMemory.ACCESS.getLong(at(offset, 8)); }

    public void putLong(long offset, long v) { RawMemory.ACCESS.putLong(at(offset, 8), v); }

    /** Copies {@code len} bytes at {@code offset} into {@code dst[at..]}. */
    public void get(long offset, byte[] dst, int at, int len) {
        if (at < 0 || len < 0 || at > dst.length - len) {
            throw new IndexOutOfBoundsException("[" + at + ", +" + len + ") outside an array of " + dst.length);
        }
        RawMemory.ACCESS.copyToArray(at(offset, len), dst, at, len);
    }

    /** Copies {@code src[at..at+len)} to {@code offset}. */
    public void put(long offset, byte[] src, int at, int len) {
        if (at < 0 || len < 0 || at > src.length - len) {
            throw new IndexOutOfBoundsException("[" + at + ", +" + len + ") outside an array of " + src.length);
        }
        RawMemory.ACCESS.copyFromArray(src, at, at(offset, len), len);
    }

    /** Sets {@code len} bytes at {@code offset} to zero. */
    public void clear(long offset, long len) {
        if (len < 0) {
            throw new IndexOutOfBoundsException("negative length " + len);
        }
        RawMemory.ACCESS.fill(at(offset, len), len, (byte) 0);
    }

    @Override
    public String toString() { return "NativeBuffer[" + Long.toHexString(address) + ", " + size + " bytes]"; }
}
