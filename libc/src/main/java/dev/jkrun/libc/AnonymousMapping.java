package dev.jkrun.libc;

import java.util.concurrent.atomic.AtomicLong;

/**
 * A private anonymous mmap(2) region, page-aligned, zero-filled, outside the Java heap, or a shared mapping of a
 * memfd (anonymous memory with a descriptor, {@link #mapShared}). Guest RAM lives in these. {@link #address()} is for
 * the native layers (KVM memory slots) and the memory module's accessors only.
 */
public final class AnonymousMapping implements AutoCloseable {
    private static final int PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1, MAP_PRIVATE = 2,
            MAP_ANONYMOUS = HostOs.MAP_ANONYMOUS, MAP_NORESERVE = HostOs.MAP_NORESERVE;
    private static final int MADV_DONTNEED = 4, MADV_REMOVE = 9, MADV_DONTFORK = 10;
    private static final int MREMAP_MAYMOVE = 1, MREMAP_FIXED = 2;
    private static final AtomicLong MAPPED = new AtomicLong();
    private final long size;
    private final AtomicLong address;
    /** MADV_DONTNEED only drops a shared mapping's page-table entries; MADV_REMOVE frees the memfd's pages. */
    private final int discardAdvice;

    private AnonymousMapping(long address, long size, boolean shared) {
        this.address = new AtomicLong(address);
        this.size = size;
        this.discardAdvice = shared ? MADV_REMOVE : MADV_DONTNEED;
        MAPPED.addAndGet(size);
    }

    /** Maps {@code size} bytes (rounded up to 4 KiB) of lazily committed, zeroed memory. */
    public static AnonymousMapping map(long size) {
        if (size <= 0) {
            throw new IllegalArgumentException("mapping size must be positive: " + size);
        }
        long rounded = (size + 4095) & ~4095L;
        long addr = Native.libc().mmap(0, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, 0);
        if (addr == -1) {
            throw new NativeCallException("mmap(" + rounded + " bytes)", Native.errno());
        }
        // Guest RAM must not be duplicated into children the JVM forks (ProcessBuilder).
        Native.libc().madvise(addr, rounded, MADV_DONTFORK);
        return new AnonymousMapping(addr, rounded, false);
    }

