package dev.jkrun.memory;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The Unsafe accessor over {@link MmapGuestMemory}'s mappings (JDK 17-21, or by choice). Retiring or releasing only
 * refuses new accesses: an access already past its check, or a view in use, still touches the range, so it must stay
 * mapped until every thread that can hold one has stopped. The FFM accessor ({@code SegmentGuestMemory}) does not
 * have that hazard.
 */
final class UnsafeMmapMemory extends UnsafeGuestMemory implements MemoryBackend.Mapped {
    /**
     * Read opaquely: a vCPU or device thread sees a close soon (the read is never hoisted out of its loop), but a
     * volatile read's acquire would keep the JIT from sharing one range check among a request's accesses, and it
     * buys nothing here, as the mapping outlives every thread that may still be past its check.
     */
    private boolean closed;
    private static final VarHandle CLOSED;

    static {
        try {
            CLOSED = MethodHandles.lookup().findVarHandle(UnsafeMmapMemory.class, "closed", boolean.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    UnsafeMmapMemory(List<MmapGuestMemory.Slot> slots) { super(backings(slots)); }

    private static List<Backing> backings(List<MmapGuestMemory.Slot> slots) {
        List<Backing> bs = new ArrayList<>();
        for (MmapGuestMemory.Slot s : slots) {
            bs.add(new Backing(s.region(), null, s.mapping().address(), s.mapping().size()));
        }
        return bs;
    }

    @Override
    void ensureOpen() {
        if ((boolean) CLOSED.getOpaque(this)) {
            throw new IllegalStateException("guest memory is released");
        }
    }

    @Override
    ByteBuffer viewOf(Backing b, long offset, int length) {
        return com.kenai.jffi.MemoryIO.getInstance().newDirectByteBuffer(offset, length);
    }

    @Override
    public void retire() { CLOSED.setVolatile(this, true); }

    @Override
    public void release() { CLOSED.setVolatile(this, true); }
}
