package dev.jkrun.libc;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * ioctl(2) as an FFM downcall (JDK 22+), for the calls made once per guest exit (KVM_RUN): errno is captured by the
 * linker into a per-thread segment, and no JNR stub or jffi frame is in between. Not a critical downcall: KVM_RUN
 * blocks for as long as the guest runs, and the thread must stay reachable for safepoints meanwhile.
 */
final class FfmIoctl implements Ioctl.Raw {
    private static final StructLayout STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final MethodHandle IOCTL;
    /** Where the linker stores errno after each call: one per thread, never freed before the thread's end. */
    private static final ThreadLocal<MemorySegment> STATE_SEGMENT =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(STATE));

    static {
        Linker linker = Linker.nativeLinker();
        MemorySegment ioctl = linker.defaultLookup().find("ioctl")
                .orElseThrow(() -> new UnsatisfiedLinkError("ioctl not found in the C library"));
        // int ioctl(int fd, unsigned long request, ...): the third argument is variadic.
        IOCTL = linker.downcallHandle(ioctl,
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG),
                Linker.Option.firstVariadicArg(2), Linker.Option.captureCallState("errno"));
    }

    @Override
    public int ioctl(int fd, long request, long arg) {
        MemorySegment state = STATE_SEGMENT.get();
        int rc;
        try {
            rc = (int) IOCTL.invokeExact(state, fd, request, arg);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("ioctl downcall failed", t); // no checked exception here: not reached
        }
        return rc >= 0 ? rc : -(int) ERRNO.get(state, 0L);
    }

    @Override
    public String name() { return "ffm"; }
}
