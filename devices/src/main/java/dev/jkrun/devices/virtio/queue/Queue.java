package dev.jkrun.devices.virtio.queue;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.memory.GuestMemoryException;
import dev.jkrun.memory.GuestWindow;
import dev.jkrun.memory.MemoryRegion;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A split virtqueue (virtio 1.2 section 2.7), device side.
 *
 * <p>The transport fills in size, ring addresses and ready while the driver sets the queue up; at DRIVER_OK it
 * calls {@link #validate(GuestMemory)} and hands the queue to the device. From then on exactly one device thread
 * owns it (the class is not thread-safe), except {@link #isBroken()}, which the transport may read at any time.
 *
 * <p>Layout (all little-endian): descriptor table {@code 16 * size} bytes; available ring {@code flags u16, idx u16,
 * ring[size] u16, used_event u16}; used ring {@code flags u16, idx u16, ring[size] {id u32, len u32},
 * avail_event u16}.
 */
public final class Queue {
    /** virtio_ring.h: VRING_DESC_F_NEXT, VRING_DESC_F_WRITE, VRING_DESC_F_INDIRECT. */
    public static final int VRING_DESC_F_NEXT = 1, VRING_DESC_F_WRITE = 2, VRING_DESC_F_INDIRECT = 4;
    /** virtio_ring.h: VRING_USED_F_NO_NOTIFY, VRING_AVAIL_F_NO_INTERRUPT. */
    public static final int VRING_USED_F_NO_NOTIFY = 1, VRING_AVAIL_F_NO_INTERRUPT = 1;
    /** Feature bits: VIRTIO_RING_F_INDIRECT_DESC (28), VIRTIO_RING_F_EVENT_IDX (29). */
    public static final int VIRTIO_RING_F_INDIRECT_DESC = 28, VIRTIO_RING_F_EVENT_IDX = 29;
    /** The spec's limit on Queue Size. */
    public static final int MAX_QUEUE_SIZE = 32768;
    /** jkrun's limit on entries in one indirect table (a chain's "next" is a u16, so more cannot be linked). */
    public static final int MAX_INDIRECT_ENTRIES = 65536;
    /** 2.7.5.2: the most bytes one chain's buffers may add up to, 2^32 (inclusive: "longer than 2^32" is refused). */
    public static final long MAX_CHAIN_BYTES = 1L << 32;
    public static final int DESCRIPTOR_SIZE = 16;

    private final int maxSize;
    private int size;
    private boolean ready;
    private GuestAddress descTable = GuestAddress.ZERO;
    private GuestAddress availRing = GuestAddress.ZERO;
    private GuestAddress usedRing = GuestAddress.ZERO;
    private boolean eventIdx;
    private boolean indirectAllowed;

    /** Next avail ring slot to read, and next used ring slot to write; both free-running u16 counters. */
    private short nextAvail;
    private short nextUsed;
    /** used idx (u16) when we last decided to interrupt (event idx); -1 before the first time. */
    private int signalledUsed = -1;
    private volatile QueueError broken;
    /**
     * The ring configuration the device works with: a snapshot of size and ring addresses with windows onto them in
     * one memory, each window made at its first use (so a ring outside RAM fails where its first access would
     * have); each ring access then checks only its offset. Every configuration change bumps {@link #generation},
     * and a snapshot of another generation is dropped at its next use: a device thread that outlived a reset can use
     * only a snapshot that agrees with itself (its size matches its windows), never install a stale one for the next
     * activation. Not volatile: {@link #generation} is the volatile read that orders a snapshot after the
     * configuration it copies; a snapshot's configuration is final and its windows' ranges are final (one made twice
     * by two threads is the same window; a window's only other state, shut at release, reads as live by default), so
     * a stale or another thread's snapshot is safe to read and is dropped for its generation (one volatile read less
     * per ring operation: ~1 ns in QueueBench).
     */
    private Rings rings;
    private volatile int generation;

    /** A queue whose driver may ask for up to {@code maxSize} entries (a power of two ≤ 32768). */
    public Queue(int maxSize) {
        if (maxSize <= 0 || maxSize > MAX_QUEUE_SIZE || Integer.bitCount(maxSize) != 1) {
            throw new IllegalArgumentException("queue max size must be a power of two <= 32768: " + maxSize);
        }
        this.maxSize = maxSize;
        this.size = maxSize;
    }

    public int maxSize() { return maxSize; }

    public int size() { return size; }

    /** Set by the transport (QueueNum); checked by {@link #validate}. Stored as given. */
    public void setSize(int size) {
        this.size = size;
        configChanged();
    }

    public boolean isReady() { return ready; }

    public void setReady(boolean ready) { this.ready = ready; }

    public GuestAddress descTable() { return descTable; }

    public void setDescTable(GuestAddress a) {
        descTable = a;
        configChanged();
    }

    public GuestAddress availRing() { return availRing; }

    public void setAvailRing(GuestAddress a) {
        availRing = a;
        configChanged();
    }

    public GuestAddress usedRing() { return usedRing; }

    public void setUsedRing(GuestAddress a) {
        usedRing = a;
        configChanged();
    }

    public boolean eventIdx() { return eventIdx; }

    /** Whether VIRTIO_RING_F_EVENT_IDX was negotiated. */
    public void setEventIdx(boolean on) { eventIdx = on; }

    /** Whether VIRTIO_RING_F_INDIRECT_DESC was negotiated. */
    public void setIndirectAllowed(boolean on) { indirectAllowed = on; }

    public boolean indirectAllowed() { return indirectAllowed; }

    /** The queue-level error that broke this queue, or null. Safe to call from any thread. */
    public QueueError brokenBy() { return broken; }

    public boolean isBroken() { return broken != null; }

    /** Back to the state after construction (device reset). */
    public void reset() {
        size = maxSize;
        ready = false;
        descTable = availRing = usedRing = GuestAddress.ZERO;
        eventIdx = false;
        indirectAllowed = false;
        nextAvail = nextUsed = 0;
        signalledUsed = -1;
        broken = null;
        configChanged();
    }

    /** After the fields changed: the next ring access takes a new snapshot of them. */
    private void configChanged() {
        rings = null;
        generation++; // volatile write after the field writes: a snapshot of the new generation sees them
    }

    /** The next avail slot the device will read (free-running u16, for tests and diagnostics). */
    public int nextAvail() { return Short.toUnsignedInt(nextAvail); }

    /** The next used slot the device will write (free-running u16). */
    public int nextUsed() { return Short.toUnsignedInt(nextUsed); }

    /**
     * Checks what the driver configured, for a ready queue at DRIVER_OK: every error found, empty when valid.
     * A queue that is not ready is not checked (the driver does not use it).
     */
    public List<QueueError> validate(GuestMemory mem) {
        List<QueueError> errs = new ArrayList<>();
        if (!ready) {
            return errs;
        }
        if (size <= 0 || size > maxSize || Integer.bitCount(size) != 1) {
            errs.add(QueueError.INVALID_QUEUE_SIZE);
            return errs;
        }
        // 2.7 "Virtqueue Part Alignment": descriptor table 16, available ring 2, used ring 4.
        if (!descTable.isAligned(16)) {
            errs.add(QueueError.DESC_TABLE_MISALIGNED);
        }
        if (!availRing.isAligned(2)) {
            errs.add(QueueError.AVAIL_RING_MISALIGNED);
        }
        if (!usedRing.isAligned(4)) {
            errs.add(QueueError.USED_RING_MISALIGNED);
        }
        if (!inMemory(mem, descTable, (long) DESCRIPTOR_SIZE * size)) {
            errs.add(QueueError.DESC_TABLE_OUT_OF_MEMORY);
        }
        if (!inMemory(mem, availRing, 6 + 2L * size)) {
            errs.add(QueueError.AVAIL_RING_OUT_OF_MEMORY);
        }
        if (!inMemory(mem, usedRing, 6 + 8L * size)) {
            errs.add(QueueError.USED_RING_OUT_OF_MEMORY);
        }
        return errs;
    }

    /** Whether the queue can be used: ready, valid and not broken. */
    public boolean isValid(GuestMemory mem) { return ready && broken == null && validate(mem).isEmpty(); }

    private static boolean inMemory(GuestMemory mem, GuestAddress a, long len) {
        return Long.compareUnsigned(a.value() + len, a.value()) >= 0 && mem.contains(a, len);
    }

    /** Size and ring addresses as one generation had them, and the windows onto them in {@code mem}. */
    static final class Rings {
        final GuestMemory mem;
        final int generation;
        /** The queue size of this snapshot: every offset into its windows is computed from it. */
        final int size;
        private final GuestAddress descTable, availRing, usedRing;
        /** Made at first use; each getter reads its field once, as another thread's snapshot may be read racily. */
        private GuestWindow desc, avail, used;

        /**
         * Guest RAM's one region, when it has one (else size 0): a chain's buffers are checked against it inline, not
         * through the memory's region lookup (the accesses that follow are checked by the memory again).
         */
        final long ramStart, ramSize;

        Rings(GuestMemory mem, int generation, int size, GuestAddress descTable, GuestAddress availRing,
              GuestAddress usedRing) {
            this.mem = mem;
            List<MemoryRegion> regions = mem.regions();
            MemoryRegion only = regions.size() == 1 ? regions.get(0) : null;
            this.ramStart = only == null ? 0 : only.start().value();
            this.ramSize = only == null ? 0 : only.size();
            this.generation = generation;
            this.size = size;
            this.descTable = descTable;
            this.availRing = availRing;
            this.usedRing = usedRing;
        }

        /** Ring lengths for this size; a negative size (a queue never validated) counts as 0 entries. */
        private long entries() { return Math.max(size, 0); }

        /** The descriptor table: {@code 16 * size} bytes. */
        GuestWindow desc() {
            GuestWindow w = desc;
            if (w == null) {
                w = mem.window(descTable, DESCRIPTOR_SIZE * entries());
                desc = w;
            }
            return w;
        }

        /** The available ring: flags, idx, ring[size], used_event. */
        GuestWindow avail() {
            GuestWindow w = avail;
            if (w == null) {
                w = mem.window(availRing, 6 + 2 * entries());
                avail = w;
            }
            return w;
        }

        /** The used ring: flags, idx, ring[size] of 8-byte elements, avail_event. */
        GuestWindow used() {
            GuestWindow w = used;
            if (w == null) {
                w = mem.window(usedRing, 6 + 8 * entries());
                used = w;
            }
            return w;
        }
    }

    /** The current snapshot for {@code mem}, taken anew after a configuration change or for another memory. */
    Rings rings(GuestMemory mem) {
        Rings r = rings;
        int g = generation;
        if (r == null || r.mem != mem || r.generation != g) {
            r = new Rings(mem, g, size, descTable, availRing, usedRing);
            rings = r;
        }
        return r;
    }

    /**
     * The driver's avail idx. Acquire: the ring entries and descriptors the driver wrote before publishing idx
     * must be visible to our reads after it (2.7.13: "the driver ... MUST perform a suitable memory barrier
     * before the idx update").
     */
    private static short availIdx(Rings r) { return r.avail().readShortAcquire(2); }

    /** Number of chains the driver has made available and we have not popped. */
    public int pending(GuestMemory mem) throws InvalidChainException {
        if (!ready || broken != null) {
            return 0;
        }
        return pending(rings(mem));
    }

    /** {@link #pending(GuestMemory)} of a ready, unbroken queue, through the snapshot its caller holds. */
    private int pending(Rings r) throws InvalidChainException {
        int n = Short.toUnsignedInt((short) (availIdx(r) - nextAvail));
        if (n > size) {
            // 2.7.6: the driver can never be more than Queue Size entries ahead of the device.
            throw breakQueue(QueueError.AVAIL_INDEX_TOO_FAR,
                    String.format("avail idx runs %d entries ahead of the device, queue size %d", n, size));
        }
        return n;
    }

    private InvalidChainException breakQueue(QueueError e, String detail) {
        broken = e;
        return new InvalidChainException(e, -1, detail);
    }

    /**
     * Takes the next available chain, parsed and validated, as a new {@link DescriptorChain} the caller may keep.
     * Empty when the driver has made nothing new available (or the queue is not ready or broken).
     *
     * @throws InvalidChainException a chain-level error ({@code headIndex() >= 0}: the chain was consumed; give
     *     it back with {@code addUsed(mem, headIndex, 0)}) or a queue-level error (the queue is now broken)
     */
    public Optional<DescriptorChain> pop(GuestMemory mem) throws InvalidChainException {
        DescriptorChain c = new DescriptorChain();
        return pop(mem, c) ? Optional.of(c) : Optional.empty();
    }

    /**
     * Takes the next available chain into {@code into} (which drops what it held before), parsed and validated;
     * false when the driver has made nothing new available (or the queue is not ready or broken), and {@code into}
     * is then unchanged. The allocation-free form for devices that finish each chain before they take the next.
     *
     * @throws InvalidChainException as {@link #pop(GuestMemory)}; after a chain-level error {@code into} is empty
     *     (head -1), after a queue-level one it may still hold the previous chain: do not use it
     */
    public boolean pop(GuestMemory mem, DescriptorChain into) throws InvalidChainException {
        if (!ready || broken != null) {
            return false;
        }
        // One snapshot for the whole pop: each rings() reads the volatile generation, a barrier the JIT cannot move
        // loads across.
        Rings r = rings(mem);
        if (pending(r) == 0) {
            return false;
        }
        int head;
        try {
            head = Short.toUnsignedInt(r.avail().readShort(4 + 2L * (Short.toUnsignedInt(nextAvail) & (r.size - 1))));
        } catch (GuestMemoryException e) {
            throw breakQueue(QueueError.AVAIL_RING_OUT_OF_MEMORY, e.getMessage());
        }
        nextAvail++;
        try {
            DescriptorChain.parse(this, r, head, into);
            return true;
        } catch (GuestMemoryException e) {
            // Only reachable for a queue that skipped validate(): its descriptor table is not in RAM.
            throw breakQueue(QueueError.DESC_TABLE_OUT_OF_MEMORY, e.getMessage());
        }
    }

    /** Puts a popped chain back so the next {@link #pop} returns it again (a device that had no room yet). */
    public void undoPop() { nextAvail--; }

    /**
     * Returns chain {@code headIndex} to the driver with {@code len} bytes written into its writable part, and
     * publishes it by advancing used idx with release semantics (2.7.8: the used element must be visible before
     * the idx that covers it).
     */
    public void addUsed(GuestMemory mem, int headIndex, int len) {
        if (!ready || broken != null) {
            return;
        }
        Rings r = rings(mem);
        int slot = Short.toUnsignedInt(nextUsed) & (r.size - 1);
        GuestWindow used = r.used();
        // The element {id u32, len u32} in one little-endian store.
        used.writeLong(4 + 8L * slot, ((long) len << 32) | Integer.toUnsignedLong(headIndex));
        nextUsed++;
        used.writeShortRelease(2, nextUsed);
    }

    /**
     * Whether the driver wants an interrupt for the used buffers added since the last time this returned true.
     * With VIRTIO_RING_F_EVENT_IDX (2.7.10): interrupt when used idx moved past used_event since the last
     * interrupt, i.e. {@code (u16)(new - used_event - 1) < (u16)(new - old)} (vring_need_event). Otherwise
     * (2.7.7.2): interrupt unless the driver set VRING_AVAIL_F_NO_INTERRUPT.
     */
    public boolean needsNotification(GuestMemory mem) {
        if (!ready || broken != null) {
            return false;
        }
        // 2.7.7.2: our used idx store must be ordered before the load of used_event / avail flags, or we could
        // miss the driver re-enabling interrupts just before it goes to sleep.
        mem.fullFence();
        try {
            if (eventIdx) {
                short newIdx = nextUsed;
                Rings r = rings(mem);
                short usedEvent = r.avail().readShort(usedEventOffset(r.size));
                int old = signalledUsed;
                signalledUsed = Short.toUnsignedInt(newIdx);
                if (old < 0) {
                    return true;
                }
                return needEvent(usedEvent, newIdx, (short) old);
            }
            return (rings(mem).avail().readShort(0) & VRING_AVAIL_F_NO_INTERRUPT) == 0;
        } catch (GuestMemoryException e) {
            return true;
        }
    }

    /** Where used_event sits in the avail ring of {@code size} entries (2.7.6: after flags, idx and the ring). */
    public static long usedEventOffset(int size) { return 4 + 2L * size; }

    /** Where avail_event sits in the used ring of {@code size} entries (2.7.8: after flags, idx and the ring). */
    public static long availEventOffset(int size) { return 4 + 8L * size; }

    /** vring_need_event from virtio_ring.h: whether moving from {@code old} to {@code newIdx} crossed event. */
    public static boolean needEvent(short event, short newIdx, short old) {
        return Short.toUnsignedInt((short) (newIdx - event - 1)) < Short.toUnsignedInt((short) (newIdx - old));
    }

    /**
     * Asks the driver to notify us about new buffers: with event idx, writes avail_event = next avail index; else
     * clears VRING_USED_F_NO_NOTIFY. Returns whether buffers are already available, which a device must check
     * before sleeping (the driver may have added them before it saw the change; 2.7.10).
     */
    public boolean enableNotification(GuestMemory mem) {
        if (!ready || broken != null) {
            return false;
        }
        Rings r = rings(mem);
        if (eventIdx) {
            r.used().writeShort(availEventOffset(r.size), nextAvail);
        } else {
            r.used().writeShort(0, (short) 0);
        }
        mem.fullFence();
        return availIdx(r) != nextAvail;
    }

    /** Asks the driver not to notify us (a hint): sets VRING_USED_F_NO_NOTIFY; with event idx nothing to do. */
    public void disableNotification(GuestMemory mem) {
        if (!ready || broken != null || eventIdx) {
            return;
        }
        rings(mem).used().writeShort(0, (short) VRING_USED_F_NO_NOTIFY);
    }
}
