package dev.jkrun.arch.x86_64;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;

/**
 * The boot page tables (notes §1.8 step 5.5): one PML4 entry, one PDPT entry and 512 2 MiB pages identity-mapping
 * the first 1 GiB, which holds the kernel, the boot structures and the early stack. Linux builds its own tables
 * immediately after entry. A kernel entered higher (a raw kernel at 2 GiB) gets the first 4 GiB, one PD per GiB at
 * {@link Layout#PD} and the three pages after it.
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
        write(mem, 1);
    }

    /** Identity-maps the first {@code gib} GiB (1 to 4). */
    public static void write(GuestMemory mem, int gib) {
        if (gib < 1 || gib > 4) {
            throw new IllegalArgumentException("boot page tables map 1 to 4 GiB, not " + gib);
        }
        GuestAddress pml4 = GuestAddress.of(Layout.PML4);
        GuestAddress pdpt = GuestAddress.of(Layout.PDPT);
        mem.fill(pml4, 0x1000, (byte) 0);
        mem.fill(pdpt, 0x1000, (byte) 0);
        mem.writeLong(pml4, Layout.PDPT | PRESENT_RW);
        for (int g = 0; g < gib; g++) {
            long pdAt = Layout.PD + 0x1000L * g;
            mem.writeLong(pdpt.checkedAdd(8L * g), pdAt | PRESENT_RW);
            GuestAddress pd = GuestAddress.of(pdAt);
            for (int i = 0; i < ENTRIES; i++) {
                mem.writeLong(pd.checkedAdd(8L * i), ((long) g << 30 | (long) i << 21) | PRESENT_RW_HUGE);
            }
        }
    }
}
