package dev.jkrun.loader;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.HeapGuestMemory;
import dev.jkrun.memory.MemoryRegion;
import org.junit.jupiter.api.Test;

class GuestWritesTest {
    @Test
    void writesAcrossAdjacentRegions() {
        HeapGuestMemory mem = HeapGuestMemory.of(new MemoryRegion(GuestAddress.of(0x1000), 0x1000),
                new MemoryRegion(GuestAddress.of(0x2000), 0x1000));
        byte[] data = new byte[0x200];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) (i + 1);
        }
        GuestWrites.checkFits(mem, 0x1f00, 0x200, () -> "t");
        GuestWrites.write(mem, 0x1f00, data, 0, data.length);
        assertArrayEquals(java.util.Arrays.copyOf(data, 0x100), mem.readBytes(GuestAddress.of(0x1f00), 0x100));
        assertArrayEquals(java.util.Arrays.copyOfRange(data, 0x100, 0x200), mem.readBytes(GuestAddress.of(0x2000), 0x100));
        GuestWrites.zero(mem, 0x1f80, 0x100);
        assertArrayEquals(new byte[0x80], mem.readBytes(GuestAddress.of(0x1f80), 0x80));
        assertArrayEquals(new byte[0x80], mem.readBytes(GuestAddress.of(0x2000), 0x80));
        assertEquals((byte) 0x81, mem.readByte(GuestAddress.of(0x2080)));
    }

    @Test
    void aHoleDoesNotFit() {
        HeapGuestMemory mem = HeapGuestMemory.of(new MemoryRegion(GuestAddress.of(0x1000), 0x1000),
                new MemoryRegion(GuestAddress.of(0x3000), 0x1000));
        assertEquals(KernelFormatException.Reason.DOES_NOT_FIT,
                assertThrows(KernelFormatException.class, () -> GuestWrites.checkFits(mem, 0x1f00, 0x200, () -> "t")).reason());
        assertEquals(KernelFormatException.Reason.OVERFLOW,
                assertThrows(KernelFormatException.class, () -> GuestWrites.checkFits(mem, -16, 0x200, () -> "t")).reason());
    }
}
