package dev.jkrun.libc;

import java.nio.file.Path;

/**
 * A shared library opened with dlopen(3) ({@code RTLD_NOW | RTLD_LOCAL}) for as long as this is open, and calls to
 * the functions it exports (libkrunfw's {@code krunfw_get_kernel}). Not thread-safe; close it once done.
 */
public final class SharedLibrary implements AutoCloseable {
    private static final int RTLD_NOW = 2, RTLD_LOCAL = 0;

    /** dlopen failed; the message is dlerror's text (printable ASCII only). */
    public static final class LoadException extends RuntimeException {
        LoadException(String message) { super(message); }
    }

    private final Path file;
    private long handle;

    private SharedLibrary(Path file, long handle) {
        this.file = file;
        this.handle = handle;
    }

    public static SharedLibrary open(Path file) {
        LibCDl.Calls dl = Native.binding().dl();
        long h = dl.dlopen(file.toAbsolutePath().toString(), RTLD_NOW | RTLD_LOCAL);
        if (h == 0) {
            throw new LoadException(printable(dl.dlerror()));
        }
        return new SharedLibrary(file, h);
    }

    private static String printable(String s) {
        if (s == null || s.isEmpty() || !s.chars().allMatch(c -> c >= 0x20 && c < 0x7f)) {
            return "dlopen failed";
        }
        return s;
    }

    /** The address of the exported {@code name}, or 0 when the library has none. */
    public long symbol(String name) { return Native.binding().dl().dlsym(handle(), name); }

    /** Calls {@code int fn(void)} at {@code fn}, an address {@link #symbol} returned. */
    public int callInt(long fn) {
        handle();
        return Native.binding().functions().callInt(nonNull(fn));
    }

    /** Calls {@code void *fn(void *, void *, void *)} at {@code fn}, an address {@link #symbol} returned. */
    public long callAddress(long fn, long a, long b, long c) {
        handle();
        return Native.binding().functions().callAddress(nonNull(fn), a, b, c);
    }

    private static long nonNull(long fn) {
        if (fn == 0) {
            throw new IllegalArgumentException("call through a NULL function pointer");
        }
        return fn;
    }

    private long handle() {
        if (handle == 0) {
            throw new IllegalStateException(file + " is closed");
        }
        return handle;
    }

    @Override
    public void close() {
        if (handle != 0) {
            Native.binding().dl().dlclose(handle);
            handle = 0;
        }
    }
}
