package dev.jkrun.arch.x86_64;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.HeapGuestMemory;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import java.util.Set;

class MpTableTest {
    static final long BASE = 0x9FC00;

    static int sum(HeapGuestMemory mem, long at, int len) {
        int s = 0;
        for (byte b : mem.readBytes(GuestAddress.of(at), len)) {
            s += b & 0xFF;
        }
        return s & 0xFF;
    }

    static int u8(HeapGuestMemory mem, long at) { return mem.readByte(GuestAddress.of(at)) & 0xFF; }

    static String str(HeapGuestMemory mem, long at, int len) { return new String(mem.readBytes(GuestAddress.of(at), len)); }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 4, 16, 254})
    void layoutAndChecksums(int n) {
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x200000);
        MpTable.write(mem, n);
        assertEquals(284 + 20 * n, MpTable.size(n));
        walk(mem, n, Set.of());
    }

    /** Shared virtio lines are level-triggered, active high; every other pin conforms to the ISA bus. */
    @Test
    void sharedLinesAreLevelTriggered() {
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x200000);
        Set<Integer> level = Set.of(5, 9, 16, 23);
        MpTable.write(mem, 2, level);
        walk(mem, 2, level);
        assertThrows(IllegalArgumentException.class, () -> MpTable.write(mem, 2, Set.of(24)));
    }

    /** Checks the whole table as Linux's smp_read_mpc reads it; {@code level}: the pins that must be level/high. */
    private static void walk(HeapGuestMemory mem, int n, Set<Integer> level) {

        // Floating pointer.
        assertEquals("_MP_", str(mem, BASE, 4));
        assertEquals(0x9FC10, mem.readInt(GuestAddress.of(BASE + 4)));
        assertEquals(1, u8(mem, BASE + 8));
        assertEquals(4, u8(mem, BASE + 9));
        assertEquals(0, sum(mem, BASE, 16));

        // Config header.
        long h = 0x9FC10;
        int length = mem.readShort(GuestAddress.of(h + 4)) & 0xFFFF;
        assertEquals("PCMP", str(mem, h, 4));
        assertEquals(268 + 20 * n, length);
        assertEquals(4, u8(mem, h + 6));
        assertEquals("FC      ", str(mem, h + 8, 8));
        assertEquals("000000000000", str(mem, h + 16, 12));
        assertEquals(n + 28, mem.readShort(GuestAddress.of(h + 34)));
        assertEquals(0xFEE0_0000, mem.readInt(GuestAddress.of(h + 36)));
        assertEquals(0, sum(mem, h, length));

        // Walk the entries as Linux's smp_read_mpc does, by type.
        int[] counts = new int[5];
        long p = h + 44;
        while (p < h + length) {
            int type = u8(mem, p);
            counts[type]++;
            switch (type) {
                case 0 -> {
                    int cpu = counts[0] - 1;
                    assertEquals(cpu, u8(mem, p + 1), "APIC id");
                    assertEquals(0x14, u8(mem, p + 2));
                    assertEquals(cpu == 0 ? 3 : 1, u8(mem, p + 3), "enabled, BSP on cpu 0");
                    assertEquals(0x600, mem.readInt(GuestAddress.of(p + 4)));
                    assertEquals(0x201, mem.readInt(GuestAddress.of(p + 8)));
                    p += 20;
                }
                case 1 -> {
                    assertEquals("ISA   ", str(mem, p + 2, 6));
                    p += 8;
                }
                case 2 -> {
                    assertEquals(n + 1, u8(mem, p + 1), "IOAPIC id");
                    assertEquals(1, u8(mem, p + 3));
                    assertEquals(0xFEC0_0000, mem.readInt(GuestAddress.of(p + 4)));
                    p += 8;
                }
                case 3 -> {
                    int irq = counts[3] - 1;
                    assertEquals(0, u8(mem, p + 1));
                    int flags = mem.readShort(GuestAddress.of(p + 2)) & 0xFFFF;
                    assertEquals(level.contains(irq) ? 0x0D : 0, flags, "irqflag of pin " + irq);
                    assertEquals(0, u8(mem, p + 4), "source bus: ISA");
                    assertEquals(irq, u8(mem, p + 5));
                    assertEquals(n + 1, u8(mem, p + 6));
                    assertEquals(irq, u8(mem, p + 7));
                    p += 8;
                }
                case 4 -> {
                    boolean extint = counts[4] == 1;
                    assertEquals(extint ? 3 : 1, u8(mem, p + 1));
                    assertEquals(extint ? 0 : 0xFF, u8(mem, p + 6));
                    assertEquals(extint ? 0 : 1, u8(mem, p + 7));
                    p += 8;
                }
                default -> throw new AssertionError("bad entry type " + type);
            }
        }
        assertEquals(h + length, p);
        assertEquals(n, counts[0]);
        assertEquals(1, counts[1]);
        assertEquals(1, counts[2]);
        assertEquals(24, counts[3]);
        assertEquals(2, counts[4]);
    }

    @Test
    void rejectsBadVcpuCounts() {
        for (int bad : new int[] {0, -1, 255}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> MpTable.write(HeapGuestMemory.of(0, 0x200000), bad));
            assertTrue(e.getMessage().contains("vcpus"));
            assertThrows(IllegalArgumentException.class, () -> MpTable.size(bad));
        }
    }
}
