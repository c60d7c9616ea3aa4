package dev.jkrun.arch.x86_64;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.jkrun.kvm.Segment;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.HeapGuestMemory;
import org.junit.jupiter.api.Test;

class GdtTest {
    @Test
    void entryEncodingMatchesLinuxGdtEntry() {
        assertEquals(0x00AF9B000000FFFFL, Gdt.entry(0xA09B, 0, 0xFFFFF));
        assertEquals(0x00CF93000000FFFFL, Gdt.entry(0xC093, 0, 0xFFFFF));
        assertEquals(0x008F8B000000FFFFL, Gdt.entry(0x808B, 0, 0xFFFFF));
        // Base bytes are scattered: 15:0 limit, 39:16 base 23:0, 63:56 base 31:24.
        assertEquals(0xAB00_8BCD_EF01_0067L, Gdt.entry(0x008B, 0xABCD_EF01L, 0x67));
    }

    @Test
    void codeSegment() {
        Segment s = Gdt.segmentFromEntry(Gdt.entry(0xA09B, 0, 0xFFFFF), 1);
        assertEquals(8, s.selector);
        assertEquals(0, s.base);
        assertEquals(0xFFFF_FFFF, s.limit);
        assertEquals(0xB, s.type);
        assertEquals(1, s.s);
        assertEquals(1, s.l);
        assertEquals(0, s.db);
        assertEquals(1, s.g);
        assertEquals(1, s.present);
        assertEquals(0, s.dpl);
        assertEquals(0, s.avl);
        assertEquals(0, s.unusable);
    }

    @Test
    void dataAndTssSegments() {
        Segment d = Gdt.segmentFromEntry(Gdt.entry(0xC093, 0, 0xFFFFF), 2);
        assertEquals(0x10, d.selector);
        assertEquals(3, d.type);
        assertEquals(1, d.db);
        assertEquals(1, d.g);
        assertEquals(0, d.l);
        Segment t = Gdt.segmentFromEntry(Gdt.entry(0x808B, 0, 0xFFFFF), 3);
        assertEquals(0x18, t.selector);
        assertEquals(0xB, t.type);
        assertEquals(0, t.s);
        assertEquals(0xFFFF_FFFF, t.limit);
    }

    @Test
    void byteGranularLimitAndBaseRoundTrip() {
        Segment s = Gdt.segmentFromEntry(Gdt.entry(0x008B, 0xABCD_EF01L, 0x67), 3);
        assertEquals(0xABCD_EF01L, s.base);
        assertEquals(0x67, s.limit);
        assertEquals(0, s.g);
    }

    @Test
    void notPresentIsUnusable() {
        assertEquals(1, Gdt.segmentFromEntry(0, 0).unusable);
    }

    @Test
    void writesTableAndZeroIdt() {
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x200000);
        mem.fill(GuestAddress.of(Layout.IDT), 8, (byte) 0xFF);
        Gdt.write(mem);
        assertEquals(0, mem.readLong(GuestAddress.of(0x500)));
        assertEquals(0x00AF9B000000FFFFL, mem.readLong(GuestAddress.of(0x508)));
        assertEquals(0x00CF93000000FFFFL, mem.readLong(GuestAddress.of(0x510)));
        assertEquals(0x008F8B000000FFFFL, mem.readLong(GuestAddress.of(0x518)));
        assertEquals(0, mem.readLong(GuestAddress.of(0x520)));
    }
}
