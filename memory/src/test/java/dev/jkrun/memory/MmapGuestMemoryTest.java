package dev.jkrun.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.libc.AnonymousMapping;
import dev.jkrun.memory.GuestMemoryTest.Op;
import java.nio.ByteBuffer;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Off-heap guest memory with each accessor (FFM skipped before JDK 22): the x86 layout around the 32-bit MMIO hole,
 * use after retire and after close.
 */
class MmapGuestMemoryTest {
    /** RAM below the hole, [1 MiB, 0xD000_0000), and above it, [4 GiB, 4 GiB + 1 MiB); mapped lazily (MAP_NORESERVE). */
    static final long LOW = 0x10_0000, HOLE = 0xD000_0000L, HIGH = 0x1_0000_0000L, HIGH_SIZE = 0x10_0000;

    private static MemoryRegion region(long start, long size) { return new MemoryRegion(GuestAddress.of(start), size); }

    private static void assertRefused(GuestMemory m, long addr, long len) {
        assertFalse(m.contains(GuestAddress.of(addr), len), () -> String.format("contains(0x%x, 0x%x)", addr, len));
        assertThrows(GuestMemoryException.class, () -> m.fill(GuestAddress.of(addr), len, (byte) 0x5A),
                () -> String.format("fill(0x%x, 0x%x)", addr, len));
    }

    private static MmapGuestMemory create(GuestMemoryImpl impl, MemoryRegion... regions) {
        MmapGuestMemory m = MmapGuestMemory.create(List.of(regions), GuestMemoryTest.available(impl));
        assertEquals(impl, m.impl());
        return m;
    }

