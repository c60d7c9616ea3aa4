package dev.jkrun.arch.x86_64;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.HeapGuestMemory;
import org.junit.jupiter.api.Test;

class ZeroPageTest {
    static final long GIB = 1L << 30;
    static final long ZP = Layout.ZERO_PAGE;

    static GuestAddress at(long off) { return GuestAddress.of(ZP + off); }

    @Test
    void fieldsAtTheirOffsets() {
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x200000);
        mem.fill(GuestAddress.of(ZP), 0x1000, (byte) 0x5A); // stale bytes must be cleared
        ZeroPage.write(mem, RamLayout.of(8 * GIB, 0), Layout.CMDLINE, 42, 0, 0);

        assertEquals((short) 0xAA55, mem.readShort(at(0x1FE)));
        assertEquals("HdrS", new String(mem.readBytes(at(0x202), 4)));
        assertEquals((byte) 0xFF, mem.readByte(at(0x210)));
        assertEquals(0x20000, mem.readInt(at(0x228)));
        assertEquals(0x1000000, mem.readInt(at(0x230)));
        assertEquals(42, mem.readInt(at(0x238)));
        assertEquals(0, mem.readInt(at(0x218)));
        assertEquals(0, mem.readInt(at(0x21C)));
        assertEquals(0, mem.readShort(at(0x206)), "version stays 0");
        assertEquals(0, mem.readByte(at(0x1EF)), "sentinel must be 0 or the kernel wipes the header");

        assertEquals(3, mem.readByte(at(0x1E8)));
        long[][] expected = {{0, 0x9FC00, 1}, {0x100000, 0xD000_0000L - 0x100000, 1}, {4 * GIB, 8 * GIB - 0xD000_0000L, 1}};
        for (int i = 0; i < 3; i++) {
            long e = 0x2D0 + 20L * i;
            assertEquals(expected[i][0], mem.readLong(at(e)));
            assertEquals(expected[i][1], mem.readLong(at(e + 8)));
            assertEquals(expected[i][2], mem.readInt(at(e + 16)));
        }
        assertEquals(0, mem.readLong(at(0x2D0 + 60)), "nothing after the last entry");
    }

    @Test
    void initrdFields() {
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x200000);
        ZeroPage.write(mem, RamLayout.of(256L << 20, 0), Layout.CMDLINE, 1, 0x0F00_0000L, 0x12345);
        assertEquals(0x0F00_0000, mem.readInt(at(0x218)));
        assertEquals(0x12345, mem.readInt(at(0x21C)));
        assertEquals(0, mem.readInt(at(0x0C0)));
    }

    @Test
    void rejectsBadCmdlineSize() {
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x200000);
        RamLayout l = RamLayout.of(256L << 20, 0);
        assertThrows(IllegalArgumentException.class, () -> ZeroPage.write(mem, l, Layout.CMDLINE, 0, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> ZeroPage.write(mem, l, Layout.CMDLINE, 0x10001, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> ZeroPage.write(mem, l, 1L << 32, 1, 0, 0));
    }
}
