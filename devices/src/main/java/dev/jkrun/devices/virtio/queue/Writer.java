package dev.jkrun.devices.virtio.queue;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * A cursor over the device-writable buffers of a chain, writing across descriptor boundaries (like rust-vmm's
 * {@code Writer}). {@link #bytesWritten()} is the length to report in the used ring. Not thread-safe.
 */
public final class Writer {
    private final GuestMemory mem;
    private final List<Descriptor> buffers;
    private final int head;
    private int index;
    private long offset;
    private long available;
    private long written;

    Writer(GuestMemory mem, List<Descriptor> buffers, int head) {
        this.mem = mem;
        this.buffers = buffers;
        this.head = head;
        long a = 0;
        for (Descriptor d : buffers) {
            a += d.length();
        }
        this.available = a;
    }

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
            Descriptor d = buffers.get(index);
            long left = d.length() - offset;
            if (left == 0) {
                index++;
                offset = 0;
                continue;
            }
            int n = (int) Math.min(left, len - done);
            mem.write(GuestAddress.of(d.addr().value() + offset), b, off + done, n);
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
            Descriptor d = buffers.get(index);
            long k = Math.min(d.length() - offset, n);
            offset += k;
            available -= k;
            written += k;
            n -= k;
            if (offset == d.length() && index < buffers.size() - 1) {
                index++;
                offset = 0;
            }
        }
        while (index < buffers.size() - 1 && offset == buffers.get(index).length()) {
            index++;
            offset = 0;
        }
    }

    /** Writes all of {@code b} or throws DESCRIPTOR_CHAIN_TOO_SHORT without writing anything. */
    public void writeExact(byte[] b, int off, int len) throws InvalidChainException {
        if (len > available) {
            throw new InvalidChainException(QueueError.DESCRIPTOR_CHAIN_TOO_SHORT, head,
                    "need " + len + " writable bytes, have " + available);
        }
        write(b, off, len);
    }

    public void writeExact(byte[] b) throws InvalidChainException { writeExact(b, 0, b.length); }

    public void writeByte(byte v) throws InvalidChainException { writeExact(new byte[] {v}); }

    public void writeShort(short v) throws InvalidChainException { writeExact(le(2).putShort(v).array()); }

    public void writeInt(int v) throws InvalidChainException { writeExact(le(4).putInt(v).array()); }

    public void writeLong(long v) throws InvalidChainException { writeExact(le(8).putLong(v).array()); }

    private static ByteBuffer le(int n) { return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN); }

    /**
     * ByteBuffers aliasing the next (up to) {@code max} writable bytes, for zero-copy reads from a channel;
     * call {@link #advance} with the count filled.
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
