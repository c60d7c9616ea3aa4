package dev.jkrun.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.jkrun.memory.UnsafeGuestMemory.Backing;
import org.junit.jupiter.api.Test;

/**
 * The second check, where memory is touched: whatever region lookup chose a backing, the offset and length
 * handed to Unsafe lie inside what that backing holds. Exercised directly here with ranges the lookup would
 * have refused (the pre-fix lookup accepted several of them).
 */
class UnsafeGuestMemoryTest {
    private static final long START = 0x10000, SIZE = 0x1000, BASE = sun.misc.Unsafe.ARRAY_BYTE_BASE_OFFSET;
    private final Backing b = new Backing(new MemoryRegion(GuestAddress.of(START), SIZE), new byte[(int) SIZE], BASE, SIZE);

    private void assertOutside(long addr, long len) {
        GuestMemoryException e = assertThrows(GuestMemoryException.class, () -> UnsafeGuestMemory.at(b, GuestAddress.of(addr), len),
                () -> String.format("0x%x + 0x%x", addr, len));
        assertEquals(GuestMemoryException.Reason.OUT_OF_BOUNDS, e.reason());
    }

    @Test
    void insideTheBacking() {
        assertEquals(BASE, UnsafeGuestMemory.at(b, GuestAddress.of(START), SIZE));
        assertEquals(BASE + SIZE - 1, UnsafeGuestMemory.at(b, GuestAddress.of(START + SIZE - 1), 1));
        assertEquals(BASE + SIZE, UnsafeGuestMemory.at(b, GuestAddress.of(START + SIZE), 0));
        assertEquals(BASE + 1, UnsafeGuestMemory.at(b, GuestAddress.of(START + 1), SIZE - 1));
    }

    @Test
    void outsideTheBacking() {
        assertOutside(START + SIZE, 1);
        assertOutside(START + 1, SIZE);
        assertOutside(START - 1, 1);
        assertOutside(START - 1, 0);
        assertOutside(START + SIZE + 1, 0);
        assertOutside(START, -1);
        assertOutside(START, Long.MAX_VALUE);
        assertOutside(START + 1, Long.MAX_VALUE);
        // What the signed region check let through: offsets at or above 2^63, and below the start.
        assertOutside(0x8000_0000_0000_0000L + START, 1);
        assertOutside(0x8000_0000_0000_0000L + START + 0x30000, 1);
        assertOutside(0xFFFF_FFFF_FFFF_F000L, 0xFFF);
        assertOutside(0xFFFF_FFFF_FFFF_FFF0L, 8);
        assertOutside(-1L, 1);
    }

    @Test
    void backingMustHoldItsRegion() {
        MemoryRegion r = new MemoryRegion(GuestAddress.of(START), SIZE);
        assertThrows(IllegalArgumentException.class, () -> new Backing(r, new byte[(int) SIZE - 1], BASE, SIZE - 1));
        new Backing(r, null, 0x7000_0000_0000L, SIZE + 0x1000); // a larger mapping is fine
    }
}
