package dev.jkrun.devices.testing;

import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The driver's side of one split virtqueue laid out in a test {@link GuestMemory}: descriptor table, avail ring
 * and used ring, plus a bump allocator for buffers. Adds chains the way Linux's virtio_ring does (or, through the
 * raw methods, the way a buggy or hostile driver might) and reads back the used ring.
 */
public final class DriverQueue {
    /** One element of the used ring. */
    public record Used(int id, int len) {}

    /** A buffer of a chain the driver built. */
    public record Buffer(long addr, int len, boolean writable) {}

    private final GuestMemory mem;
    private final int size;
    private final GuestAddress desc, avail, used;
    private long nextBuffer;
    private final long bufferBase;
    private final long bufferEnd;
    private int nextDesc;
    private short availIdx;
    private short lastUsed;
    private final Map<Integer, List<Buffer>> chains = new HashMap<>();
    private final Runnable notifier;

    /**
     * @param ringBase where to put the rings (16-byte aligned; needs {@link #ringBytes(int)} bytes)
     * @param bufferBase, bufferLen an area for buffers
     * @param notifier what {@link #kick()} does (write QueueNotify)
     */
    public DriverQueue(GuestMemory mem, int size, long ringBase, long bufferBase, long bufferLen, Runnable notifier) {
        this.mem = mem;
        this.size = size;
        this.desc = GuestAddress.of(ringBase);
        this.avail = GuestAddress.of(ringBase + 16L * size);
        long usedAt = (avail.value() + 6 + 2L * size + 3) & ~3L;
        this.used = GuestAddress.of(usedAt);
        this.nextBuffer = bufferBase;
        this.bufferBase = bufferBase;
        this.bufferEnd = bufferBase + bufferLen;
        this.notifier = notifier;
        mem.fill(desc, ringBytes(size), (byte) 0);
    }

    /** Bytes the rings of a queue of {@code size} take. */
    public static long ringBytes(int size) { return 16L * size + 6 + 2L * size + 4 + 6 + 8L * size; }

    public int size() { return size; }

    public GuestAddress descTable() { return desc; }

    public GuestAddress availRing() { return avail; }

    public GuestAddress usedRing() { return used; }

    /** A device-side {@link Queue} over these rings, ready, as a transport would hand it over. */
    public Queue deviceQueue(int maxSize) {
        Queue q = new Queue(maxSize);
        q.setSize(size);
        q.setDescTable(desc);
        q.setAvailRing(avail);
        q.setUsedRing(used);
        q.setReady(true);
        return q;
    }

    /** Allocates {@code len} bytes of buffer space (8-byte aligned). */
    public long alloc(int len) {
        long a = nextBuffer;
        nextBuffer = (nextBuffer + Math.max(len, 1) + 7) & ~7L;
        if (nextBuffer > bufferEnd) {
            throw new IllegalStateException("test buffer area exhausted");
        }
        return a;
    }

    /** Starts allocating buffers from the beginning of the area again (buffers already handed out get reused). */
    public void resetBuffers() {
        nextBuffer = bufferBase;
        chains.clear();
    }

    /** Writes descriptor {@code index} as is. */
    public void writeDescriptor(int index, long addr, int len, int flags, int next) {
        writeDescriptorAt(desc.value() + 16L * index, addr, len, flags, next);
    }

    /** Writes a descriptor at any address (indirect tables). */
    public void writeDescriptorAt(long at, long addr, int len, int flags, int next) {
        mem.writeLong(GuestAddress.of(at), addr);
        mem.writeInt(GuestAddress.of(at + 8), len);
        mem.writeShort(GuestAddress.of(at + 12), (short) flags);
        mem.writeShort(GuestAddress.of(at + 14), (short) next);
    }

    /**
     * Builds a well-formed chain (readable buffers holding {@code readable}, then writable buffers of the given
     * lengths) from free descriptors, and publishes it. Returns the head index.
     */
    public int add(List<byte[]> readable, int... writableLens) {
        int count = readable.size() + writableLens.length;
        if (count == 0) {
            throw new IllegalArgumentException("empty chain");
        }
        List<Buffer> bufs = new ArrayList<>();
        for (byte[] r : readable) {
            long a = alloc(r.length);
            mem.write(GuestAddress.of(a), r);
            bufs.add(new Buffer(a, r.length, false));
        }
        for (int w : writableLens) {
            long a = alloc(w);
            mem.fill(GuestAddress.of(a), w, (byte) 0);
            bufs.add(new Buffer(a, w, true));
        }
        int head = nextDesc % size;
        for (int i = 0; i < count; i++) {
            int idx = (head + i) % size;
            Buffer b = bufs.get(i);
            int flags = (b.writable() ? Queue.VRING_DESC_F_WRITE : 0) | (i + 1 < count ? Queue.VRING_DESC_F_NEXT : 0);
            writeDescriptor(idx, b.addr(), b.len(), flags, (idx + 1) % size);
        }
        nextDesc += count;
        chains.put(head, bufs);
        publish(head);
        return head;
    }

