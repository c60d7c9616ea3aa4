package dev.jkrun.arch.x86_64;

import dev.jkrun.kvm.Sregs;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import java.util.OptionalLong;

/**
 * Guest virtual → physical translation through the guest's own 4-level page tables, for diagnostics (the
 * instruction bytes at RIP when a guest stops). Read-only; permissions and accessed/dirty bits are ignored.
 */
public final class PageWalk {
    private PageWalk() {}

    static final long PRESENT = 1;
    static final long CR4_LA57 = 1L << 12;
    static final long PAGE_SIZE_BIT = 1L << 7;
    /** Physical-address bits 51:12 of a table entry or CR3. */
    static final long ADDRESS_MASK = 0x000F_FFFF_FFFF_F000L;

    /**
     * Translate a guest virtual address through 4-level page tables at cr3 (supports 4K, 2M, 1G pages); empty when
     * unmapped or when a table or the result lies outside RAM.
     */
    public static OptionalLong translate(GuestMemory mem, long cr3, long virtualAddress) {
        return walk(mem, cr3, virtualAddress, 39);
    }

    /** Walks from the level indexed by bits [top+8, top]: 39 for 4-level paging, 48 for 5-level (LA57). */
    private static OptionalLong walk(GuestMemory mem, long cr3, long virtualAddress, int top) {
        long table = cr3 & ADDRESS_MASK;
        // Levels: PML5 (bits 56:48), PML4 (47:39), PDPT (38:30, may map 1 GiB), PD (29:21, may map 2 MiB),
        // PT (20:12).
        for (int shift = top; shift >= 12; shift -= 9) {
            long slot = table + ((virtualAddress >>> shift) & 0x1FF) * 8;
            if (!mem.contains(GuestAddress.of(slot), 8)) {
                return OptionalLong.empty();
            }
            long entry = mem.readLong(GuestAddress.of(slot));
            if ((entry & PRESENT) == 0) {
                return OptionalLong.empty();
            }
            boolean leaf = shift == 12 || (shift == 30 || shift == 21) && (entry & PAGE_SIZE_BIT) != 0;
            if (leaf) {
                long pageMask = (1L << shift) - 1;
                return inRam(mem, (entry & ADDRESS_MASK & ~pageMask) | (virtualAddress & pageMask));
            }
            table = entry & ADDRESS_MASK;
        }
        throw new AssertionError("unreachable");
    }

    /**
     * Translate with the vCPU's control registers: identity without paging, a 4- or 5-level (CR4.LA57) walk in long
     * mode; empty for 32-bit paging modes, which a 64-bit boot never uses.
     */
    public static OptionalLong translate(GuestMemory mem, Sregs sregs, long virtualAddress) {
        if ((sregs.cr0 & BootCpu.CR0_PG) == 0) {
            return inRam(mem, virtualAddress & 0xFFFF_FFFFL);
        }
        if ((sregs.efer & BootCpu.EFER_LMA) == 0) {
            return OptionalLong.empty();
        }
        return walk(mem, sregs.cr3, virtualAddress, (sregs.cr4 & CR4_LA57) != 0 ? 48 : 39);
    }

    private static OptionalLong inRam(GuestMemory mem, long pa) {
        return mem.contains(GuestAddress.of(pa), 1) ? OptionalLong.of(pa) : OptionalLong.empty();
    }
}
