package dev.jkrun.memory;

import dev.jkrun.libc.AnonymousMapping;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Guest RAM in anonymous off-heap mappings, one per region, which the hypervisor layer registers as memory
 * slots. {@link #close()} unmaps everything; any access afterwards throws instead of touching freed memory
 * (callers must have stopped the vCPUs and device threads first: an access already past its check, or a
 * {@link #view} in use, would touch the freed range). When a thread that may still hold such an access outlived
 * the VM, {@link #retire()} instead refuses new accesses and frees the pages but keeps the range mapped.
 */
public final class MmapGuestMemory extends UnsafeGuestMemory implements AutoCloseable {
    /** A region and the host mapping that backs it (for KVM_SET_USER_MEMORY_REGION). */
    public record Slot(MemoryRegion region, AnonymousMapping mapping) {}

    private final List<Slot> slots;
    private volatile boolean closed;
    private boolean unmapped;

    private MmapGuestMemory(List<Slot> slots, List<Backing> backings) {
        super(backings);
        this.slots = Collections.unmodifiableList(slots);
    }

    /** Maps one anonymous region per entry; on failure, releases whatever was mapped. */
    public static MmapGuestMemory create(List<MemoryRegion> regions) {
        List<Slot> slots = new ArrayList<>();
        List<Backing> backings = new ArrayList<>();
        try {
            for (MemoryRegion r : regions) {
                if (!r.start().isAligned(4096) || (r.size() & 4095) != 0) {
                    throw new IllegalArgumentException("guest memory region not page-aligned: " + r);
                }
                AnonymousMapping m = AnonymousMapping.map(r.size());
                slots.add(new Slot(r, m));
                backings.add(new Backing(r, null, m.address(), m.size()));
            }
            return new MmapGuestMemory(slots, backings);
        } catch (RuntimeException e) {
            slots.forEach(s -> s.mapping().close());
            throw e;
        }
    }

    public List<Slot> slots() { return slots; }

    @Override
    void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("guest memory is released");
        }
    }

    @Override
    ByteBuffer viewOf(Backing b, long offset, int length) {
        return com.kenai.jffi.MemoryIO.getInstance().newDirectByteBuffer(offset, length);
    }

    /**
     * Refuses every further access and gives the pages back to the host, keeping the address ranges mapped (zeros
     * from now on) so that a thread still copying into or out of them cannot fault. {@link #close()} unmaps later.
     */
    public synchronized void retire() {
        closed = true;
        if (!unmapped) {
            slots.forEach(s -> s.mapping().discardPages());
        }
    }

    @Override
    public synchronized void close() {
        closed = true;
        if (!unmapped) {
            unmapped = true;
            slots.forEach(s -> s.mapping().close());
        }
    }
}
