package dev.jkrun.arch.x86_64;

import dev.jkrun.kvm.Segment;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;

/**
 * The boot GDT at {@link Layout#GDT} and the KVM segment state derived from it (notes §1.8 step 5.2/5.3; libkrun
 * {@code gdt.rs}). The descriptors in memory and the hidden segment state given to KVM must agree, since the guest
 * reloads segments from this table.
 */
public final class Gdt {
    private Gdt() {}

    /** 64-bit code: G=1, L=1, present, DPL 0, execute/read, accessed. */
    public static final int CODE_FLAGS = 0xA09B;
    /** Data: G=1, D/B=1, present, DPL 0, read/write, accessed. */
    public static final int DATA_FLAGS = 0xC093;
    /** Busy 64-bit TSS, G=1 (KVM's TSS lives at {@link Layout#TSS_ADDRESS}; the base here is 0, as in libkrun). */
    public static final int TSS_FLAGS = 0x808B;
    private static final long[] ENTRIES = {
        0, entry(CODE_FLAGS, 0, 0xFFFFF), entry(DATA_FLAGS, 0, 0xFFFFF), entry(TSS_FLAGS, 0, 0xFFFFF)
    };
    public static final int CODE_INDEX = 1;
    public static final int DATA_INDEX = 2;
    public static final int TSS_INDEX = 3;
    /** GDTR limit: 4 entries × 8 bytes − 1. */
    public static final short LIMIT = 4 * 8 - 1;

    /** The four descriptors: null, code (selector 0x08), data (0x10), TSS (0x18). A fresh copy. */
    public static long[] entries() { return ENTRIES.clone(); }

    /** The kvm_segment for boot GDT entry {@code index}. */
    public static Segment segment(int index) { return segmentFromEntry(ENTRIES[index], index); }

    /**
     * Linux's GDT_ENTRY(flags, base, limit): flags bits 0–7 are the access byte (type, S, DPL, P) and bits 12–15
     * the AVL/L/D/G nibble; base and limit are scattered as the descriptor format wants.
     */
    public static long entry(int flags, long base, long limit) {
        return ((base & 0xFF00_0000L) << (56 - 24))
                | ((flags & 0xF0FFL) << 40)
                | ((limit & 0xF_0000L) << (48 - 16))
                | ((base & 0x00FF_FFFFL) << 16)
                | (limit & 0xFFFFL);
    }

    /** The kvm_segment for descriptor {@code entry} at GDT index {@code selectorIndex} (selector = index × 8). */
    public static Segment segmentFromEntry(long entry, int selectorIndex) {
        Segment s = new Segment();
        s.base = ((entry >>> 32) & 0xFF00_0000L) | ((entry >>> 16) & 0x00FF_FFFFL);
        s.g = bit(entry, 55);
        s.db = bit(entry, 54);
        s.l = bit(entry, 53);
        s.avl = bit(entry, 52);
        s.present = bit(entry, 47);
        s.dpl = (byte) ((entry >>> 45) & 3);
        s.s = bit(entry, 44);
        s.type = (byte) ((entry >>> 40) & 0xF);
        int limit = (int) (((entry >>> 32) & 0xF_0000L) | (entry & 0xFFFFL));
        // KVM wants the byte-granular limit: with G = 1 the 20-bit limit counts 4 KiB pages.
        s.limit = s.g == 1 ? (limit << 12) | 0xFFF : limit;
        // "Unusable" only for a not-present descriptor; VMX rejects a usable segment with P = 0.
        s.unusable = (byte) (s.present == 0 ? 1 : 0);
        s.selector = (short) (selectorIndex * 8);
        return s;
    }

    /** Writes the 4-entry GDT at {@link Layout#GDT} and the single zero IDT entry at {@link Layout#IDT}. */
    public static void write(GuestMemory mem) {
        GuestAddress gdt = GuestAddress.of(Layout.GDT);
        for (int i = 0; i < ENTRIES.length; i++) {
            mem.writeLong(gdt.checkedAdd(8L * i), ENTRIES[i]);
        }
        mem.writeLong(GuestAddress.of(Layout.IDT), 0);
    }

    private static byte bit(long v, int n) { return (byte) ((v >>> n) & 1); }
}
