package dev.jkrun.libc;

import java.lang.ref.Reference;

/** ioctl(2) for the native layers (kvm): errno becomes a {@link NativeCallException} naming the request. */
public final class Ioctl {
    private Ioctl() {}

    /** Allocates zeroed native memory for an ioctl argument struct. */
    public static NativeBuffer allocate(int size) { return NativeBuffer.allocate(size); }

    /** Wraps a native address (e.g. the kvm_run mapping) as a bounded buffer. */
    public static NativeBuffer wrap(long address, long size) { return NativeBuffer.wrap(address, size); }

    public static int call(FileDescriptor fd, String name, long request, long arg) {
        while (true) {
            int rc = Native.libc().ioctl(fd.raw(), request, arg);
            if (rc >= 0) {
                return rc;
            }
            int e = Native.errno();
            if (e != Errno.EINTR) {
                throw new NativeCallException(name, e);
            }
        }
    }

    /** ioctl with a pointer to {@code arg}, kept reachable until the call has returned. */
    public static int call(FileDescriptor fd, String name, long request, NativeBuffer arg) {
        try {
            return call(fd, name, request, arg.address());
        } finally {
            Reference.reachabilityFence(arg);
        }
    }

    /**
     * The binding KVM_RUN goes through: the rest of libc's ({@code -Djkrun.native}, FFM on JDK 22+) unless
     * {@code -Djkrun.ioctl=jnr|ffm|auto} picks one for this call alone (ExitRoundTrip compares the two).
     */
    private static final Native.Binding RAW = chooseRaw(System.getProperty("jkrun.ioctl"));

    private static Native.Binding chooseRaw(String want) {
        if (want == null) {
            return Native.binding();
        }
        try {
            return Native.choose(want);
        } catch (IllegalArgumentException | IllegalStateException e) {
            throw new IllegalStateException("-Djkrun.ioctl=" + want + ": " + e.getMessage(), e);
        }
    }

    /** Which path {@link #callRaw} takes: {@code jnr} or {@code ffm}. */
    public static String rawPath() { return RAW.name(); }

    /**
     * One ioctl without EINTR retry; returns -errno instead of throwing (for KVM_RUN, where EINTR is a kick). The
     * one ioctl per guest exit, so it takes the cheapest call this JDK offers ({@link #rawPath()}).
     */
    public static int callRaw(FileDescriptor fd, long request, long arg) {
        int rc = RAW.libc().ioctl(fd.raw(), request, arg);
        return rc >= 0 ? rc : -RAW.errno();
    }

    /** mmap of a device fd (kvm_run); returns the address. */
    public static long mapShared(FileDescriptor fd, long size, String what) {
        long addr = Native.libc().mmap(0, size, 3, 1 /* MAP_SHARED */, fd.raw(), 0, 0);
        if (addr == -1) {
            throw new NativeCallException("mmap(" + what + ")", Native.errno());
        }
        return addr;
    }

    public static void unmap(long address, long size) { Native.libc().munmap(address, size); }
}
