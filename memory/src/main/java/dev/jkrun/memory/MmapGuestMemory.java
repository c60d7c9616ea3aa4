package dev.jkrun.memory;

import dev.jkrun.libc.AnonymousMapping;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Guest RAM in anonymous off-heap mappings, one per region, which the hypervisor layer registers as memory
 * slots. {@link #close()} unmaps everything; any access afterwards throws instead of touching freed memory
 * (callers must have stopped the vCPUs and device threads first).
 */
public final class MmapGuestMemory extends UnsafeGuestMemory implements AutoCloseable {
    /** A region and the host mapping that backs it (for KVM_SET_USER_MEMORY_REGION). */
    public record Slot(MemoryRegion region, AnonymousMapping mapping) {}

    private final List<Slot> slots;
    private volatile boolean closed;

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

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            slots.forEach(s -> s.mapping().close());
        }
    }
}
