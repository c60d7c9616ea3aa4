package dev.jkrun.loader;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.memory.MemoryRegion;
import java.util.function.Supplier;

/**
 * Placement helpers shared by the payloads: a kernel range may cross from one RAM region into the next
 * (the bundle's own slot and the RAM after it, for instance) as long as there is no hole between them.
 */
final class GuestWrites {
    private static final int ZERO_CHUNK = 1 << 16;

    private GuestWrites() {}

    /**
     * Throws {@link KernelFormatException.Reason#DOES_NOT_FIT} unless {@code [start, start+len)} is all RAM.
     * {@code what} names the payload in the error, and is only asked for then (a kernel's description formats sizes).
     */
    static void checkFits(GuestMemory mem, long start, long len, Supplier<String> what) {
        long end = start + len;
        if (len < 0 || Long.compareUnsigned(end, start) < 0) {
            throw new KernelFormatException(KernelFormatException.Reason.OVERFLOW,
                    what.get() + ": range " + hex(start) + " + " + len + " overflows");
        }
        long cur = start;
        while (Long.compareUnsigned(cur, end) < 0) {
            MemoryRegion r = regionAt(mem, cur);
            if (r == null) {
                throw new KernelFormatException(KernelFormatException.Reason.DOES_NOT_FIT,
                        what.get() + " does not fit in guest RAM: [" + hex(start) + ", " + hex(end) + ") needs "
                                + hex(cur) + ", which is not RAM (regions " + mem.regions() + ")");
            }
            cur = Long.compareUnsigned(r.end(), end) < 0 ? r.end() : end;
        }
    }

    /** Writes {@code data[off, off+len)} at {@code start}, splitting at region boundaries. */
    static void write(GuestMemory mem, long start, byte[] data, int off, int len) {
        long cur = start;
        int done = 0;
        while (done < len) {
            MemoryRegion r = regionAt(mem, cur);
            int chunk = (int) Math.min(len - done, r.end() - cur);
            mem.write(GuestAddress.of(cur), data, off + done, chunk);
            done += chunk;
            cur += chunk;
        }
    }

    /** Zeroes {@code [start, start+len)}, splitting at region boundaries. */
    static void zero(GuestMemory mem, long start, long len) {
        long cur = start;
        long left = len;
        while (left > 0) {
            MemoryRegion r = regionAt(mem, cur);
            long chunk = Math.min(left, r.end() - cur);
            mem.fill(GuestAddress.of(cur), chunk, (byte) 0);
            left -= chunk;
            cur += chunk;
        }
    }

    private static MemoryRegion regionAt(GuestMemory mem, long addr) {
        for (MemoryRegion r : mem.regions()) {
            if (r.contains(addr, 1)) {
                return r;
            }
        }
        return null;
    }

    static String hex(long v) { return "0x" + Long.toHexString(v); }

    /** {@code bytes} in MiB with one decimal, rounded half up (as {@code %.1f}, without a Formatter on the start path). */
    static String mib(long bytes) {
        long tenths = Math.round(bytes / 104857.6);
        return tenths / 10 + "." + tenths % 10 + " MiB";
    }
}
