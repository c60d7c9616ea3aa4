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

    /** One ioctl without EINTR retry; returns -errno instead of throwing (for KVM_RUN, where EINTR is a kick). */
    public static int callRaw(FileDescriptor fd, long request, long arg) {
        int rc = Native.libc().ioctl(fd.raw(), request, arg);
        return rc >= 0 ? rc : -Native.errno();
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
