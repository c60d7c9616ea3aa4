package dev.jkrun.arch.x86_64;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.memory.GuestMemoryException;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads a 64-bit guest's stack through its own 4-level page tables, for diagnosing a hung guest: the words on the
 * stack that look like kernel text addresses are, mostly, its return addresses. Everything read is bounds-checked
 * guest memory; a missing mapping ends the walk.
 */
public final class GuestStack {
    private static final long PRESENT = 1, LARGE = 1L << 7, ADDR = 0x000f_ffff_ffff_f000L;
    /** Where x86-64 Linux maps its text and modules (without KASLR: libkrunfw's kernels), end exclusive. */
    private static final long KERNEL_TEXT = 0xffff_ffff_8000_0000L, KERNEL_TEXT_END = 0xffff_ffff_c000_0000L;

    private GuestStack() {}

    /** The guest-physical address of {@code va}, or -1 when unmapped. */
    public static long translate(GuestMemory mem, long cr3, long va) {
        try {
            long table = cr3 & ADDR;
            for (int level = 3; level >= 0; level--) {
                int shift = 12 + 9 * level;
                long e = mem.readLong(GuestAddress.of(table + ((va >>> shift) & 511) * 8));
                if ((e & PRESENT) == 0) {
                    return -1;
                }
                if (level == 0 || (level <= 2 && (e & LARGE) != 0)) {
                    long pageMask = (1L << shift) - 1;
                    return (e & ADDR & ~pageMask) | (va & pageMask);
                }
                table = e & ADDR;
            }
        } catch (GuestMemoryException e) {
            // a table outside guest memory
        }
        return -1;
    }

    /** Up to {@code words} stack words from {@code rsp} that point into kernel text, as hex. */
    public static List<String> kernelTextWords(GuestMemory mem, long cr3, long rsp, int words) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < words; i++) {
            long pa = translate(mem, cr3, rsp + 8L * i);
            if (pa < 0) {
                break;
            }
            try {
                long w = mem.readLong(GuestAddress.of(pa));
                if (Long.compareUnsigned(w, KERNEL_TEXT) >= 0 && Long.compareUnsigned(w, KERNEL_TEXT_END) < 0) {
                    out.add(Long.toHexString(w));
                }
            } catch (GuestMemoryException e) {
                break;
            }
        }
        return out;
    }
}
