package dev.jkrun.kvm;

import dev.jkrun.libc.NativeBuffer;

/**
 * struct kvm_sregs, struct kvm_segment and struct kvm_dtable (asm/kvm.h, x86). kvm_segment: base u64, limit u32,
 * selector u16, then the u8 attributes type, present, dpl, db, s, l, g, avl, unusable, padding (24 bytes).
 * kvm_dtable: base u64, limit u16, padding u16[3] (16 bytes).
 */
final class SregsLayout {
    // kvm_segment
    static final int SEG_BASE = 0, SEG_LIMIT = 8, SEG_SELECTOR = 12, SEG_TYPE = 14, SEG_PRESENT = 15, SEG_DPL = 16,
            SEG_DB = 17, SEG_S = 18, SEG_L = 19, SEG_G = 20, SEG_AVL = 21, SEG_UNUSABLE = 22;
    // kvm_dtable
    static final int DT_BASE = 0, DT_LIMIT = 8;
    // kvm_sregs
    static final int CS = 0, DS = 24, ES = 48, FS = 72, GS = 96, SS = 120, TR = 144, LDT = 168, GDT = 192,
            IDT = 208, CR0 = 224, CR2 = 232, CR3 = 240, CR4 = 248, CR8 = 256, EFER = 264, APIC_BASE = 272,
            INTERRUPT_BITMAP = 280;

    private SregsLayout() {}

    static Sregs read(NativeBuffer p, Sregs s) {
        readSegment(p, CS, s.cs); readSegment(p, DS, s.ds); readSegment(p, ES, s.es); readSegment(p, FS, s.fs);
        readSegment(p, GS, s.gs); readSegment(p, SS, s.ss); readSegment(p, TR, s.tr); readSegment(p, LDT, s.ldt);
        readDTable(p, GDT, s.gdt); readDTable(p, IDT, s.idt);
        s.cr0 = p.getLong(CR0); s.cr2 = p.getLong(CR2); s.cr3 = p.getLong(CR3); s.cr4 = p.getLong(CR4);
        s.cr8 = p.getLong(CR8); s.efer = p.getLong(EFER); s.apicBase = p.getLong(APIC_BASE);
        for (int i = 0; i < s.interruptBitmap.length; i++) {
            s.interruptBitmap[i] = p.getLong(INTERRUPT_BITMAP + 8L * i);
        }
        return s;
    }

    static void write(NativeBuffer p, Sregs s) {
        writeSegment(p, CS, s.cs); writeSegment(p, DS, s.ds); writeSegment(p, ES, s.es); writeSegment(p, FS, s.fs);
        writeSegment(p, GS, s.gs); writeSegment(p, SS, s.ss); writeSegment(p, TR, s.tr); writeSegment(p, LDT, s.ldt);
        writeDTable(p, GDT, s.gdt); writeDTable(p, IDT, s.idt);
        p.putLong(CR0, s.cr0); p.putLong(CR2, s.cr2); p.putLong(CR3, s.cr3); p.putLong(CR4, s.cr4);
        p.putLong(CR8, s.cr8); p.putLong(EFER, s.efer); p.putLong(APIC_BASE, s.apicBase);
        for (int i = 0; i < s.interruptBitmap.length; i++) {
            p.putLong(INTERRUPT_BITMAP + 8L * i, s.interruptBitmap[i]);
        }
    }

    static void readSegment(NativeBuffer p, int at, Segment g) {
        g.base = p.getLong(at + SEG_BASE);
        g.limit = p.getInt(at + SEG_LIMIT);
        g.selector = p.getShort(at + SEG_SELECTOR);
        g.type = p.getByte(at + SEG_TYPE);
        g.present = p.getByte(at + SEG_PRESENT);
        g.dpl = p.getByte(at + SEG_DPL);
        g.db = p.getByte(at + SEG_DB);
        g.s = p.getByte(at + SEG_S);
        g.l = p.getByte(at + SEG_L);
        g.g = p.getByte(at + SEG_G);
        g.avl = p.getByte(at + SEG_AVL);
        g.unusable = p.getByte(at + SEG_UNUSABLE);
    }

    static void writeSegment(NativeBuffer p, int at, Segment g) {
        p.putLong(at + SEG_BASE, g.base);
        p.putInt(at + SEG_LIMIT, g.limit);
        p.putShort(at + SEG_SELECTOR, g.selector);
        p.putByte(at + SEG_TYPE, g.type);
        p.putByte(at + SEG_PRESENT, g.present);
        p.putByte(at + SEG_DPL, g.dpl);
        p.putByte(at + SEG_DB, g.db);
        p.putByte(at + SEG_S, g.s);
        p.putByte(at + SEG_L, g.l);
        p.putByte(at + SEG_G, g.g);
        p.putByte(at + SEG_AVL, g.avl);
        p.putByte(at + SEG_UNUSABLE, g.unusable);
        p.putByte(at + SEG_UNUSABLE + 1, (byte) 0);
    }

    static void readDTable(NativeBuffer p, int at, DTable d) {
        d.base = p.getLong(at + DT_BASE);
        d.limit = p.getShort(at + DT_LIMIT);
    }

    static void writeDTable(NativeBuffer p, int at, DTable d) {
        p.putLong(at + DT_BASE, d.base);
        p.putShort(at + DT_LIMIT, d.limit);
        p.putShort(at + DT_LIMIT + 2, (short) 0);
        p.putInt(at + DT_LIMIT + 4, 0);
    }
}
