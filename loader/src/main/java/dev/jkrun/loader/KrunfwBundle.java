package dev.jkrun.loader;

import static dev.jkrun.loader.GuestWrites.hex;

import dev.jkrun.libc.NativeBuffer;
import dev.jkrun.libc.SharedLibrary;
import dev.jkrun.memory.GuestMemory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalInt;

/**
 * The Linux kernel bundled in libkrunfw (libkrunfw {@code bin2cbundle.py}): the vmlinux {@code PT_LOAD}
 * segments flattened into one image, loaded at {@code 0x1000000} and entered in 64-bit mode at
 * {@code 0x1000123}.
 *
 * <p>{@link #load} {@code dlopen}s the library, asks {@code krunfw_get_version()} and
 * {@code krunfw_get_kernel(&load_addr, &entry_addr, &size)}, copies the image into a {@code byte[]} and
 * {@code dlclose}s the library again: the library is mapped only for the duration of the call. libkrun maps
 * the library's copy straight into the guest; copying into zeroed RAM at the load address is equivalent.
 */
public final class KrunfwBundle implements KernelPayload {
    /** The ABI this loader is written against; 4 has the same kernel entry points and is accepted too. */
    public static final int ABI_VERSION = 5;
    /** libkrun sizes the kernel's memslot as the bundle rounded up to 64 KiB. */
    public static final long ALIGNMENT = 64 * 1024;

    private final Path source;
    private final int version;
    private final long loadAddress;
    private final long entry;
    private final byte[] image;

    KrunfwBundle(Path source, int version, long loadAddress, long entry, byte[] image) {
        if (image.length == 0) {
            throw new KernelFormatException(KernelFormatException.Reason.BAD_BUNDLE, source + ": empty kernel bundle");
        }
        if ((loadAddress & 0xfff) != 0) {
            throw new KernelFormatException(KernelFormatException.Reason.BAD_BUNDLE,
                    source + ": kernel load address " + hex(loadAddress) + " is not page-aligned");
        }
        if (Long.compareUnsigned(entry, loadAddress) < 0 || Long.compareUnsigned(entry - loadAddress, image.length) >= 0) {
            throw new KernelFormatException(KernelFormatException.Reason.BAD_BUNDLE, source + ": entry " + hex(entry)
                    + " is outside the bundle [" + hex(loadAddress) + ", " + hex(loadAddress + image.length) + ")");
        }
        this.source = source;
        this.version = version;
        this.loadAddress = loadAddress;
        this.entry = entry;
        this.image = image;
    }

    private static boolean isElf(Path p) {
        try (java.io.InputStream in = Files.newInputStream(p)) {
            byte[] m = in.readNBytes(4);
            return m.length == 4 && m[0] == 0x7f && m[1] == 'E' && m[2] == 'L' && m[3] == 'F';
        } catch (java.io.IOException e) {
            return false;
        }
    }

    /** Loads the bundle from {@code library} (a libkrunfw.so.5 or .so.4). */
    public static KrunfwBundle load(Path library) {
        if (!Files.isRegularFile(library)) {
            throw new KernelFormatException(KernelFormatException.Reason.IO, library + ": no such file");
        }
        if (!isElf(library)) {
            throw new KernelFormatException(KernelFormatException.Reason.BAD_LIBRARY, library + " is not a libkrunfw shared library (not ELF)");
        }
        SharedLibrary lib;
        try {
            lib = SharedLibrary.open(library);
        } catch (SharedLibrary.LoadException e) {
            throw new KernelFormatException(KernelFormatException.Reason.BAD_LIBRARY, "cannot load " + library + ": " + e.getMessage());
        } catch (LinkageError e) {
            throw new KernelFormatException(KernelFormatException.Reason.BAD_LIBRARY, "cannot bind dlopen from libc: " + e, e);
        }
        try (lib) {
            long getVersion = symbol(lib, library, "krunfw_get_version");
            long getKernel = symbol(lib, library, "krunfw_get_kernel");
            int version = lib.callInt(getVersion);
            if (version != ABI_VERSION && version != 4) {
                throw new KernelFormatException(KernelFormatException.Reason.UNSUPPORTED_VERSION,
                        "libkrunfw ABI version " + version + " is not supported (need " + ABI_VERSION + ")");
            }
            // char *krunfw_get_kernel(size_t *load_addr, size_t *entry_addr, size_t *size)
            NativeBuffer out = NativeBuffer.allocate(24);
            long ptr = lib.callAddress(getKernel, out.address(), out.address() + 8, out.address() + 16);
            long load = out.getLong(0);
            long entry = out.getLong(8);
            long size = out.getLong(16);
            if (ptr == 0) {
                throw new KernelFormatException(KernelFormatException.Reason.BAD_BUNDLE,
                        library + ": krunfw_get_kernel returned NULL");
            }
            if (size <= 0 || size > Integer.MAX_VALUE - 16) {
                throw new KernelFormatException(KernelFormatException.Reason.BAD_BUNDLE,
                        library + ": implausible kernel bundle size " + size);
            }
            byte[] image = new byte[(int) size];
            NativeBuffer.wrap(ptr, size).get(0, image, 0, image.length);
            return new KrunfwBundle(library, version, load, entry, image);
        }
    }

    private static long symbol(SharedLibrary lib, Path library, String name) {
        long addr = lib.symbol(name);
        if (addr == 0) {
            throw new KernelFormatException(KernelFormatException.Reason.BAD_LIBRARY,
                    library + " does not export " + name + " (not a libkrunfw?)");
        }
        return addr;
    }

    /** The library this bundle came from. */
    public Path source() { return source; }

    /** {@code krunfw_get_version()}: the libkrunfw ABI, 5 (or 4). */
    public int version() { return version; }

    /** Bytes of kernel image, before rounding to 64 KiB. */
    public long size() { return image.length; }

    /** A copy of the image bytes. */
    public byte[] image() { return image.clone(); }

    @Override
    public long loadAddress() { return loadAddress; }

    @Override
    public long end() { return loadAddress + ((image.length + ALIGNMENT - 1) & -ALIGNMENT); }

    @Override
    public long entry() { return entry; }

    @Override
    public void writeInto(GuestMemory mem) {
        GuestWrites.checkFits(mem, loadAddress, end() - loadAddress, this::description);
        GuestWrites.write(mem, loadAddress, image, 0, image.length);
        GuestWrites.zero(mem, loadAddress + image.length, end() - loadAddress - image.length);
    }

    /**
     * The bundle is the vmlinux's PT_LOAD segments alone: no bzImage setup header carries a {@code cmdline_size}.
     * Its kernel's COMMAND_LINE_SIZE is x86's fixed 2048 (arch/x86/include/asm/setup.h; libkrunfw patches neither it
     * nor adds CONFIG_CMDLINE, ACPI, device tree or bootconfig), and Linux copies at most 2047 bytes of the line.
     */
    public static final int COMMAND_LINE_LIMIT = 2047;

    @Override
    public OptionalInt commandLineLimit() { return OptionalInt.of(COMMAND_LINE_LIMIT); }

    @Override
    public String description() {
        return "libkrunfw " + version + " (Linux kernel bundle, " + GuestWrites.mib(image.length) + " at "
                + hex(loadAddress) + ")";
    }
}
