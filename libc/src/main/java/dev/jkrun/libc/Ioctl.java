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

    /** One ioctl with an integer argument, returning -errno on failure: how {@link #callRaw} reaches libc. */
    interface Raw {
        int ioctl(int fd, long request, long arg);

        String name();
    }

    /** Through JNR, whichever binding the rest of libc uses. */
    private static final class JnrIoctl implements Raw {
        @Override
        public int ioctl(int fd, long request, long arg) {
            int rc = JnrBinding.INSTANCE.libc().ioctl(fd, request, arg);
            return rc >= 0 ? rc : -JnrBinding.INSTANCE.errno();
        }

        @Override
        public String name() { return "jnr"; }
    }

    /**
     * The raw path: the same as the rest of libc ({@code -Djkrun.native}, FFM on JDK 22+) unless
     * {@code -Djkrun.ioctl=jnr|ffm} picks one for this call alone (ExitRoundTrip compares the two).
     */
    private static final Raw RAW = chooseRaw(System.getProperty("jkrun.ioctl", Native.binding().name()));

    private static Raw chooseRaw(String want) {
        switch (want) {
            case "jnr":
                return new JnrIoctl();
            case "auto":
            case "ffm":
                if (java.lang.Runtime.version().feature() >= 22) {
                    try {
                        return (Raw) Class.forName("dev.jkrun.libc.FfmIoctl").getDeclaredConstructor().newInstance();
                    } catch (ReflectiveOperationException | LinkageError e) {
                        if (want.equals("ffm")) {
                            throw new IllegalStateException("-Djkrun.ioctl=ffm: the FFM ioctl is not usable: " + e, e);
                        }
                    }
                } else if (want.equals("ffm")) {
                    throw new IllegalStateException("-Djkrun.ioctl=ffm needs JDK 22 or newer, not " + java.lang.Runtime.version());
                }
                return new JnrIoctl();
            default:
                throw new IllegalArgumentException("-Djkrun.ioctl=" + want + ": expected jnr, ffm or auto");
        }
    }

    /** Which path {@link #callRaw} takes: {@code jnr} or {@code ffm}. */
    public static String rawPath() { return RAW.name(); }

    /**
     * One ioctl without EINTR retry; returns -errno instead of throwing (for KVM_RUN, where EINTR is a kick). The
     * one ioctl per guest exit, so it takes the cheapest call this JDK offers ({@link #rawPath()}).
     */
    public static int callRaw(FileDescriptor fd, long request, long arg) { return RAW.ioctl(fd.raw(), request, arg); }

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
