package dev.jkrun.arch.x86_64;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.HeapGuestMemory;
import org.junit.jupiter.api.Test;

class PageTablesTest {
    @Test
    void identityMapsOneGibWithTwoMibPages() {
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x200000);
        mem.fill(GuestAddress.of(0x9000), 0x3000, (byte) 0xEE);
        PageTables.write(mem);
        assertEquals(0xA003L, mem.readLong(GuestAddress.of(0x9000)));
        assertEquals(0xB003L, mem.readLong(GuestAddress.of(0xA000)));
        for (int i = 0; i < 512; i++) {
            assertEquals(((long) i << 21) | 0x83, mem.readLong(GuestAddress.of(0xB000 + 8L * i)));
        }
        assertEquals(0, mem.readLong(GuestAddress.of(0x9008)), "rest of PML4 cleared");
        assertEquals(0, mem.readLong(GuestAddress.of(0xAFF8)), "rest of PDPT cleared");
    }

    @Test
    void fourGibForAKernelEnteredHigh() {
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x200000);
        PageTables.write(mem, 4);
        for (int g = 0; g < 4; g++) {
            assertEquals(0xB003L + 0x1000L * g, mem.readLong(GuestAddress.of(0xA000 + 8L * g)));
            assertEquals(((long) g << 30) | 0x83, mem.readLong(GuestAddress.of(0xB000 + 0x1000L * g)));
        }
        assertEquals(0, mem.readLong(GuestAddress.of(0xA020)), "PDPT[4] not present");
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> PageTables.write(mem, 5));
    }
}
