package dev.jkrun.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** MemoryRegion.contains: exact, unsigned bounds; the one check every accessor relies on. */
class MemoryRegionTest {
    private static final long START = 0x10_0000, SIZE = 0x1000, END = START + SIZE;
    private final MemoryRegion r = new MemoryRegion(GuestAddress.of(START), SIZE);

    @Test
    void edges() {
        assertTrue(r.contains(START, 1), "first byte");
        assertTrue(r.contains(END - 1, 1), "last byte");
        assertTrue(r.contains(START, SIZE), "whole region");
        assertTrue(r.contains(END, 0), "zero length at the end");
        assertTrue(r.contains(START, 0), "zero length at the start");
        assertFalse(r.contains(END, 1), "one past the end");
        assertFalse(r.contains(END + 1, 0), "zero length one past the end");
        assertFalse(r.contains(START - 1, 1), "one before the start");
        assertFalse(r.contains(START - 1, 0), "zero length before the start");
        assertFalse(r.contains(START - 1, 2), "starts before, ends inside");
        assertFalse(r.contains(START, SIZE + 1), "one byte too long");
        assertFalse(r.contains(END - 8, 9));
        assertTrue(r.contains(END - 8, 8));
    }

    @Test
    void negativeLengthIsRefused() {
        assertFalse(r.contains(START, -1));
        assertFalse(r.contains(START, Long.MIN_VALUE));
        assertFalse(r.contains(END, -1));
    }

    @Test
    void addressesAtAndAbove2p63() {
        // Before the fix, (addr - start) was compared signed: every one of these counted as inside.
        assertFalse(r.contains(0x7FFF_FFFF_FFFF_FFFFL, 1));
        assertFalse(r.contains(0x8000_0000_0000_0000L, 1));
        assertFalse(r.contains(0x8000_0000_0000_0000L + START, 1), "START + 2^63: offset 2^63");
        assertFalse(r.contains(0x8000_0000_0000_0000L, 0));
        assertFalse(r.contains(0xFFFF_FFFF_FFFF_F000L, 0xFFF), "ends at 2^64 - 1, does not wrap");
        assertFalse(r.contains(0xFFFF_FFFF_FFFF_F000L, 0x1000), "ends exactly at 2^64");
        assertFalse(r.contains(0xFFFF_FFFF_FFFF_F000L, 0x1000 + START + 1), "wraps into the region");
        assertFalse(r.contains(-1L, 1));
        assertFalse(r.contains(-1L, START + 2), "wraps to START + 1");
        assertFalse(r.contains(START, Long.MAX_VALUE));
    }

    @Test
    void regionAbove2p63() {
        MemoryRegion high = new MemoryRegion(GuestAddress.of(0x8000_0000_0000_0000L), SIZE);
        assertTrue(high.contains(0x8000_0000_0000_0000L, SIZE));
        assertTrue(high.contains(0x8000_0000_0000_0000L + SIZE - 1, 1));
        assertFalse(high.contains(0x7FFF_FFFF_FFFF_FFFFL, 1));
        assertFalse(high.contains(0x7FFF_FFFF_FFFF_FFFFL, 2));
        assertFalse(high.contains(0x8000_0000_0000_0000L + SIZE, 1));
        assertFalse(high.contains(0, 1));
        assertFalse(high.contains(SIZE - 1, 1));
        MemoryRegion top = new MemoryRegion(GuestAddress.of(0xFFFF_FFFF_FFFF_E000L), SIZE);
        assertEquals(0xFFFF_FFFF_FFFF_F000L, top.end());
        assertTrue(top.contains(0xFFFF_FFFF_FFFF_EFFFL, 1));
        assertFalse(top.contains(0xFFFF_FFFF_FFFF_F000L, 1));
        assertFalse(top.contains(0xFFFF_FFFF_FFFF_EFFFL, 0x1001));
    }

    @Test
    void regionMustNotWrapPast2p64() {
        assertThrows(IllegalArgumentException.class, () -> new MemoryRegion(GuestAddress.of(0xFFFF_FFFF_FFFF_F000L), 0x2000));
        // Ending exactly at 2^64 leaves end() unrepresentable (it would read as 0).
        assertThrows(IllegalArgumentException.class, () -> new MemoryRegion(GuestAddress.of(0xFFFF_FFFF_FFFF_F000L), 0x1000));
        assertThrows(IllegalArgumentException.class, () -> new MemoryRegion(GuestAddress.of(1), -1L));
        assertThrows(IllegalArgumentException.class, () -> new MemoryRegion(GuestAddress.of(0x1000), 0));
        assertThrows(IllegalArgumentException.class, () -> new MemoryRegion(GuestAddress.of(0x1000), Long.MIN_VALUE));
    }
}
