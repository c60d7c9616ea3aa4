package dev.jkrun.libc;

import jnr.ffi.LibraryLoader;
import jnr.ffi.Runtime;

/** Loads libc once; package-private access point for the wrappers. */
final class Native {
    private static final LibC LIBC = LibraryLoader.create(LibC.class).failImmediately().load("c");
    private static final Runtime RUNTIME = Runtime.getRuntime(LIBC);

    private Native() {}

    static LibC libc() { return LIBC; }

    static Runtime runtime() { return RUNTIME; }

    static int errno() { return RUNTIME.getLastError(); }

    /** Returns {@code rc} or throws naming {@code call} when it signals failure with -1. */
    static long check(String call, long rc) {
        if (rc == -1) {
            throw new NativeCallException(call, errno());
        }
        return rc;
    }
}
