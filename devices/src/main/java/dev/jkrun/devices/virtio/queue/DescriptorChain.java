package dev.jkrun.devices.virtio.queue;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.memory.GuestWindow;
import dev.jkrun.memory.MemoryRegion;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;

/**
 * A descriptor chain popped from a {@link Queue}, already followed through NEXT links and at most one INDIRECT
 * table and checked against every rule in {@link QueueError}. Parsing is eager: a device never starts acting on a
 * chain that turns out to be malformed half way through.
 *
 * <p>The buffers are held flat (an address and a length array, readable ones first), and one chain object can be
 * popped into again and again ({@link Queue#pop(GuestMemory, DescriptorChain)}), so a device that serves each chain
 * before it takes the next allocates nothing per request. Such a chain, its {@link #reader()} and its
 * {@link #writer()} are valid until the next pop into the same object: a device that keeps chains (waiting for host
 * data, say) takes fresh ones from {@link Queue#pop(GuestMemory)}.
 */
public final class DescriptorChain implements Iterable<Descriptor> {
    private GuestMemory mem;
    private int headIndex = -1;
    private long[] addrs;
    private int[] lens;
    private int count;
    private int firstWritable;
    private long readableLength;
    private long writableLength;
    /** Guest RAM's only region, from the ring snapshot a pop parsed through; size 0 where RAM has several. */
    private long ramStart, ramSize;
    /** The chain's one cursor of each kind, made on first use and rewound by {@link #reader()}/{@link #writer()}. */
    private Reader reader;
    private Writer writer;

    /** An empty chain to pop into ({@link Queue#pop(GuestMemory, DescriptorChain)}); holds nothing until then. */
    public DescriptorChain() {
        addrs = new long[4];
        lens = new int[4];
    }

    /** For tests and synthetic requests: a chain over already-valid descriptors. */
    public static DescriptorChain of(GuestMemory mem, int headIndex, List<Descriptor> descriptors) {
        DescriptorChain c = new DescriptorChain();
        c.start(mem, headIndex);
        for (Descriptor d : descriptors) {
            c.append(d.addr().value(), d.len(), d.writable());
        }
        c.finish();
        return c;
    }

    public int headIndex() { return headIndex; }

    public GuestMemory memory() { return mem; }

    /** Number of buffers. */
    public int count() { return count; }

    /** Index of the first device-writable buffer ({@link #count()} when there is none). */
    public int firstWritable() { return firstWritable; }

    /** Guest address of buffer {@code i}. */
    public long address(int i) {
        java.util.Objects.checkIndex(i, count);
        return addrs[i];
    }

    /** Length of buffer {@code i}, unsigned. */
    public long length(int i) {
        java.util.Objects.checkIndex(i, count);
        return Integer.toUnsignedLong(lens[i]);
    }

    /** All descriptors, readable ones first (a new list: for tests and slow paths). */
    public List<Descriptor> descriptors() { return range(0, count); }

    public List<Descriptor> readable() { return range(0, firstWritable); }

    public List<Descriptor> writable() { return range(firstWritable, count); }

    private List<Descriptor> range(int from, int to) {
        List<Descriptor> out = new ArrayList<>(to - from);
        for (int i = from; i < to; i++) {
            out.add(new Descriptor(GuestAddress.of(addrs[i]), lens[i], i >= firstWritable));
        }
        return Collections.unmodifiableList(out);
    }

    @Override
    public Iterator<Descriptor> iterator() { return descriptors().iterator(); }

    /** Total bytes of the device-readable part. */
    public long readableLength() { return readableLength; }

    /** Total bytes of the device-writable part. */
    public long writableLength() { return writableLength; }

    /** The cursor over the device-readable part, rewound to its start (one per chain object). */
    public Reader reader() {
        if (reader == null) {
            reader = new Reader(this);
        }
        reader.rewind();
        return reader;
    }

    /** The cursor over the device-writable part, rewound to its start (one per chain object). */
    public Writer writer() {
        if (writer == null) {
            writer = new Writer(this);
        }
        writer.rewind();
        return writer;
    }

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
    public String toString() { return "DescriptorChain[head " + headIndex + ", " + descriptors() + "]"; }

    // Raw access for the cursors (same package): buffers are valid (inside guest RAM) once a pop succeeded.

    long addr(int i) { return addrs[i]; }

    long len(int i) { return Integer.toUnsignedLong(lens[i]); }

    /**
     * ByteBuffers aliasing up to {@code want} bytes of buffers {@code [index, end)}, from {@code offset} within
     * buffer {@code index}: what a cursor's {@code views} hands out.
     */
    ByteBuffer[] views(int index, long offset, int end, long want) {
        List<ByteBuffer> out = new ArrayList<>();
        int i = index;
        long off = offset;
        while (want > 0 && i < end) {
            long left = len(i) - off;
            if (left > 0) {
                int n = (int) Math.min(Math.min(left, want), Integer.MAX_VALUE);
                out.add(mem.view(GuestAddress.of(addrs[i] + off), n));
                want -= n;
                off += n;
                if (off < len(i)) {
                    continue;
                }
            }
            i++;
            off = 0;
        }
        return out.toArray(new ByteBuffer[0]);
    }

    // ---------------------------------------------------------------------------------------------------------

    private void start(GuestMemory m, int head) {
        mem = m;
        ramSize = 0;
        headIndex = head;
        count = 0;
        readableLength = writableLength = 0;
        firstWritable = 0;
    }

