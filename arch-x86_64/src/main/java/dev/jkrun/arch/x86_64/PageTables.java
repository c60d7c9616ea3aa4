package dev.jkrun.arch.x86_64;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;

/**
 * The boot page tables (notes §1.8 step 5.5): one PML4 entry, one PDPT entry and 512 2 MiB pages identity-mapping
 * the first 1 GiB, which holds the kernel, the boot structures and the early stack. Linux builds its own tables
 * immediately after entry.
 */
public final class PageTables {
    private PageTables() {}

    /** Present | writable. */
    public static final long PRESENT_RW = 0x3;
    /** Present | writable | page size (a 2 MiB page at the PD level). */
    public static final long PRESENT_RW_HUGE = 0x83;
    public static final int ENTRIES = 512;

    /** PML4[0] = PDPT | 3, PDPT[0] = PD | 3, PD[i] = (i << 21) | 0x83; the rest of the three pages is zero. */
    public static void write(GuestMemory mem) {
        GuestAddress pml4 = GuestAddress.of(Layout.PML4);
        GuestAddress pdpt = GuestAddress.of(Layout.PDPT);
        GuestAddress pd = GuestAddress.of(Layout.PD);
        mem.fill(pml4, 0x1000, (byte) 0);
        mem.fill(pdpt, 0x1000, (byte) 0);
        mem.writeLong(pml4, Layout.PDPT | PRESENT_RW);
        mem.writeLong(pdpt, Layout.PD | PRESENT_RW);
        for (int i = 0; i < ENTRIES; i++) {
            mem.writeLong(pd.checkedAdd(8L * i), ((long) i << 21) | PRESENT_RW_HUGE);
        }
    }
}
