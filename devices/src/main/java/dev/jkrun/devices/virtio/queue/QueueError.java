package dev.jkrun.devices.virtio.queue;

/**
 * Every way a driver can break a split virtqueue, one constant per rule. Each constant quotes the virtio 1.2 rule
 * (section 2.7, "Split Virtqueues") that it enforces. Queue-level errors ({@link #isQueueLevel()}) make the queue
 * unusable until the driver resets the device; chain-level errors only cost the guest that one chain, which the
 * device returns to the used ring with length 0.
 */
public enum QueueError {
    // ---- checked when the driver sets DRIVER_OK (queue-level) ----

    /** 4.2.2.2: "The driver MUST write a value to QueueNum which is less than or equal to ... QueueNumMax";
     *  2.7: "Queue Size value is always a power of 2". Zero is not a size either. */
    INVALID_QUEUE_SIZE(true),
    /** 2.7 table "Virtqueue Part Alignment": Descriptor Table alignment 16. */
    DESC_TABLE_MISALIGNED(true),
    /** 2.7 table "Virtqueue Part Alignment": Available Ring alignment 2. */
    AVAIL_RING_MISALIGNED(true),
    /** 2.7 table "Virtqueue Part Alignment": Used Ring alignment 4. */
    USED_RING_MISALIGNED(true),
    /** 2.7: the descriptor table (16 * Queue Size bytes) must be in guest memory the device can access. */
    DESC_TABLE_OUT_OF_MEMORY(true),
    /** 2.7: the available ring (6 + 2 * Queue Size bytes) must be in guest memory. */
    AVAIL_RING_OUT_OF_MEMORY(true),
    /** 2.7: the used ring (6 + 8 * Queue Size bytes) must be in guest memory. */
    USED_RING_OUT_OF_MEMORY(true),

    // ---- checked on every pop (queue-level) ----

    /** 2.7.6: idx "indicates where the driver would put the next descriptor entry in the ring (modulo the queue
     *  size)"; the driver cannot have more than Queue Size heads outstanding, so avail.idx - last_avail_idx
     *  greater than Queue Size is a broken ring. */
    AVAIL_INDEX_TOO_FAR(true),

    // ---- checked while parsing one chain (chain-level) ----

    /** 2.7.5: "next" (and the ring's head index) must name a descriptor of the table: index &lt; Queue Size. */
    DESCRIPTOR_INDEX_OUT_OF_RANGE(false),
    /** 2.7.13.1 / 2.7.5.3.1: "The driver MUST NOT create a descriptor chain longer than the Queue Size of the
     *  device"; a chain that visits more descriptors than its table holds loops (2.7.5.2: "loops in the
     *  descriptor chain are forbidden"). */
    CHAIN_TOO_LONG(false),
    /** 2.7.5.2: "Drivers MUST NOT add a descriptor chain longer than 2^32 bytes in total": the lengths of a
     *  chain's buffers, direct and indirect, add up to at most {@link Queue#MAX_CHAIN_BYTES}. */
    CHAIN_TOO_MANY_BYTES(false),
    /** 2.7.5.3.1: "The driver MUST NOT set the VIRTQ_DESC_F_INDIRECT flag unless the VIRTIO_F_INDIRECT_DESC
     *  feature was negotiated." */
    INDIRECT_NOT_NEGOTIATED(false),
    /** 2.7.5.3.1: "The driver MUST NOT set both VIRTQ_DESC_F_INDIRECT and VIRTQ_DESC_F_NEXT in flags." */
    INDIRECT_WITH_NEXT(false),
    /** 2.7.5.3.1: "The driver MUST NOT set the VIRTQ_DESC_F_INDIRECT flag within an indirect descriptor (ie.
     *  only one table per descriptor)." */
    NESTED_INDIRECT(false),
    /** 2.7.5.3: "len" of an indirect descriptor is the table size in bytes: a non-zero multiple of 16. */
    INDIRECT_TABLE_BAD_LENGTH(false),
    /** 2.7.5.3.1: "A driver MUST NOT create a descriptor chain longer than allowed by the device"; jkrun allows
     *  at most {@link Queue#MAX_INDIRECT_ENTRIES} entries in one indirect table. */
    INDIRECT_TABLE_TOO_LARGE(false),
    /** 2.7.5.3: the indirect table must lie in guest memory. */
    INDIRECT_TABLE_OUT_OF_MEMORY(false),
    /** 2.7.5: "addr" + "len" of a buffer must not overflow a 64-bit guest physical address. */
    BUFFER_ADDRESS_OVERFLOW(false),
    /** 2.7.5: a buffer must lie in guest RAM (one memory region). */
    BUFFER_OUT_OF_MEMORY(false),
    /** 2.7.4.2: "A driver MUST NOT place a device-writable buffer before a device-readable buffer within a
     *  descriptor chain" (2.7.5.2: "device-readable ... before device-writable"). */
    READABLE_AFTER_WRITABLE(false),

    // ---- raised by Reader/Writer while a device decodes a request ----

    /** The chain's readable (or writable) part is shorter than the request format requires. */
    DESCRIPTOR_CHAIN_TOO_SHORT(false);

    private final boolean queueLevel;

    QueueError(boolean queueLevel) { this.queueLevel = queueLevel; }

    /** Whether the error breaks the whole queue (device must be reset) rather than one chain. */
    public boolean isQueueLevel() { return queueLevel; }
}
