package dev.jkrun.memory;

/** One contiguous range of guest RAM. */
public record MemoryRegion(GuestAddress start, long size) {
    public MemoryRegion {
        if (size <= 0) {
            throw new IllegalArgumentException("region size must be positive: " + size);
        }
    }

    /** Exclusive end. */
    public long end() { return start.value() + size; }

    /** Whether {@code [addr, addr+len)} lies wholly inside this region (len may be 0). */
    public boolean contains(long addr, long len) {
        long off = addr - start.value();
        return Long.compareUnsigned(addr, start.value()) >= 0 && len >= 0 && off <= size && len <= size - off;
    }
}
