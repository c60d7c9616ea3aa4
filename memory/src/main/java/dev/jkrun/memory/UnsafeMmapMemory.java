package dev.jkrun.memory;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The Unsafe accessor over {@link MmapGuestMemory}'s mappings (JDK 17-21, or by choice). {@link #release()} unmaps
 * at once: callers must have stopped every thread that can still be inside an access, or that access touches freed
 * memory. The FFM accessor ({@code SegmentGuestMemory}) does not have that hazard.
 */
final class UnsafeMmapMemory extends UnsafeGuestMemory implements MemoryBackend.Mapped {
    private final List<MmapGuestMemory.Slot> slots;
    private volatile boolean closed;

    UnsafeMmapMemory(List<MmapGuestMemory.Slot> slots) {
        super(backings(slots));
        this.slots = List.copyOf(slots);
    }

    private static List<Backing> backings(List<MmapGuestMemory.Slot> slots) {
        List<Backing> bs = new ArrayList<>();
        for (MmapGuestMemory.Slot s : slots) {
            bs.add(new Backing(s.region(), null, s.mapping().address()));
        }
        return bs;
    }

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
    public void release() {
        if (!closed) {
            closed = true;
            slots.forEach(s -> s.mapping().close());
        }
    }
}
