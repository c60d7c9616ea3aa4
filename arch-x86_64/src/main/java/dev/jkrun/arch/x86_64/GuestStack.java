package dev.jkrun.arch.x86_64;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.memory.GuestMemoryException;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads a 64-bit guest's stack through its own page tables ({@link PageWalk}), for diagnosing a hung guest: the
 * words on the stack that look like kernel text addresses are, mostly, its return addresses. Everything read is
 * bounds-checked guest memory; a missing mapping ends the walk.
 */
public final class GuestStack {
    /** Where x86-64 Linux maps its text and modules (without KASLR: libkrunfw's kernels), end exclusive. */
    private static final long KERNEL_TEXT = 0xffff_ffff_8000_0000L, KERNEL_TEXT_END = 0xffff_ffff_c000_0000L;

    private GuestStack() {}

    /** Up to {@code words} stack words from {@code rsp} that point into kernel text, as hex. */
    public static List<String> kernelTextWords(GuestMemory mem, long cr3, long rsp, int words) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < words; i++) {
            java.util.OptionalLong mapped = PageWalk.translate(mem, cr3, rsp + 8L * i);
            if (mapped.isEmpty()) {
                break;
            }
            long pa = mapped.getAsLong();
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
