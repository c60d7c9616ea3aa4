package dev.jkrun.devices.virtio.queue;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;

/**
 * A descriptor chain popped from a {@link Queue}, already followed through NEXT links and at most one INDIRECT
 * table and checked against every rule in {@link QueueError}. Parsing is eager: a device never starts acting on a
 * chain that turns out to be malformed half way through.
 */
public final class DescriptorChain implements Iterable<Descriptor> {
    private final GuestMemory mem;
    private final int headIndex;
    private final List<Descriptor> descriptors;
    private final int firstWritable;

    private DescriptorChain(GuestMemory mem, int headIndex, List<Descriptor> descriptors) {
        this.mem = mem;
        this.headIndex = headIndex;
        this.descriptors = Collections.unmodifiableList(descriptors);
        int fw = descriptors.size();
        for (int i = 0; i < descriptors.size(); i++) {
            if (descriptors.get(i).writable()) {
                fw = i;
                break;
            }
        }
        this.firstWritable = fw;
    }

    /** For tests and synthetic requests: a chain over already-valid descriptors. */
    public static DescriptorChain of(GuestMemory mem, int headIndex, List<Descriptor> descriptors) {
        return new DescriptorChain(mem, headIndex, new ArrayList<>(descriptors));
    }

    public int headIndex() { return headIndex; }

    public GuestMemory memory() { return mem; }

    /** All descriptors, readable ones first. */
    public List<Descriptor> descriptors() { return descriptors; }

    public List<Descriptor> readable() { return descriptors.subList(0, firstWritable); }

    public List<Descriptor> writable() { return descriptors.subList(firstWritable, descriptors.size()); }

    @Override
    public Iterator<Descriptor> iterator() { return descriptors.iterator(); }

    /** Total bytes of the device-readable part. */
    public long readableLength() { return sum(readable()); }

    /** Total bytes of the device-writable part. */
    public long writableLength() { return sum(writable()); }

    private static long sum(List<Descriptor> ds) {
        long s = 0;
        for (Descriptor d : ds) {
            s += d.length();
        }
        return s;
    }

    /** A cursor over the device-readable part. */
    public Reader reader() { return new Reader(mem, readable(), headIndex); }

    /** A cursor over the device-writable part. */
    public Writer writer() { return new Writer(mem, writable(), headIndex); }

    /** The whole readable part as one array. */
    public byte[] readAll() throws InvalidChainException {
        Reader r = reader();
        long n = r.available();
        if (n > Integer.MAX_VALUE - 16) {
            throw new InvalidChainException(QueueError.CHAIN_TOO_LONG, headIndex, "readable part too large: " + n);
        }
        byte[] b = new byte[(int) n];
        r.readExact(b, 0, b.length);
        return b;
    }

    @Override
    public String toString() { return "DescriptorChain[head " + headIndex + ", " + descriptors + "]"; }

    // ---------------------------------------------------------------------------------------------------------

    static DescriptorChain parse(GuestMemory mem, Queue q, int head) throws InvalidChainException {
        Builder b = new Builder(mem, head);
        int size = q.size();
        GuestAddress table = q.descTable();
        int index = head;
        int visited = 0;
        while (true) {
            // 2.7.5: a descriptor index names an entry of the table, so it is below Queue Size.
            if (index >= size) {
                throw err(QueueError.DESCRIPTOR_INDEX_OUT_OF_RANGE, head, "index " + index + " >= queue size " + size);
            }
            // 2.7.5.3.1 / 2.7.13.1: "The driver MUST NOT create a descriptor chain longer than the Queue Size";
            // visiting more than size descriptors means the NEXT links loop.
            if (++visited > size) {
                throw err(QueueError.CHAIN_TOO_LONG, head, "more than " + size + " descriptors");
            }
            GuestAddress da = GuestAddress.of(table.value() + (long) Queue.DESCRIPTOR_SIZE * index);
            long addr = mem.readLong(da);
            int len = mem.readInt(GuestAddress.of(da.value() + 8));
            int flags = Short.toUnsignedInt(mem.readShort(GuestAddress.of(da.value() + 12)));
            int next = Short.toUnsignedInt(mem.readShort(GuestAddress.of(da.value() + 14)));
            if ((flags & Queue.VRING_DESC_F_INDIRECT) != 0) {
                parseIndirect(b, q, addr, len, flags);
                // The indirect descriptor ends the chain: NEXT together with INDIRECT was rejected above.
                break;
            }
            b.add(addr, len, flags);
            if ((flags & Queue.VRING_DESC_F_NEXT) == 0) {
                break;
            }
            index = next;
        }
        return new DescriptorChain(mem, head, b.out);
    }

