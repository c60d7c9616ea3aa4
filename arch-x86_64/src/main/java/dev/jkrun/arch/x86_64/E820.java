package dev.jkrun.arch.x86_64;

import java.util.ArrayList;
import java.util.List;

/** The BIOS e820 memory map handed to Linux in the zero page (notes §1.6). */
public final class E820 {
    private E820() {}

    public static final int RAM = 1;
    public static final int RESERVED = 2;
    /** boot_params.e820_table has room for 128 entries (E820_MAX_ENTRIES_ZEROPAGE). */
    public static final int MAX_ENTRIES = 128;

    /** One e820 entry: addr u64, size u64, type u32 (20 bytes packed in boot_params). */
    public record Entry(long address, long size, int type) {
        public static final int SIZE = 20;

        public long end() { return address + size; }
    }

    /**
     * [0, 0x9FC00) RAM; [1 MiB, min(end, 0xD000_0000)) RAM; [4 GiB, end) RAM when RAM continues above the hole.
     * The EBDA/ROM range 0x9FC00–1 MiB is simply absent, so Linux treats it as reserved. Unlike libkrun, the second
     * range has its exact size (libkrun reports one byte too many, which the guest rounds away).
     */
    public static List<Entry> entries(RamLayout layout) {
        List<Entry> out = new ArrayList<>(3);
        long low = layout.lowEnd();
        out.add(new Entry(0, Math.min(low, Layout.EBDA_START), RAM));
        if (low > Layout.HIMEM_START) {
            out.add(new Entry(Layout.HIMEM_START, low - Layout.HIMEM_START, RAM));
        }
        if (layout.hasHighRam()) {
            out.add(new Entry(Layout.MMIO_GAP_END, layout.lastAddress() - Layout.MMIO_GAP_END, RAM));
        }
        return List.copyOf(out);
    }
}
