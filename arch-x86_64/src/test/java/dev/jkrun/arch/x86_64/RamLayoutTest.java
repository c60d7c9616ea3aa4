package dev.jkrun.arch.x86_64;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.MemoryRegion;
import java.util.List;
import org.junit.jupiter.api.Test;

class RamLayoutTest {
    static final long MIB = 1L << 20;
    static final long GIB = 1L << 30;

    static MemoryRegion region(long start, long size) { return new MemoryRegion(GuestAddress.of(start), size); }

    @Test
    void smallRamWithoutKernelIsOneRegion() {
        RamLayout l = RamLayout.of(128 * MIB, 0);
        assertEquals(List.of(region(0, 128 * MIB)), l.regions());
        assertEquals(128 * MIB, l.lastAddress());
        assertFalse(l.hasHighRam());
    }

    @Test
    void kernelExtendsRamAsLibkrunDoes() {
        // 16 MiB + K + S: the kernel ends at 16 MiB + K.
        long kernelEnd = Layout.KERNEL_START + 0x2A0_0000;
        RamLayout l = RamLayout.of(512 * MIB, kernelEnd);
        assertEquals(List.of(region(0, kernelEnd + 512 * MIB)), l.regions());
        assertEquals(kernelEnd + 512 * MIB, l.lastAddress());
    }

    @Test
    void roundsUpToPage() {
        RamLayout l = RamLayout.of(MIB + 1, 0);
        assertEquals(MIB + 0x1000, l.lastAddress());
        assertEquals(0, RamLayout.of(MIB, Layout.KERNEL_START + 0x123).lastAddress() % 0x1000);
    }

    @Test
    void exactlyUpToTheHoleIsOneRegion() {
        RamLayout l = RamLayout.of(Layout.MMIO_START, 0);
        assertEquals(List.of(region(0, 0xD000_0000L)), l.regions());
        assertEquals(0xD000_0000L, l.lastAddress());
        assertFalse(l.hasHighRam());
    }

    @Test
    void eightGibSplitsAroundTheHole() {
        RamLayout l = RamLayout.of(8 * GIB, 0);
        assertEquals(List.of(region(0, 0xD000_0000L), region(4 * GIB, 8 * GIB - 0xD000_0000L)), l.regions());
        assertEquals(4 * GIB + 8 * GIB - 0xD000_0000L, l.lastAddress());
        assertTrue(l.hasHighRam());
        assertEquals(8 * GIB, l.size());
    }

    @Test
    void rejectsBadSizes() {
        for (long bad : new long[] {0, -1, (1L << 40) + 1, Long.MAX_VALUE}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RamLayout.of(bad, 0));
            assertTrue(e.getMessage().contains("memory"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> RamLayout.of(MIB, -1));
    }

    @Test
    void constructorRejectsRamInTheHole() {
        assertThrows(IllegalArgumentException.class,
                () -> new RamLayout(List.of(region(0, 0xE000_0000L)), 0xE000_0000L));
        assertThrows(IllegalArgumentException.class, () -> new RamLayout(List.of(region(0, MIB)), 2 * MIB));
    }

    @Test
    void initrdGoesToTheTopOfRamPageAligned() {
        RamLayout l = RamLayout.of(128 * MIB, 0);
        assertEquals(java.util.OptionalLong.of(128 * MIB - 0x2000), l.initrdAddress(0x1001, 0));
        assertEquals(java.util.OptionalLong.of(128 * MIB - 0x1000), l.initrdAddress(0x1000, 0));
        assertEquals(java.util.OptionalLong.of(0), l.initrdAddress(128 * MIB, 0));
    }

    @Test
    void initrdNeverOverlapsTheKernelNorLeavesRam() {
        RamLayout l = RamLayout.of(128 * MIB, 0);
        assertTrue(l.initrdAddress(128 * MIB + 1, 0).isEmpty());
        assertTrue(l.initrdAddress(100 * MIB, 30 * MIB).isEmpty());
        assertEquals(java.util.OptionalLong.of(28 * MIB), l.initrdAddress(100 * MIB, 28 * MIB));
        assertTrue(l.initrdAddress(0, 0).isEmpty());
        assertTrue(l.initrdAddress(-1, 0).isEmpty());
        assertTrue(l.initrdAddress(Long.MAX_VALUE, 0).isEmpty());
    }

    @Test
    void initrdAboveFourGibWhenItFitsThereElseBelowTheHole() {
        RamLayout l = RamLayout.of(Layout.MMIO_START + 64 * MIB, 0);  // 64 MiB above 4 GiB
        assertEquals(java.util.OptionalLong.of(Layout.MMIO_GAP_END + 32 * MIB), l.initrdAddress(32 * MIB, 0));
        // 65 MiB does not fit in the 64 MiB above 4 GiB: it goes below the hole, whole
        assertEquals(java.util.OptionalLong.of(Layout.MMIO_START - 65 * MIB), l.initrdAddress(65 * MIB, 0));
    }
}