    private static void parseIndirect(Builder b, Queue q, long addr, int len, int flags) throws InvalidChainException {
        GuestMemory mem = b.mem;
        int head = b.head;
        // 2.7.5.3.1: "The driver MUST NOT set the VIRTQ_DESC_F_INDIRECT flag unless the VIRTIO_F_INDIRECT_DESC
        // feature was negotiated."
        if (!q.indirectAllowed()) {
            throw err(QueueError.INDIRECT_NOT_NEGOTIATED, head, null);
        }
        // 2.7.5.3.1: "The driver MUST NOT set both VIRTQ_DESC_F_INDIRECT and VIRTQ_DESC_F_NEXT in flags."
        if ((flags & Queue.VRING_DESC_F_NEXT) != 0) {
            throw err(QueueError.INDIRECT_WITH_NEXT, head, null);
        }
        long tableLen = Integer.toUnsignedLong(len);
        // 2.7.5.3: the table is an array of 16-byte descriptors; "len" is its size in bytes.
        if (tableLen == 0 || tableLen % Queue.DESCRIPTOR_SIZE != 0) {
            throw err(QueueError.INDIRECT_TABLE_BAD_LENGTH, head, "length " + tableLen);
        }
        long entries = tableLen / Queue.DESCRIPTOR_SIZE;
        if (entries > Queue.MAX_INDIRECT_ENTRIES) {
            throw err(QueueError.INDIRECT_TABLE_TOO_LARGE, head, entries + " entries");
        }
        if (Long.compareUnsigned(addr + tableLen, addr) < 0 || !mem.contains(GuestAddress.of(addr), tableLen)) {
            throw err(QueueError.INDIRECT_TABLE_OUT_OF_MEMORY, head, String.format("0x%x+0x%x", addr, tableLen));
        }
        int index = 0;
        int visited = 0;
        while (true) {
            if (index >= entries) {
                throw err(QueueError.DESCRIPTOR_INDEX_OUT_OF_RANGE, head, "indirect index " + index + " >= " + entries);
            }
            if (++visited > entries) {
                throw err(QueueError.CHAIN_TOO_LONG, head, "indirect chain loops");
            }
            GuestAddress da = GuestAddress.of(addr + (long) Queue.DESCRIPTOR_SIZE * index);
            long baddr = mem.readLong(da);
            int blen = mem.readInt(GuestAddress.of(da.value() + 8));
            int bflags = Short.toUnsignedInt(mem.readShort(GuestAddress.of(da.value() + 12)));
            int next = Short.toUnsignedInt(mem.readShort(GuestAddress.of(da.value() + 14)));
            // 2.7.5.3.1: "The driver MUST NOT set the VIRTQ_DESC_F_INDIRECT flag within an indirect descriptor".
            if ((bflags & Queue.VRING_DESC_F_INDIRECT) != 0) {
                throw err(QueueError.NESTED_INDIRECT, head, null);
            }
            b.add(baddr, blen, bflags);
            if ((bflags & Queue.VRING_DESC_F_NEXT) == 0) {
                return;
            }
            index = next;
        }
    }

    /** The descriptors of one chain as they are checked, direct and indirect alike. */
    private static final class Builder {
        final GuestMemory mem;
        final int head;
        final List<Descriptor> out = new ArrayList<>();
        boolean seenWritable;
        /** Sum of the lengths so far; at most MAX_CHAIN_BYTES + 2^32, so it cannot overflow. */
        long totalBytes;

        Builder(GuestMemory mem, int head) {
            this.mem = mem;
            this.head = head;
        }

        void add(long addr, int len, int flags) throws InvalidChainException {
            boolean writable = (flags & Queue.VRING_DESC_F_WRITE) != 0;
            // 2.7.4.2: "A driver MUST NOT place a device-writable buffer before a device-readable buffer".
            if (!writable && seenWritable) {
                throw err(QueueError.READABLE_AFTER_WRITABLE, head, null);
            }
            long ulen = Integer.toUnsignedLong(len);
            if (Long.compareUnsigned(addr + ulen, addr) < 0) {
                throw err(QueueError.BUFFER_ADDRESS_OVERFLOW, head, String.format("0x%x+0x%x", addr, ulen));
            }
            if (ulen != 0 && !mem.contains(GuestAddress.of(addr), ulen)) {
                throw err(QueueError.BUFFER_OUT_OF_MEMORY, head, String.format("0x%x+0x%x", addr, ulen));
            }
            // 2.7.5.2: "Drivers MUST NOT add a descriptor chain longer than 2^32 bytes in total". Overlapping
            // buffers would otherwise let a small guest describe terabytes (65536 indirect entries of 4 GiB).
            totalBytes += ulen;
            if (totalBytes > Queue.MAX_CHAIN_BYTES) {
                throw err(QueueError.CHAIN_TOO_MANY_BYTES, head, "more than " + Queue.MAX_CHAIN_BYTES + " bytes");
            }
            out.add(new Descriptor(GuestAddress.of(addr), len, writable));
            seenWritable |= writable;
        }
    }

    private static InvalidChainException err(QueueError e, int head, String detail) {
        return new InvalidChainException(e, head, detail);
    }
}
