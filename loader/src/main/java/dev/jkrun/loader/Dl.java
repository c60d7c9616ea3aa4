package dev.jkrun.loader;

/**
 * dlopen/dlsym/dlclose/dlerror from glibc (libdl is part of libc since glibc 2.34), bound through JNR-FFI.
 * Only {@link KrunfwBundle} uses it. It is public solely because JNR-FFI generates its implementation in
 * its own class loader, which cannot implement a package-private interface (IllegalAccessError); not API.
 */
public interface Dl {
    long dlopen(String file, int mode);

    long dlsym(long handle, String name);

    int dlclose(long handle);

    String dlerror();
}
