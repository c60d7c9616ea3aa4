package dev.jkrun.devices.virtio.queue;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;

/**
 * A cursor over the device-readable buffers of a chain, reading across descriptor boundaries (like rust-vmm's
 * {@code Reader}). Little-endian integer reads. Not thread-safe.
 */
public final class Reader {
    private final DescriptorChain chain;
    private int index;
    private long offset; // within buffer index
    private long available;
    private long consumed;

    Reader(DescriptorChain chain) {
        this.chain = chain;
        rewind();
    }

    /** Back to the first readable byte of the chain as it is now. */
    void rewind() {
        index = 0;
        offset = 0;
        available = chain.readableLength();
        consumed = 0;
    }

    private int end() { return chain.firstWritable(); }

    /** Bytes left to read. */
    public long available() { return available; }

    /** Bytes read (or skipped) so far. */
    public long bytesRead() { return consumed; }

    /** Reads up to {@code len} bytes; returns how many (0 when nothing is left). */
    public int read(byte[] b, int off, int len) {
        int done = 0;
        while (done < len && available > 0) {
            long left = chain.len(index) - offset;
            if (left == 0) {
                index++;
                offset = 0;
                continue;
            }
            int n = (int) Math.min(left, len - done);
            chain.memory().read(GuestAddress.of(chain.addr(index) + offset), b, off + done, n);
            advance(n);
            done += n;
        }
        return done;
    }

    private void advance(long n) {
        offset += n;
        available -= n;
        consumed += n;
        while (index < end() && offset == chain.len(index) && available > 0) {
            index++;
            offset = 0;
        }
    }

    /** Reads exactly {@code len} bytes or throws DESCRIPTOR_CHAIN_TOO_SHORT (nothing is consumed then). */
    public void readExact(byte[] b, int off, int len) throws InvalidChainException {
        need(len);
        read(b, off, len);
    }

    public byte[] readBytes(int len) throws InvalidChainException {
        byte[] b = new byte[len];
        readExact(b, 0, len);
        return b;
    }

    private void need(long len) throws InvalidChainException {
        if (len > available) {
            throw new InvalidChainException(QueueError.DESCRIPTOR_CHAIN_TOO_SHORT, chain.headIndex(),
                    "need " + len + " readable bytes, have " + available);
        }
    }

    public byte readByte() throws InvalidChainException { return (byte) readLittleEndian(1); }

    public short readShort() throws InvalidChainException { return (short) readLittleEndian(2); }

    public int readInt() throws InvalidChainException { return (int) readLittleEndian(4); }

    public long readLong() throws InvalidChainException { return readLittleEndian(8); }

    /** {@code n} (1, 2, 4 or 8) bytes as a little-endian value: one guest load when they lie in one buffer. */
    private long readLittleEndian(int n) throws InvalidChainException {
        need(n);
        skipEmpty();
        if (chain.len(index) - offset >= n) {
            GuestAddress a = GuestAddress.of(chain.addr(index) + offset);
            GuestMemory mem = chain.memory();
            long v = switch (n) {
                case 1 -> mem.readByte(a);
                case 2 -> mem.readShort(a);
                case 4 -> mem.readInt(a);
                default -> mem.readLong(a);
            };
            advance(n);
            return v;
        }
        long v = 0;
        for (int i = 0; i < n; i++) { // split across buffers: byte by byte
            skipEmpty();
            v |= (chain.memory().readByte(GuestAddress.of(chain.addr(index) + offset)) & 0xFFL) << (8 * i);
            advance(1);
        }
        return v;
    }

    /** Moves past empty buffers to the one holding the next byte (there is one: {@code available > 0}). */
    private void skipEmpty() {
        while (offset == chain.len(index)) {
            index++;
            offset = 0;
        }
    }

    /** Skips up to {@code n} bytes; returns how many. */
    public long skip(long n) {
        long done = 0;
        while (done < n && available > 0) {
            long left = chain.len(index) - offset;
            if (left == 0) {
                index++;
                offset = 0;
                continue;
            }
            long k = Math.min(left, n - done);
            advance(k);
            done += k;
        }
        return done;
    }

    /** Copies everything left to {@code out}; returns the byte count. */
    public long transferTo(OutputStream out) throws IOException {
        byte[] chunk = new byte[(int) Math.min(Math.max(available, 1), 64 * 1024)];
        long total = 0;
        int n;
        while ((n = read(chunk, 0, chunk.length)) > 0) {
            out.write(chunk, 0, n);
            total += n;
        }
        return total;
    }

    /**
     * ByteBuffers aliasing the next (up to) {@code max} readable bytes in guest memory, for zero-copy writes to
     * a channel; the cursor does not move until {@link #skip} is called with the count actually used.
     */
    public ByteBuffer[] views(long max) { return chain.views(index, offset, end(), Math.min(max, available)); }
}
