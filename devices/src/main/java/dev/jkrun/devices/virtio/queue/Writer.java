package dev.jkrun.devices.virtio.queue;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;

import java.nio.ByteBuffer;

/**
 * A cursor over the device-writable buffers of a chain, writing across descriptor boundaries (like rust-vmm's
 * {@code Writer}). {@link #bytesWritten()} is the length to report in the used ring. Not thread-safe.
 */
public final class Writer {
    private final DescriptorChain chain;
    private int index;
    private long offset;
    private long available;
    private long written;

    Writer(DescriptorChain chain) {
        this.chain = chain;
        rewind();
    }

    /** Back to the first writable byte of the chain as it is now. */
    void rewind() {
        index = chain.firstWritable();
        offset = 0;
        available = chain.writableLength();
        written = 0;
    }

    private int end() { return chain.count(); }

    /** Room left, in bytes. */
    public long available() { return available; }

    /** Bytes written so far (what goes into the used element's len). */
    public long bytesWritten() { return written; }

    /** {@link #bytesWritten()} clamped to the used ring's u32 field. */
    public int usedLength() { return (int) Math.min(written, 0xFFFF_FFFFL); }

    /** Writes up to {@code len} bytes; returns how many fitted. */
    public int write(byte[] b, int off, int len) {
        int done = 0;
        while (done < len && available > 0) {
            long left = chain.len(index) - offset;
            if (left == 0) {
                index++;
                offset = 0;
                continue;
            }
            int n = (int) Math.min(left, len - done);
            chain.memory().write(GuestAddress.of(chain.addr(index) + offset), b, off + done, n);
            advance(n);
            done += n;
        }
        return done;
    }

    /** Moves the cursor past {@code n} bytes that were filled through {@link #views}. */
    public void advance(long n) {
        if (n < 0 || n > available) {
            throw new IllegalArgumentException("advance " + n + " of " + available);
        }
        while (n > 0) {
            long dlen = chain.len(index);
            long k = Math.min(dlen - offset, n);
            offset += k;
            available -= k;
            written += k;
            n -= k;
            if (offset == dlen && index < end() - 1) {
                index++;
                offset = 0;
            }
        }
        while (index < end() - 1 && offset == chain.len(index)) {
            index++;
            offset = 0;
        }
    }

    /** Writes all of {@code b} or throws DESCRIPTOR_CHAIN_TOO_SHORT without writing anything. */
    public void writeExact(byte[] b, int off, int len) throws InvalidChainException {
        if (len > available) {
            throw new InvalidChainException(QueueError.DESCRIPTOR_CHAIN_TOO_SHORT, chain.headIndex(),
                    "need " + len + " writable bytes, have " + available);
        }
        write(b, off, len);
    }

    public void writeExact(byte[] b) throws InvalidChainException { writeExact(b, 0, b.length); }

    public void writeByte(byte v) throws InvalidChainException { writeLittleEndian(v, 1); }

    public void writeShort(short v) throws InvalidChainException { writeLittleEndian(v, 2); }

    public void writeInt(int v) throws InvalidChainException { writeLittleEndian(v, 4); }

    public void writeLong(long v) throws InvalidChainException { writeLittleEndian(v, 8); }

    /** The low {@code n} (1, 2, 4 or 8) bytes of {@code v}, little-endian: one guest store when they fit one buffer. */
    private void writeLittleEndian(long v, int n) throws InvalidChainException {
        if (n > available) {
            throw new InvalidChainException(QueueError.DESCRIPTOR_CHAIN_TOO_SHORT, chain.headIndex(),
                    "need " + n + " writable bytes, have " + available);
        }
        skipFull();
        GuestMemory mem = chain.memory();
        if (chain.len(index) - offset >= n) {
            GuestAddress a = GuestAddress.of(chain.addr(index) + offset);
            switch (n) {
                case 1 -> mem.writeByte(a, (byte) v);
                case 2 -> mem.writeShort(a, (short) v);
                case 4 -> mem.writeInt(a, (int) v);
                default -> mem.writeLong(a, v);
            }
            advance(n);
            return;
        }
        for (int i = 0; i < n; i++) { // split across buffers: byte by byte
            skipFull();
            mem.writeByte(GuestAddress.of(chain.addr(index) + offset), (byte) (v >>> (8 * i)));
            advance(1);
        }
    }

    /** Moves past full (or empty) buffers to the one taking the next byte (there is one: {@code available > 0}). */
    private void skipFull() {
        while (offset == chain.len(index)) {
            index++;
            offset = 0;
        }
    }

    /**
     * ByteBuffers aliasing the next (up to) {@code max} writable bytes, for zero-copy reads from a channel;
     * call {@link #advance} with the count filled.
     */
    public ByteBuffer[] views(long max) { return chain.views(index, offset, end(), Math.min(max, available)); }
}