    /**
     * Maps {@code size} bytes of {@code memfd} from {@code offset} (both multiples of 4 KiB, inside the memfd), shared:
     * writes land in the memfd, where another mapping of it sees them. The caller keeps owning the descriptor.
     */
    public static AnonymousMapping mapShared(FileDescriptor memfd, long offset, long size) {
        if (size <= 0 || offset < 0 || (size & 4095) != 0 || (offset & 4095) != 0) {
            throw new IllegalArgumentException("shared mapping [" + offset + ", +" + size + ") empty, negative or unaligned");
        }
        long addr = Native.libc().mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, memfd.raw(), offset, 0);
        if (addr == -1) {
            throw new NativeCallException("mmap(" + memfd.what() + ", " + size + " bytes at " + offset + ")", Native.errno());
        }
        Native.libc().madvise(addr, size, MADV_DONTFORK);
        return new AnonymousMapping(addr, size, true);
    }

    public long address() {
        long a = address.get();
        if (a == 0) {
            throw new IllegalStateException("mapping is unmapped");
        }
        return a;
    }

    public long size() { return size; }

    /**
     * Gives the pages back to the host (MADV_DONTNEED) but keeps the range mapped: whatever still reads it sees
     * zeros, whatever writes it gets fresh pages, nothing faults. No-op once unmapped.
     */
    public synchronized void discardPages() {
        long a = address.get();
        if (a != 0) {
            Native.libc().madvise(a, size, discardAdvice);
        }
    }

    /**
     * Gives the host pages of {@code [offset, offset+length)} of this mapping back (MADV_DONTNEED): the range stays
     * mapped, reads see zeros, writes get fresh pages. Both must be multiples of 4 KiB and lie inside the mapping.
     * Returns false (and does nothing) once unmapped, so a discard racing {@link #close()} never reaches a range
     * that is no longer ours.
     *
     * <p>MADV_DONTNEED rather than MADV_FREE: the RSS falls at once (MADV_FREE only marks the pages and the kernel
     * takes them back under memory pressure, which leaves the RSS where it was), and the next guest touch gets a
     * zeroed page either way.
     */
    public synchronized boolean discard(long offset, long length) {
        if (offset < 0 || length < 0 || (offset & 4095) != 0 || (length & 4095) != 0 || length > size - offset) {
            throw new IllegalArgumentException("discard [" + offset + ", +" + length + ") outside or unaligned in a mapping of " + size);
        }
        long a = address.get();
        if (a == 0) {
            return false;
        }
        if (length > 0 && Native.libc().madvise(a + offset, length, discardAdvice) != 0) {
            throw new NativeCallException("madvise(" + (discardAdvice == MADV_REMOVE ? "MADV_REMOVE" : "MADV_DONTNEED") + ", "
                    + length + " bytes)", Native.errno());
        }
        return true;
    }

    /**
     * Maps {@code length} bytes of {@code fd} from {@code fileOffset} over {@code [offset, offset+length)} of this
     * mapping, keeping the range's address (which a KVM memory slot may point at). {@code shared}: writes reach the
     * file (the descriptor must be open for writing); otherwise they stay private copies. Offsets and length must be
     * multiples of 4 KiB inside the mapping. Returns false once unmapped.
     *
     * <p>The file is mapped at an address of the kernel's choosing first and then moved over the range
     * (mremap MREMAP_FIXED, which replaces the range in one step): a MAP_FIXED mmap would drop the range's pages
     * before the file's mmap handler runs, and when that handler fails (proc, sysfs, a FUSE direct_io file) the
     * range would stay unmapped for a moment, where another thread's mmap could land inside guest-visible memory.
     * On failure the range is left as it was.
     */
    public synchronized boolean mapFileAt(long offset, FileDescriptor fd, long fileOffset, long length, boolean shared) {
        checkRange("file mapping", offset, length);
        if (fileOffset < 0 || (fileOffset & 4095) != 0 || fileOffset > Long.MAX_VALUE - length) {
            throw new IllegalArgumentException("file offset " + fileOffset + " negative, unaligned or too large");
        }
        long a = address.get();
        if (a == 0) {
            return false;
        }
        long staged = Native.libc().mmap(0, length, PROT_READ | PROT_WRITE, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_NORESERVE,
                fd.raw(), fileOffset, 0);
        if (staged == -1) {
            throw new NativeCallException("mmap(" + fd.what() + " at " + fileOffset + ", " + length + " bytes)", Native.errno());
        }
        long at = Native.libc().mremap(staged, length, length, MREMAP_MAYMOVE | MREMAP_FIXED, a + offset);
        if (at == -1) {
            int errno = Native.errno();
            Native.libc().munmap(staged, length);
            throw new NativeCallException("mremap(" + fd.what() + " over the window, " + length + " bytes)", errno);
        }
        Native.libc().madvise(at, length, MADV_DONTFORK);
        return true;
    }

    /** Puts fresh zeroed private memory over {@code [offset, offset+length)} (dropping a file mapping there). */
    public synchronized boolean resetAt(long offset, long length) {
        checkRange("reset", offset, length);
        long a = address.get();
        if (a == 0) {
            return false;
        }
        // staged and moved over the range in one step, as in mapFileAt: the range is never unmapped in between
        long staged = Native.libc().mmap(0, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, 0);
        if (staged == -1) {
            throw new NativeCallException("mmap(anonymous, " + length + " bytes)", Native.errno());
        }
        long at = Native.libc().mremap(staged, length, length, MREMAP_MAYMOVE | MREMAP_FIXED, a + offset);
        if (at == -1) {
            int errno = Native.errno();
            Native.libc().munmap(staged, length);
            throw new NativeCallException("mremap(anonymous over the window, " + length + " bytes)", errno);
        }
        Native.libc().madvise(at, length, MADV_DONTFORK);
        return true;
    }

    /**
     * {@link #resetAt} and then the copy of {@code data[from, from+count)} to its start, in one step under this
     * mapping's lock, so no file mapping can take the range between the two (a store into it could then reach a
     * file, or fault past its end).
     */
    public synchronized boolean resetAndWrite(long offset, long length, byte[] data, int from, int count) {
        if (count > length) {
            throw new IllegalArgumentException(count + " bytes into a range of " + length);
        }
        return resetAt(offset, length) && write(offset, data, from, count);
    }

    /** Copies {@code data[from, from+count)} to {@code offset} of this mapping; false once unmapped. */
    public synchronized boolean write(long offset, byte[] data, int from, int count) {
        if (from < 0 || count < 0 || from > data.length - count || offset < 0 || count > size - offset) {
            throw new IllegalArgumentException("write of " + count + " bytes at " + offset + " outside the mapping");
        }
        long a = address.get();
        if (a == 0) {
            return false;
        }
        if (count > 0) {
            NativeBuffer.wrap(a + offset, count).put(0, data, from, count);
        }
        return true;
    }

    /** Copies {@code count} bytes at {@code offset} of this mapping into a new array (tests, diagnostics). */
    public synchronized byte[] read(long offset, int count) {
        if (offset < 0 || count < 0 || count > size - offset) {
            throw new IllegalArgumentException("read of " + count + " bytes at " + offset + " outside the mapping");
        }
        byte[] out = new byte[count];
        long a = address();
        NativeBuffer.wrap(a + offset, count).get(0, out, 0, count);
        return out;
    }

    private void checkRange(String what, long offset, long length) {
        if (offset < 0 || length <= 0 || (offset & 4095) != 0 || (length & 4095) != 0 || length > size - offset) {
            throw new IllegalArgumentException(what + " [" + offset + ", +" + length + ") empty, outside or unaligned in a mapping of " + size);
        }
    }

    /** Bytes currently mapped through this class (for leak tests). */
    public static long mappedBytes() { return MAPPED.get(); }

    @Override
    public synchronized void close() {
        long a = address.getAndSet(0);
        if (a != 0) {
            Native.libc().munmap(a, size);
            MAPPED.addAndGet(-size);
        }
    }
}
