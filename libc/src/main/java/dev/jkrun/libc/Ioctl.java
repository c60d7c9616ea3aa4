package dev.jkrun.libc;

import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;

/** ioctl(2) for the native layers (kvm): errno becomes a {@link NativeCallException} naming the request. */
public final class Ioctl {
    private Ioctl() {}

    public static Runtime runtime() { return Native.runtime(); }

    /** Allocates zeroed native memory for an ioctl argument struct. */
    public static Pointer allocate(int size) { return Memory.allocateDirect(Native.runtime(), size, true); }

    /** Wraps a native address (e.g. the kvm_run mapping) as a bounded pointer. */
    public static Pointer wrap(long address, long size) { return Pointer.wrap(Native.runtime(), address, size); }

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

    public static int call(FileDescriptor fd, String name, long request, Pointer arg) {
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

    /** One ioctl with an integer argument, returning -errno on failure: how {@link #callRaw} reaches libc. */
    interface Raw {
        int ioctl(int fd, long request, long arg);

        String name();
    }

    /** Through JNR, like every other call here. */
    private static final class JnrIoctl implements Raw {
        @Override
        public int ioctl(int fd, long request, long arg) {
            int rc = Native.libc().ioctl(fd, request, arg);
            return rc >= 0 ? rc : -Native.errno();
        }

        @Override
        public String name() { return "jnr"; }
    }

    /**
     * The raw path: an FFM downcall on JDK 22+ (the multi-release jar's {@code FfmIoctl}), JNR before that or when
     * {@code -Djkrun.ioctl=jnr} asks; {@code -Djkrun.ioctl=ffm} insists on FFM.
     */
    private static final Raw RAW = chooseRaw(System.getProperty("jkrun.ioctl", "auto"));

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
