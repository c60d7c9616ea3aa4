package dev.jkrun.devices.virtio.queue;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * A cursor over the device-readable buffers of a chain, reading across descriptor boundaries (like rust-vmm's
 * {@code Reader}). Little-endian integer reads. Not thread-safe.
 */
public final class Reader {
    private final GuestMemory mem;
    private final List<Descriptor> buffers;
    private final int head;
    private int index;
    private long offset; // within buffers[index]
    private long available;
    private long consumed;

    Reader(GuestMemory mem, List<Descriptor> buffers, int head) {
        this.mem = mem;
        this.buffers = buffers;
        this.head = head;
        long a = 0;
        for (Descriptor d : buffers) {
            a += d.length();
        }
        this.available = a;
    }

    /** Bytes left to read. */
    public long available() { return available; }

    /** Bytes read (or skipped) so far. */
    public long bytesRead() { return consumed; }

    /** Reads up to {@code len} bytes; returns how many (0 when nothing is left). */
    public int read(byte[] b, int off, int len) {
        int done = 0;
        while (done < len && available > 0) {
            Descriptor d = buffers.get(index);
            long left = d.length() - offset;
            if (left == 0) {
                index++;
                offset = 0;
                continue;
            }
            int n = (int) Math.min(left, len - done);
            mem.read(GuestAddress.of(d.addr().value() + offset), b, off + done, n);
            advance(n);
            done += n;
        }
        return done;
    }

    private void advance(long n) {
        offset += n;
        available -= n;
        consumed += n;
        while (index < buffers.size() && offset == buffers.get(index).length() && available > 0) {
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
            throw new InvalidChainException(QueueError.DESCRIPTOR_CHAIN_TOO_SHORT, head,
                    "need " + len + " readable bytes, have " + available);
        }
    }

    public byte readByte() throws InvalidChainException { return readBytes(1)[0]; }

    public short readShort() throws InvalidChainException { return ByteBuffer.wrap(readBytes(2)).order(java.nio.ByteOrder.LITTLE_ENDIAN).getShort(); }

    public int readInt() throws InvalidChainException { return ByteBuffer.wrap(readBytes(4)).order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt(); }

    public long readLong() throws InvalidChainException { return ByteBuffer.wrap(readBytes(8)).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong(); }

    /** Skips up to {@code n} bytes; returns how many. */
    public long skip(long n) {
        long done = 0;
        while (done < n && available > 0) {
            Descriptor d = buffers.get(index);
            long left = d.length() - offset;
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
    public ByteBuffer[] views(long max) {
        List<ByteBuffer> out = new ArrayList<>();
        long want = Math.min(max, available);
        int i = index;
        long off = offset;
        while (want > 0 && i < buffers.size()) {
            Descriptor d = buffers.get(i);
            long left = d.length() - off;
            if (left > 0) {
                int n = (int) Math.min(Math.min(left, want), Integer.MAX_VALUE);
                out.add(mem.view(GuestAddress.of(d.addr().value() + off), n));
                want -= n;
                off += n;
                if (off < d.length()) {
                    continue;
                }
            }
            i++;
            off = 0;
        }
        return out.toArray(new ByteBuffer[0]);
    }
}
