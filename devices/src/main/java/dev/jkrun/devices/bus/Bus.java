package dev.jkrun.devices.bus;

import java.util.Arrays;

/**
 * An address space of non-overlapping device ranges (the PIO bus or the MMIO bus). Lookups are a binary search
 * over an immutable sorted array, so vCPU threads read it without locks; devices are registered before the
 * vCPUs start.
 */
public final class Bus {
    /** A device occupying {@code [base, base+length)}. */
    public record Range(long base, long length, BusDevice device) {
        public boolean contains(long addr) { return Long.compareUnsigned(addr - base, length) < 0; }
    }

    private volatile Range[] ranges = new Range[0];

    /** Adds a device; throws if it overlaps another. */
    public synchronized void register(long base, long length, BusDevice device) {
        if (length <= 0) {
            throw new IllegalArgumentException("bus range length must be positive");
        }
        Range[] cur = ranges;
        for (Range r : cur) {
            if (Long.compareUnsigned(base, r.base + r.length) < 0 && Long.compareUnsigned(r.base, base + length) < 0) {
                throw new IllegalArgumentException(String.format("bus range 0x%x+0x%x overlaps 0x%x", base, length, r.base));
            }
        }
        Range[] next = Arrays.copyOf(cur, cur.length + 1);
        next[cur.length] = new Range(base, length, device);
        Arrays.sort(next, (a, b) -> Long.compareUnsigned(a.base, b.base));
        ranges = next;
    }

    /** The range holding {@code addr}, or null. */
    public Range find(long addr) {
        Range[] rs = ranges;
        int lo = 0, hi = rs.length - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            Range r = rs[mid];
            if (Long.compareUnsigned(addr, r.base) < 0) {
                hi = mid - 1;
            } else if (r.contains(addr)) {
                return r;
            } else {
                lo = mid + 1;
            }
        }
        return null;
    }

    /** Dispatches a read; returns false when no device is there (the data stays as it was). */
    public boolean read(long addr, byte[] data) {
        Range r = find(addr);
        if (r == null) {
            return false;
        }
        r.device.read(addr - r.base, data);
        return true;
    }

    /** Dispatches a write; returns false when no device is there. */
    public boolean write(long addr, byte[] data) {
        Range r = find(addr);
        if (r == null) {
            return false;
        }
        r.device.write(addr - r.base, data);
        return true;
    }
}