    /** One readable buffer. */
    public int addReadable(byte[] data) { return add(List.of(data)); }

    /** One writable buffer of {@code len} bytes. */
    public int addWritable(int len) { return add(List.of(), len); }

    /**
     * A chain whose descriptors live in an indirect table: one descriptor in the ring with VRING_DESC_F_INDIRECT
     * pointing at a table of {@code readable} then {@code writableLens} buffers.
     */
    public int addIndirect(List<byte[]> readable, int... writableLens) {
        int count = readable.size() + writableLens.length;
        long table = alloc(16 * count);
        List<Buffer> bufs = new ArrayList<>();
        int i = 0;
        for (byte[] r : readable) {
            long a = alloc(r.length);
            mem.write(GuestAddress.of(a), r);
            bufs.add(new Buffer(a, r.length, false));
        }
        for (int w : writableLens) {
            bufs.add(new Buffer(alloc(w), w, true));
        }
        for (Buffer b : bufs) {
            int flags = (b.writable() ? Queue.VRING_DESC_F_WRITE : 0) | (i + 1 < count ? Queue.VRING_DESC_F_NEXT : 0);
            writeDescriptorAt(table + 16L * i, b.addr(), b.len(), flags, i + 1);
            i++;
        }
        int head = nextDesc % size;
        nextDesc++;
        writeDescriptor(head, table, 16 * count, Queue.VRING_DESC_F_INDIRECT, 0);
        chains.put(head, bufs);
        publish(head);
        return head;
    }

    /** A descriptor index no chain built by {@link #add} uses yet (for hand-made chains). */
    public int takeDescriptor() { return nextDesc++ % size; }

    /** Puts {@code head} in the next avail slot and advances avail idx (release order as Linux does). */
    public void publish(int head) {
        mem.writeShort(GuestAddress.of(avail.value() + 4 + 2L * (Short.toUnsignedInt(availIdx) % size)), (short) head);
        availIdx++;
        mem.writeShortRelease(GuestAddress.of(avail.value() + 2), availIdx);
    }

    /** Sets avail idx to any value (hostile driver). */
    public void setAvailIdx(int idx) {
        availIdx = (short) idx;
        mem.writeShortRelease(GuestAddress.of(avail.value() + 2), availIdx);
    }

    public int availIdx() { return Short.toUnsignedInt(availIdx); }

    public void setAvailFlags(int flags) { mem.writeShort(avail, (short) flags); }

    /** used_event, read by the device with EVENT_IDX. */
    public void setUsedEvent(int idx) { mem.writeShort(GuestAddress.of(avail.value() + 4 + 2L * size), (short) idx); }

    /** avail_event, written by the device with EVENT_IDX. */
    public int availEvent() { return Short.toUnsignedInt(mem.readShort(GuestAddress.of(used.value() + 4 + 8L * size))); }

    public int usedFlags() { return Short.toUnsignedInt(mem.readShort(used)); }

    public int usedIdx() { return Short.toUnsignedInt(mem.readShortAcquire(GuestAddress.of(used.value() + 2))); }

    /** The next used element not seen yet. */
    public Optional<Used> pollUsed() {
        if (Short.toUnsignedInt(lastUsed) == usedIdx()) {
            return Optional.empty();
        }
        long e = used.value() + 4 + 8L * (Short.toUnsignedInt(lastUsed) % size);
        lastUsed++;
        return Optional.of(new Used(mem.readInt(GuestAddress.of(e)), mem.readInt(GuestAddress.of(e + 4))));
    }

    /** Waits (polling) up to {@code timeoutMs} for the next used element; throws AssertionError if none. */
    public Used awaitUsed(long timeoutMs) {
        Optional<Used>[] got = new Optional[1];
        boolean ok = CountingTrigger.await(() -> (got[0] = pollUsed()).isPresent(), timeoutMs);
        if (!ok) {
            throw new AssertionError("no used buffer within " + timeoutMs + " ms");
        }
        return got[0].get();
    }

    /** The first {@code len} bytes the device wrote into chain {@code head}'s writable buffers. */
    public byte[] written(int head, int len) {
        byte[] out = new byte[len];
        int off = 0;
        for (Buffer b : chains.getOrDefault(head, List.of())) {
            if (!b.writable() || off >= len) {
                continue;
            }
            int n = Math.min(b.len(), len - off);
            mem.read(GuestAddress.of(b.addr()), out, off, n);
            off += n;
        }
        return out;
    }

    /** The buffers of a chain built by this queue. */
    public List<Buffer> buffers(int head) { return chains.get(head); }

    /** Notifies the device (QueueNotify). */
    public void kick() { notifier.run(); }
}
