package dev.jkrun.arch.x86_64;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.HeapGuestMemory;
import org.junit.jupiter.api.Test;

class CmdlineTest {
    @Test
    void writesNulTerminated() {
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x200000);
        mem.fill(GuestAddress.of(Layout.CMDLINE), 64, (byte) 'x');
        Cmdline.write(mem, "console=hvc0 quiet");
        assertArrayEquals("console=hvc0 quiet\0".getBytes(), mem.readBytes(GuestAddress.of(Layout.CMDLINE), 19));
        assertEquals(19, Cmdline.validate("console=hvc0 quiet"));
        assertEquals(1, Cmdline.validate(""));
    }

    @Test
    void rejectsNonPrintable() {
        for (String bad : new String[] {"a\nb", "tab\there", "nul\0", "caf\u00e9", "del\u007f"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Cmdline.write(HeapGuestMemory.of(0, 0x200000), bad));
            assertTrue(e.getMessage().contains("cmdline"), e.getMessage());
        }
    }

    @Test
    void lengthLimitCountsTheNul() {
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x200000);
        Cmdline.write(mem, "a".repeat(Layout.CMDLINE_MAX - 1));
        assertEquals(0, mem.readByte(GuestAddress.of(Layout.CMDLINE + Layout.CMDLINE_MAX - 1)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Cmdline.write(mem, "a".repeat(Layout.CMDLINE_MAX)));
        assertTrue(e.getMessage().contains("cmdline"));
    }
}