    private void append(long addr, int len, boolean writable) {
        if (count == addrs.length) {
            int n = Math.max(4, count * 2);
            addrs = java.util.Arrays.copyOf(addrs, n);
            lens = java.util.Arrays.copyOf(lens, n);
        }
        addrs[count] = addr;
        lens[count] = len;
        count++;
        if (writable) {
            writableLength += Integer.toUnsignedLong(len);
        } else {
            readableLength += Integer.toUnsignedLong(len);
            firstWritable = count;
        }
    }

    private void finish() {
        if (reader != null) {
            reader.rewind();
        }
        if (writer != null) {
            writer.rewind();
        }
    }

    /** Leaves the chain empty (head -1) after a parse that failed part way, so nothing half-checked is used. */
    private void clear() {
        count = 0;
        firstWritable = 0;
        readableLength = writableLength = 0;
        headIndex = -1;
    }

    /**
     * Parses the chain at {@code head} of {@code rings} (the snapshot the pop read it through, in the memory the chain
     * then refers to) into {@code into}, which holds it afterwards (or nothing when this throws).
     */
    static void parse(Queue q, Queue.Rings rings, int head, DescriptorChain into) throws InvalidChainException {
        into.start(rings.mem, head);
        into.ramStart = rings.ramStart;
        into.ramSize = rings.ramSize;
        try {
            parseDirect(q, rings, head, into);
        } catch (InvalidChainException | RuntimeException e) {
            into.clear();
            throw e;
        }
        into.finish();
    }

    private static void parseDirect(Queue q, Queue.Rings rings, int head, DescriptorChain into)
            throws InvalidChainException {
        int size = rings.size; // the size the table's window was made for
        GuestWindow table = rings.desc();
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
            long da = (long) Queue.DESCRIPTOR_SIZE * index;
            long addr = table.readLong(da);
            long lenFlagsNext = table.readLong(da + 8);
            int len = (int) lenFlagsNext;
            int flags = (int) (lenFlagsNext >>> 32) & 0xFFFF;
            int next = (int) (lenFlagsNext >>> 48);
            if ((flags & Queue.VRING_DESC_F_INDIRECT) != 0) {
                parseIndirect(into, q, addr, len, flags);
                // The indirect descriptor ends the chain: NEXT together with INDIRECT was rejected above.
                return;
            }
            into.add(addr, len, flags);
            if ((flags & Queue.VRING_DESC_F_NEXT) == 0) {
                return;
            }
            index = next;
        }
    }

    private static void parseIndirect(DescriptorChain into, Queue q, long addr, int len, int flags) throws InvalidChainException {
        GuestMemory mem = into.mem;
        int head = into.headIndex;
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
            long da = addr + (long) Queue.DESCRIPTOR_SIZE * index;
            long baddr = mem.readLong(GuestAddress.of(da));
            long lenFlagsNext = mem.readLong(GuestAddress.of(da + 8));
            int blen = (int) lenFlagsNext;
            int bflags = (int) (lenFlagsNext >>> 32) & 0xFFFF;
            int next = (int) (lenFlagsNext >>> 48);
            // 2.7.5.3.1: "The driver MUST NOT set the VIRTQ_DESC_F_INDIRECT flag within an indirect descriptor".
            if ((bflags & Queue.VRING_DESC_F_INDIRECT) != 0) {
                throw err(QueueError.NESTED_INDIRECT, head, null);
            }
            into.add(baddr, blen, bflags);
            if ((bflags & Queue.VRING_DESC_F_NEXT) == 0) {
                return;
            }
            index = next;
        }
    }

    /** Checks one buffer against the rules every buffer of a chain obeys, direct and indirect alike, and adds it. */
    private void add(long addr, int len, int flags) throws InvalidChainException {
        boolean writable = (flags & Queue.VRING_DESC_F_WRITE) != 0;
        // 2.7.4.2: "A driver MUST NOT place a device-writable buffer before a device-readable buffer".
        if (!writable && count > firstWritable) {
            throw err(QueueError.READABLE_AFTER_WRITABLE, headIndex, null);
        }
        long ulen = Integer.toUnsignedLong(len);
        if (Long.compareUnsigned(addr + ulen, addr) < 0) {
            throw err(QueueError.BUFFER_ADDRESS_OVERFLOW, headIndex, String.format("0x%x+0x%x", addr, ulen));
        }
        if (ulen != 0 && !inRam(addr, ulen)) {
            throw err(QueueError.BUFFER_OUT_OF_MEMORY, headIndex, String.format("0x%x+0x%x", addr, ulen));
        }
        // 2.7.5.2: "Drivers MUST NOT add a descriptor chain longer than 2^32 bytes in total". Overlapping
        // buffers would otherwise let a small guest describe terabytes (65536 indirect entries of 4 GiB). The sum
        // so far is at most MAX_CHAIN_BYTES, plus one u32, so it cannot overflow.
        if (readableLength + writableLength + ulen > Queue.MAX_CHAIN_BYTES) {
            throw err(QueueError.CHAIN_TOO_MANY_BYTES, headIndex, "more than " + Queue.MAX_CHAIN_BYTES + " bytes");
        }
        append(addr, len, writable);
    }

    /** {@link GuestMemory#contains}, inline against the one region where RAM has one. */
    private boolean inRam(long addr, long len) {
        if (ramSize == 0) {
            return mem.contains(GuestAddress.of(addr), len);
        }
        return MemoryRegion.contains(ramStart, ramSize, addr, len);
    }

    private static InvalidChainException err(QueueError e, int head, String detail) {
        return new InvalidChainException(e, head, detail);
    }
}