    @ParameterizedTest
    @EnumSource(GuestMemoryImpl.class)
    void accessesAcrossTheMmioHoleAreRefused(GuestMemoryImpl impl) {
        try (MmapGuestMemory m = create(impl, region(LOW, HOLE - LOW), region(HIGH, HIGH_SIZE))) {
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

    @ParameterizedTest
    @EnumSource(GuestMemoryImpl.class)
    void everyAccessorThrowsAfterClose(GuestMemoryImpl impl) {
        long before = AnonymousMapping.mappedBytes();
        MmapGuestMemory m = create(impl, region(0x10000, 0x4000), region(0x20000, 0x1000));
        assertEquals(before + 0x5000, AnonymousMapping.mappedBytes());
        m.writeLong(GuestAddress.of(0x10000), 42);
        m.close();
        assertEquals(before, AnonymousMapping.mappedBytes(), "unmapped");
        for (MmapGuestMemory.Slot s : m.slots()) {
            assertThrows(IllegalStateException.class, () -> s.mapping().address());
        }
        assertEveryAccessRefused(m, "after close");
        m.close();
        assertEquals(before, AnonymousMapping.mappedBytes(), "a second close unmaps nothing");
        m.retire();
        assertEveryAccessRefused(m, "after retire of closed memory");
    }

    /**
     * Every accessor checks first that the memory is open (before the range, so inside or not makes no
     * difference); none of them reaches discarded or unmapped pages.
     */
    private static void assertEveryAccessRefused(MmapGuestMemory m, String when) {
        for (Op op : Op.values()) {
            for (long addr : new long[] {0x10000, 0x20000, 0x13FF0, 0x8000_0000_0001_0000L, -8L}) {
                assertThrows(IllegalStateException.class, () -> op.apply(m, GuestAddress.of(addr), op.len(8)),
                        () -> String.format("%s at 0x%x %s", op, addr, when));
            }
        }
        assertThrows(IllegalStateException.class, () -> m.fill(GuestAddress.of(0x10000), -1, (byte) 0), when);
        assertThrows(IllegalStateException.class, () -> m.view(GuestAddress.of(0x10000), 0), when);
        // Answering from the region list touches no memory.
        assertTrue(m.contains(GuestAddress.of(0x10000), 8));
    }

    /**
     * Retired memory (a device thread outlived the VM) refuses every new access like closed memory, but stays mapped
     * with its pages given back: a copy already in flight through a view lands on zeroed pages instead of faulting.
     * Close unmaps it later.
     */
    @ParameterizedTest
    @EnumSource(GuestMemoryImpl.class)
    void retiredMemoryRefusesEveryAccessAndStaysMapped(GuestMemoryImpl impl) {
        long before = AnonymousMapping.mappedBytes();
        MmapGuestMemory m = create(impl, region(0x10000, 0x4000), region(0x20000, 0x1000));
        m.writeLong(GuestAddress.of(0x10000), 42);
        ByteBuffer inFlight = m.view(GuestAddress.of(0x10000), 0x1000);
        m.retire();
        assertEquals(before + 0x5000, AnonymousMapping.mappedBytes(), "still mapped");
        for (MmapGuestMemory.Slot s : m.slots()) {
            assertTrue(s.mapping().address() != 0);
        }
        assertEveryAccessRefused(m, "after retire");
        assertEquals(0, inFlight.getLong(0), "pages discarded");
        inFlight.putLong(8, 7); // no fault: the range is still mapped
        m.retire();
        assertEquals(before + 0x5000, AnonymousMapping.mappedBytes(), "a second retire changes nothing");
        m.close();
        assertEquals(before, AnonymousMapping.mappedBytes(), "close unmaps retired memory");
        assertEveryAccessRefused(m, "after retire and close");
        if (impl == GuestMemoryImpl.FFM) {
            // Only FFM may be tried here: an Unsafe view of unmapped memory crashes the JVM.
            assertThrows(IllegalStateException.class, () -> inFlight.getLong(0), "an FFM view is dead after close");
        }
    }

    @ParameterizedTest
    @EnumSource(GuestMemoryImpl.class)
    void regionsMustBePageAligned(GuestMemoryImpl impl) {
        GuestMemoryTest.available(impl);
        long before = AnonymousMapping.mappedBytes();
        assertThrows(IllegalArgumentException.class, () -> create(impl, region(0x10000, 0x1000), region(0x20800, 0x1000)));
        assertThrows(IllegalArgumentException.class, () -> create(impl, region(0x10000, 0x1000), region(0x20000, 0x1800)));
        assertThrows(IllegalArgumentException.class,
                () -> create(impl, region(0x10000, 0x2000), region(0x11000, 0x1000)), "overlap");
        assertEquals(before, AnonymousMapping.mappedBytes(), "a failed create releases what it mapped");
    }

    /** Resident bytes of [addr, addr+len) of this process: mincore would need a native call here; smaps does not. */
    static long resident(long addr, long len) throws java.io.IOException {
        long end = addr + len, rss = 0;
        boolean in = false;
        for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/smaps"))) {
            int dash = line.indexOf('-'), space = line.indexOf(' ');
            if (dash > 0 && space > dash && line.substring(0, dash).chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
                long a = Long.parseUnsignedLong(line.substring(0, dash), 16), b = Long.parseUnsignedLong(line.substring(dash + 1, space), 16);
                in = Long.compareUnsigned(a, end) < 0 && Long.compareUnsigned(b, addr) > 0;
            } else if (in && line.startsWith("Rss:")) {
                rss += Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        }
        return rss;
    }

    /**
     * discard (the balloon's): whole pages inside one region read as zeros afterwards and leave the host's RSS, partial
     * pages at the ends are kept, ranges outside one region throw without discarding anything, and once closed the
     * mapping refuses.
     */
    @ParameterizedTest
    @EnumSource(GuestMemoryImpl.class)
    void discardGivesWholePagesBack(GuestMemoryImpl impl) throws Exception {
        long mib = 1 << 20;
        try (MmapGuestMemory m = create(impl, region(0, 16 * mib), region(32 * mib, 16 * mib))) {
            AnonymousMapping low = m.slots().get(0).mapping();
            m.fill(GuestAddress.of(0), 16 * mib, (byte) 0x5A);
            long before = resident(low.address(), low.size());
            assertTrue(before >= 15 * mib, "resident after filling 16 MiB: " + before);
            assertEquals(8 * mib, m.discard(GuestAddress.of(4 * mib), 8 * mib));
            long after = resident(low.address(), low.size());
            assertTrue(before - after >= 7 * mib, "resident " + before + " -> " + after);
            assertEquals(0, m.readByte(GuestAddress.of(4 * mib)));
            assertEquals(0, m.readLong(GuestAddress.of(12 * mib - 8)));
            assertEquals(0x5A, m.readByte(GuestAddress.of(4 * mib - 1)));
            assertEquals(0x5A, m.readByte(GuestAddress.of(12 * mib)));
            // partial pages: [13 MiB + 1, 13 MiB + 3 pages - 1) holds one whole page
            assertEquals(4096, m.discard(GuestAddress.of(13 * mib + 1), 3 * 4096 - 2));
            assertEquals(0x5A, m.readByte(GuestAddress.of(13 * mib + 4095)));
            assertEquals(0, m.readByte(GuestAddress.of(13 * mib + 4096)));
            assertEquals(0x5A, m.readByte(GuestAddress.of(13 * mib + 8192)));
            assertEquals(0, m.discard(GuestAddress.of(14 * mib + 1), 4096), "no whole page");
            assertEquals(0, m.discard(GuestAddress.of(14 * mib), 0));
            // outside one region: refused, nothing discarded
            for (long[] bad : new long[][] {{16 * mib - 4096, 2 * 4096}, {16 * mib, 4096}, {32 * mib - 4096, 2 * 4096},
                    {48 * mib, 4096}, {-4096, 2 * 4096}, {15 * mib, -1}, {0, Long.MAX_VALUE}}) {
                assertThrows(GuestMemoryException.class, () -> m.discard(GuestAddress.of(bad[0]), bad[1]),
                        () -> String.format("discard(0x%x, 0x%x)", bad[0], bad[1]));
            }
            assertEquals(0x5A, m.readByte(GuestAddress.of(16 * mib - 1)));
            assertEquals(16 * mib, m.discard(GuestAddress.of(32 * mib), 16 * mib), "the high region");
            m.close();
            assertFalse(low.discard(0, 4096), "nothing once unmapped");
        }
    }

    @ParameterizedTest
    @EnumSource(GuestMemoryImpl.class)
    void heapDiscardZeroesWholePages(GuestMemoryImpl impl) {
        GuestMemory m = HeapGuestMemory.of(GuestMemoryTest.available(impl), region(0, 64 * 1024));
        m.fill(GuestAddress.of(0), 64 * 1024, (byte) 1);
        assertEquals(8192, m.discard(GuestAddress.of(100), 3 * 4096));
        assertEquals(1, m.readByte(GuestAddress.of(4095)));
        assertEquals(0, m.readByte(GuestAddress.of(4096)));
        assertEquals(0, m.readByte(GuestAddress.of(3 * 4096 - 1)));
        assertEquals(1, m.readByte(GuestAddress.of(3 * 4096)));
        assertThrows(GuestMemoryException.class, () -> m.discard(GuestAddress.of(60 * 1024), 8192));
    }

    private static byte[] preadMemfd(dev.jkrun.libc.FileDescriptor fd, long offset, int len) throws java.io.IOException {
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(java.nio.file.Path.of("/proc/self/fd/" + fd.raw()))) {
            ByteBuffer b = ByteBuffer.allocate(len);
            while (b.hasRemaining() && ch.read(b, offset + b.position()) > 0) { }
            return b.array();
        }
    }

    @ParameterizedTest
    @EnumSource(GuestMemoryImpl.class)
    void memfdBackedRamIsTheMemfdsPagesRegionAfterRegion(GuestMemoryImpl impl) throws Exception {
        dev.jkrun.libc.FileDescriptor fd;
        try (MmapGuestMemory m = MmapGuestMemory.createOnMemfd(List.of(region(0, 2 * LOW), region(HIGH, HIGH_SIZE)),
                GuestMemoryTest.available(impl))) {
            fd = m.memfd().orElseThrow();
            assertEquals("/memfd:jkrun-guest-ram (deleted)",
                    java.nio.file.Files.readSymbolicLink(java.nio.file.Path.of("/proc/self/fd/" + fd.raw())).toString());
            byte[] low = "below the hole".getBytes(), high = "above 4 GiB".getBytes();
            m.write(GuestAddress.of(0x1234), low);
            m.write(GuestAddress.of(HIGH + 0x2000), high);
            assertEquals(2 * LOW + 0x2000, m.memfdOffset(GuestAddress.of(HIGH + 0x2000)));
            assertEquals(java.util.Arrays.toString(low), java.util.Arrays.toString(preadMemfd(fd, 0x1234, low.length)));
            assertEquals(java.util.Arrays.toString(high), java.util.Arrays.toString(preadMemfd(fd, 2 * LOW + 0x2000, high.length)));
            // a discarded page is gone from the memfd too (MADV_REMOVE), not only from this mapping
            assertEquals(0x1000, m.discard(GuestAddress.of(HIGH + 0x2000), 0x1000));
            assertEquals(java.util.Arrays.toString(new byte[high.length]),
                    java.util.Arrays.toString(preadMemfd(fd, 2 * LOW + 0x2000, high.length)));
            assertEquals(0, m.readByte(GuestAddress.of(HIGH + 0x2000)));
            assertThrows(GuestMemoryException.class, () -> m.memfdOffset(GuestAddress.of(HOLE)));
        }
        assertFalse(fd.isOpen(), "close() closes the memfd");
    }

    @ParameterizedTest
    @EnumSource(GuestMemoryImpl.class)
    void anonymousRamHasNoMemfd(GuestMemoryImpl impl) {
        try (MmapGuestMemory m = create(impl, region(0, LOW))) {
            assertTrue(m.memfd().isEmpty());
        }
    }
}
