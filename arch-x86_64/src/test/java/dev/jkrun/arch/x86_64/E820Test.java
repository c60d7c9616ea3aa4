package dev.jkrun.arch.x86_64;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.jkrun.arch.x86_64.E820.Entry;
import java.util.List;
import org.junit.jupiter.api.Test;

class E820Test {
    static final long MIB = 1L << 20;
    static final long GIB = 1L << 30;

    @Test
    void smallRam() {
        assertEquals(List.of(new Entry(0, 0x9FC00, E820.RAM), new Entry(0x100000, 128 * MIB - 0x100000, E820.RAM)),
                E820.entries(RamLayout.of(128 * MIB, 0)));
    }

    @Test
    void ramEndingExactlyAtTheHole() {
        assertEquals(List.of(new Entry(0, 0x9FC00, E820.RAM), new Entry(0x100000, 0xD000_0000L - 0x100000, E820.RAM)),
                E820.entries(RamLayout.of(0xD000_0000L, 0)));
    }

    @Test
    void eightGibSplitAroundTheHole() {
        assertEquals(List.of(
                new Entry(0, 0x9FC00, E820.RAM),
                new Entry(0x100000, 0xD000_0000L - 0x100000, E820.RAM),
                new Entry(4 * GIB, 8 * GIB - 0xD000_0000L, E820.RAM)),
                E820.entries(RamLayout.of(8 * GIB, 0)));
    }

    @Test
    void tinyRamHasOnlyBaseMemory() {
        assertEquals(List.of(new Entry(0, 0x80000, E820.RAM)), E820.entries(RamLayout.of(0x80000, 0)));
    }
}
