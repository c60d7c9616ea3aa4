package dev.jkrun.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** GuestAddress arithmetic is unsigned 64-bit and never wraps. */
class GuestAddressTest {
    private static void assertOverflow(long base, long delta) {
        GuestMemoryException e = assertThrows(GuestMemoryException.class, () -> GuestAddress.of(base).checkedAdd(delta),
                () -> String.format("0x%x + 0x%x", base, delta));
        assertEquals(GuestMemoryException.Reason.OVERFLOW, e.reason());
    }

    @Test
    void checkedAddUpToTheTopOfTheAddressSpace() {
        assertEquals(GuestAddress.of(0x1000), GuestAddress.of(0xFF0).checkedAdd(0x10));
        assertEquals(GuestAddress.ZERO, GuestAddress.ZERO.checkedAdd(0));
        // Crossing 2^63 is an ordinary unsigned add, not an overflow.
        assertEquals(GuestAddress.of(0x8000_0000_0000_0000L), GuestAddress.of(0x7FFF_FFFF_FFFF_FFFFL).checkedAdd(1));
        assertEquals(GuestAddress.of(-1L), GuestAddress.of(0xFFFF_FFFF_FFFF_F000L).checkedAdd(0xFFF));
        assertEquals(GuestAddress.of(-1L), GuestAddress.of(-1L).checkedAdd(0));
        assertEquals(GuestAddress.of(-1L), GuestAddress.of(0x8000_0000_0000_0000L).checkedAdd(Long.MAX_VALUE));
        assertEquals(GuestAddress.of(-1L), GuestAddress.ZERO.checkedAdd(Long.MAX_VALUE).checkedAdd(Long.MAX_VALUE).checkedAdd(1));
    }

    @Test
    void checkedAddRefusesWrapAndNegativeDelta() {
        assertOverflow(-1L, 1);
        assertOverflow(0xFFFF_FFFF_FFFF_F000L, 0x1000);
        assertOverflow(0xFFFF_FFFF_FFFF_F000L, Long.MAX_VALUE);
        assertOverflow(0x8000_0000_0000_0001L, Long.MAX_VALUE);
        // A negative delta would be a subtraction in disguise (or a huge unsigned length): refused.
        assertOverflow(0x1000, -1);
        assertOverflow(0x1000, Long.MIN_VALUE);
        assertOverflow(0, -0x1000);
    }

    @Test
    void orderIsUnsigned() {
        assertTrue(GuestAddress.of(0x8000_0000_0000_0000L).compareTo(GuestAddress.of(0x7FFF_FFFF_FFFF_FFFFL)) > 0);
        assertTrue(GuestAddress.of(-1L).compareTo(GuestAddress.ZERO) > 0);
        assertEquals(0, GuestAddress.of(0xD000_0000L).compareTo(GuestAddress.of(0xD000_0000L)));
    }

    @Test
    void alignment() {
        assertTrue(GuestAddress.of(0xFFFF_FFFF_FFFF_F000L).isAligned(4096));
        assertFalse(GuestAddress.of(0x8000_0000_0000_0002L).isAligned(4));
        assertTrue(GuestAddress.of(0x8000_0000_0000_0002L).isAligned(2));
    }
}
