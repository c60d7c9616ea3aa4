package dev.jkrun.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.libc.AnonymousMapping;
import dev.jkrun.memory.GuestMemoryTest.Op;
import java.nio.ByteBuffer;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Off-heap guest memory: the x86 layout around the 32-bit MMIO hole, and use after close. */
class MmapGuestMemoryTest {
    /** RAM below the hole, [1 MiB, 0xD000_0000), and above it, [4 GiB, 4 GiB + 1 MiB); mapped lazily (MAP_NORESERVE). */
    static final long LOW = 0x10_0000, HOLE = 0xD000_0000L, HIGH = 0x1_0000_0000L, HIGH_SIZE = 0x10_0000;

    private static MemoryRegion region(long start, long size) { return new MemoryRegion(GuestAddress.of(start), size); }

    private static void assertRefused(GuestMemory m, long addr, long len) {
        assertFalse(m.contains(GuestAddress.of(addr), len), () -> String.format("contains(0x%x, 0x%x)", addr, len));
        assertThrows(GuestMemoryException.class, () -> m.fill(GuestAddress.of(addr), len, (byte) 0x5A),
                () -> String.format("fill(0x%x, 0x%x)", addr, len));
    }

    @Test
    void accessesAcrossTheMmioHoleAreRefused() {
        try (MmapGuestMemory m = MmapGuestMemory.create(List.of(region(LOW, HOLE - LOW), region(HIGH, HIGH_SIZE)))) {
            for (Op op : Op.values()) {
                int w = op.len(8);
                GuestAddress lastLow = GuestAddress.of(HOLE - w);
                assertTrue(m.contains(lastLow, w));
                op.apply(m, lastLow, w);
                op.apply(m, GuestAddress.of(HIGH), w);
                op.apply(m, GuestAddress.of(LOW), w);
                for (long bad : new long[] {HOLE - w + 1, HOLE, HIGH - 1, HIGH - w, LOW - 1, LOW - w,
                    HIGH + HIGH_SIZE - w + 1, 0x8000_0000_0000_0000L + LOW, 0x8000_0000_0000_0000L + HIGH}) {
                    assertFalse(m.contains(GuestAddress.of(bad), w), String.format("%s at 0x%x", op, bad));
                    assertThrows(GuestMemoryException.class, () -> op.apply(m, GuestAddress.of(bad), w),
                            String.format("%s at 0x%x", op, bad));
                }
            }
            assertTrue(m.contains(GuestAddress.of(LOW), HOLE - LOW));
            assertTrue(m.contains(GuestAddress.of(HIGH), HIGH_SIZE));
            assertRefused(m, HOLE - 8, HIGH - HOLE + 16); // from below the hole into RAM above it
            assertRefused(m, LOW, HIGH + HIGH_SIZE - LOW); // both regions and the hole
            assertRefused(m, HOLE, HIGH - HOLE);           // exactly the hole
            assertRefused(m, HIGH - 1, 2);
            assertRefused(m, HOLE - 1, 2);
            assertRefused(m, LOW - 1, 2);
            assertRefused(m, 0, LOW + 1);
            assertRefused(m, HIGH + HIGH_SIZE - 1, 2);
            assertThrows(GuestMemoryException.class, () -> m.view(GuestAddress.of(HOLE - 4), 8));
            assertThrows(GuestMemoryException.class, () -> m.write(GuestAddress.of(HIGH - 4), ByteBuffer.allocate(8)));
            assertThrows(GuestMemoryException.class, () -> m.read(GuestAddress.of(HOLE - 4), new byte[8], 0, 8));
            // The two edges still hold what was written there, the bytes next to them nothing.
            m.writeInt(GuestAddress.of(HOLE - 4), 0x11223344);
            m.writeInt(GuestAddress.of(HIGH), 0x55667788);
            assertEquals(0x11223344, m.readInt(GuestAddress.of(HOLE - 4)));
            assertEquals(0x55667788, m.readInt(GuestAddress.of(HIGH)));
            assertEquals(0, m.readInt(GuestAddress.of(HIGH + 8)));
        }
    }

    @Test
    void everyAccessorThrowsAfterClose() {
        long before = AnonymousMapping.mappedBytes();
        MmapGuestMemory m = MmapGuestMemory.create(List.of(region(0x10000, 0x4000), region(0x20000, 0x1000)));
        assertEquals(before + 0x5000, AnonymousMapping.mappedBytes());
        m.writeLong(GuestAddress.of(0x10000), 42);
        m.close();
        assertEquals(before, AnonymousMapping.mappedBytes(), "unmapped");
        for (MmapGuestMemory.Slot s : m.slots()) {
            assertThrows(IllegalStateException.class, () -> s.mapping().address());
        }
        // Every accessor checks first that the memory is open (before the range, so inside or not makes no
        // difference); none of them reaches the unmapped pages, which would crash the JVM.
        for (Op op : Op.values()) {
            for (long addr : new long[] {0x10000, 0x20000, 0x13FF0, 0x8000_0000_0001_0000L, -8L}) {
                assertThrows(IllegalStateException.class, () -> op.apply(m, GuestAddress.of(addr), op.len(8)),
                        () -> String.format("%s at 0x%x after close", op, addr));
            }
        }
        assertThrows(IllegalStateException.class, () -> m.fill(GuestAddress.of(0x10000), -1, (byte) 0));
        assertThrows(IllegalStateException.class, () -> m.view(GuestAddress.of(0x10000), 0));
        // Answering from the region list touches no memory.
        assertTrue(m.contains(GuestAddress.of(0x10000), 8));
        m.close();
        assertEquals(before, AnonymousMapping.mappedBytes(), "a second close unmaps nothing");
    }

    @Test
    void regionsMustBePageAligned() {
        long before = AnonymousMapping.mappedBytes();
        assertThrows(IllegalArgumentException.class,
                () -> MmapGuestMemory.create(List.of(region(0x10000, 0x1000), region(0x20800, 0x1000))));
        assertThrows(IllegalArgumentException.class,
                () -> MmapGuestMemory.create(List.of(region(0x10000, 0x1000), region(0x20000, 0x1800))));
        assertThrows(IllegalArgumentException.class,
                () -> MmapGuestMemory.create(List.of(region(0x10000, 0x2000), region(0x11000, 0x1000))), "overlap");
        assertEquals(before, AnonymousMapping.mappedBytes(), "a failed create releases what it mapped");
    }
}
