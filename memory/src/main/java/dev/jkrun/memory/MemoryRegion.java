package dev.jkrun.memory;

/** One contiguous range of guest RAM. */
public record MemoryRegion(GuestAddress start, long size) {
    public MemoryRegion {
        if (size <= 0) {
            throw new IllegalArgumentException("region size must be positive: " + size);
        }
        // end() must be representable: a region that reached 2^64 would wrap and hold address 0 as well.
        if (Long.compareUnsigned(start.value() + size, start.value()) <= 0) {
            throw new IllegalArgumentException("region wraps past 2^64: " + start + " + 0x" + Long.toHexString(size));
        }
    }

    /** Exclusive end. */
    public long end() { return start.value() + size; }

    /**
     * Whether {@code [addr, addr+len)} lies wholly inside this region (len may be 0). Both addresses are unsigned
     * 64-bit: an address below {@code start} wraps to an offset far above {@code size} and is refused, so
     * addresses at or above 2^63 are compared like any other.
     */
    public boolean contains(long addr, long len) { return contains(start.value(), size, addr, len); }

    /**
     * {@link #contains(long, long)} for a region given as {@code start} and {@code size} (a valid region's: it does not
     * reach 2^64), for code that keeps the bounds in fields of its own rather than a region object.
     */
    public static boolean contains(long start, long size, long addr, long len) {
        if (len < 0) {
            return false;
        }
        long off = addr - start;
        return Long.compareUnsigned(off, size) <= 0 && Long.compareUnsigned(len, size - off) <= 0;
    }
}
