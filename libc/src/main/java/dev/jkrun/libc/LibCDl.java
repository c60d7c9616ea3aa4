package dev.jkrun.libc;

/**
 * The raw dynamic-loader surface (dlopen(3) and friends, in libc since glibc 2.34) and calls through the function
 * pointers it finds, package-private: {@link SharedLibrary} is the typed wrapper. {@link Calls} is public inside
 * this holder for jnr-ffi's generated class, as in {@link LibCFs}.
 */
final class LibCDl {
    private LibCDl() {}

    public interface Calls {
        long dlopen(String file, int mode);

        long dlsym(long handle, String name);

        int dlclose(long handle);

        String dlerror();
    }

    /** Calls through a function pointer, for the two shapes {@link SharedLibrary} offers. */
    interface Functions {
        /** {@code int fn(void)}. */
        int callInt(long fn);

        /** {@code void *fn(void *, void *, void *)}. */
        long callAddress(long fn, long a, long b, long c);
    }
}
