package dev.jkrun.arch.x86_64;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.MemoryRegion;
import java.util.List;

/**
 * Guest RAM: one region from 0 up to at most {@link Layout#MMIO_START}, and a second from 4 GiB when RAM does not
 * fit below the MMIO hole.
 *
 * @param lastAddress exclusive end of RAM (the end of the last region)
 */
public record RamLayout(List<MemoryRegion> regions, long lastAddress) {
    /** Refuse sizes no microVM asks for, before they overflow anything. */
    public static final long MAX_RAM = 1L << 40;
    private static final long PAGE = 0x1000;

    public RamLayout {
        regions = List.copyOf(regions);
        if (regions.isEmpty() || regions.size() > 2) {
            throw new IllegalArgumentException("memory: expected 1 or 2 RAM regions, got " + regions.size());
        }
        if (regions.get(0).start().value() != 0) {
            throw new IllegalArgumentException("memory: RAM must start at 0");
        }
        if (regions.get(0).end() > Layout.MMIO_START
                || regions.size() == 2 && regions.get(1).start().value() != Layout.MMIO_GAP_END) {
            throw new IllegalArgumentException("memory: RAM overlaps the MMIO hole");
        }
        if (lastAddress != regions.get(regions.size() - 1).end()) {
            throw new IllegalArgumentException("memory: lastAddress " + lastAddress + " is not the end of RAM");
        }
    }

    /**
     * libkrun's RAM sizing for a given RAM size in bytes and kernel payload end: regions below the MMIO hole and
     * above 4 GiB.
     *
     * <p>libkrun maps a bundled kernel as its own memslot at 16 MiB and puts the requested RAM after it, so the
     * guest sees 16 MiB + K + S (notes §1.3). jkrun copies the kernel into RAM instead, so the total is
     * {@code kernelEnd + ramBytes} in one contiguous region, split around the hole when it does not fit below it.
     *
     * @param kernelEnd load address + size of the kernel payload in RAM, 0 if none
     */
    public static RamLayout of(long ramBytes, long kernelEnd) {
        if (ramBytes <= 0 || ramBytes > MAX_RAM) {
            throw new IllegalArgumentException("memory size must be in (0, 1 TiB]: " + ramBytes);
        }
        if (kernelEnd < 0 || kernelEnd > MAX_RAM) {
            throw new IllegalArgumentException("memory: kernel end out of range: " + kernelEnd);
        }
        // Both are at most 1 TiB, so neither the sum nor the rounding can overflow.
        long total = roundUp(kernelEnd > 0 ? kernelEnd + ramBytes : ramBytes, PAGE);
        if (total <= Layout.MMIO_START) {
            return new RamLayout(List.of(region(0, total)), total);
        }
        long high = total - Layout.MMIO_START;
        return new RamLayout(List.of(region(0, Layout.MMIO_START), region(Layout.MMIO_GAP_END, high)),
                Layout.MMIO_GAP_END + high);
    }

    /**
     * Where an initramfs of {@code size} bytes goes: as high as possible, like libkrun ({@code ram_last_addr −
     * initrd_size}), but page-aligned down (Linux reserves the ramdisk in whole pages) and inside one region, so it
     * never straddles the MMIO hole: the top of the RAM above 4 GiB when it fits there, else the top of the RAM
     * below the hole. Empty when it fits in neither at or above {@code lowest} (the end of the kernel's memory).
     */
    public java.util.OptionalLong initrdAddress(long size, long lowest) {
        if (size <= 0 || size > MAX_RAM || lowest < 0) {
            return java.util.OptionalLong.empty();
        }
        for (int i = regions.size() - 1; i >= 0; i--) {
            MemoryRegion r = regions.get(i);
            long at = (r.end() - size) & -PAGE;
            if (at >= r.start().value() && at >= lowest) {
                return java.util.OptionalLong.of(at);
            }
        }
        return java.util.OptionalLong.empty();
    }

    /** Exclusive end of the RAM below the MMIO hole. */
    public long lowEnd() { return regions.get(0).end(); }

    /** Whether part of RAM lies above 4 GiB. */
    public boolean hasHighRam() { return regions.size() == 2; }

    /** Total bytes of RAM. */
    public long size() { return regions.stream().mapToLong(MemoryRegion::size).sum(); }

    private static MemoryRegion region(long start, long size) { return new MemoryRegion(GuestAddress.of(start), size); }

    private static long roundUp(long v, long align) { return (v + align - 1) & -align; }
}
