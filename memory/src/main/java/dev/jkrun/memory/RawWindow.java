package dev.jkrun.memory;

import java.util.Collections;
import java.util.Set;
import java.util.WeakHashMap;

/**
 * A window over mapped RAM addressed by its host address and checked by jkrun alone: one compare per access covers
 * both the window's bound and the memory's liveness, since retiring or releasing the memory shuts every window
 * ({@link Registry}), which makes its bound negative. The accessors subclass it with the access itself (Unsafe, or
 * FFM through one segment over all of the address space); see each for why this is their fastest form.
 *
 * <p>Shutting refuses new accesses; it does not stop a thread: a device loop that makes no call may keep a
 * window's state in a register. That is memory-safe because the VMM unmaps only after joining every thread that can
 * hold a window, and only retires (keeping the range mapped, zeroed) while one still runs.
 */
abstract class RawWindow implements GuestWindow {
    /** A shut window's {@link #shut}: the sign bit, which makes every bound negative. */
    private static final long SHUT = Long.MIN_VALUE;
    private final long address;
    private final GuestAddress start;
    private final long length;
    /**
     * 0 while the memory is live, {@link #SHUT} once it is retired or released; or-ed into the bound every access
     * checks. Plain, not volatile: a volatile read is a barrier the JIT cannot move a virtqueue pop's ring accesses
     * across, and it would buy no safety (see the class comment). Its default is "live", so a window another thread
     * reads without synchronization is never seen shut early.
     */
    private long shut;

    RawWindow(long address, GuestAddress start, long length) {
        this.address = address;
        this.start = start;
        this.length = length;
    }

    /** The host address of {@code n} bytes at {@code offset}, once both lie inside a live window. */
    final long at(long offset, int n) {
        // length - n cannot overflow (0 <= length, n <= 8); with SHUT or-ed in the bound is negative: refused.
        if (offset < 0 || offset > ((length - n) | shut)) {
            throw shut != 0 ? new IllegalStateException("guest memory is released") : GuestWindow.outside(start, offset, n);
        }
        return address + offset;
    }

    @Override
    public final GuestAddress start() { return start; }

    @Override
    public final long length() { return length; }

    /** One memory's windows, kept weakly, so that retiring or releasing it can shut each one. */
    static final class Registry {
        private final Set<RawWindow> windows = Collections.newSetFromMap(new WeakHashMap<>());
        private boolean shut;

        /** Keeps {@code w}, shut at once if the memory already is: a window made while it closes never stays live. */
        synchronized RawWindow add(RawWindow w) {
            if (shut) {
                w.shut = SHUT;
            }
            windows.add(w);
            return w;
        }

        /** Shuts every window made so far and every one made from now on; idempotent. */
        synchronized void shutAll() {
            shut = true;
            for (RawWindow w : windows) {
                w.shut = SHUT;
            }
        }
    }
}
