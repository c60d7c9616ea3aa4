package dev.jkrun.arch.aarch64;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/** The blob writer's rules, and the reader refusing blobs that break the format. */
class FdtTest {
    private static byte[] small() {
        return new Fdt().beginNode("").property("a", "x").beginNode("n@1").propertyU32("c", 1, 2).endNode()
                .endNode().finish();
    }

    @Test
    void headerAndBlocks() {
        byte[] b = small();
        ByteBuffer h = ByteBuffer.wrap(b);
        assertEquals(0xD00DFEED, h.getInt(0));
        assertEquals(b.length, h.getInt(4));
        assertEquals(17, h.getInt(20));
        assertEquals(16, h.getInt(24));
        assertEquals(0, h.getInt(8) % 4);
        FdtReader.Node root = FdtReader.read(b);
        assertEquals("x", root.string("a").orElseThrow());
        assertArrayEquals(new int[] {1, 2}, root.at("/n@1").orElseThrow().cells("c").orElseThrow());
    }

    @Test
    void misuseThrows() {
        assertThrows(IllegalStateException.class, () -> new Fdt().property("a"));
        assertThrows(IllegalStateException.class, () -> new Fdt().beginNode("x"));
        assertThrows(IllegalStateException.class, () -> new Fdt().beginNode("").endNode().beginNode(""));
        assertThrows(IllegalStateException.class, () -> new Fdt().beginNode("").finish());
        assertThrows(IllegalStateException.class,
                () -> new Fdt().beginNode("").beginNode("c").endNode().property("late"));
        assertThrows(IllegalStateException.class, () -> new Fdt().beginNode("").property("a\0b"));
    }

    @Test
    void readerRefusesBrokenBlobs() {
        byte[] good = small();
        for (int cut : new int[] {0, 8, 39, 40, good.length - 1}) {
            byte[] b = java.util.Arrays.copyOf(good, cut);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> FdtReader.read(b));
            assertTrue(e.getMessage().startsWith("device tree: "), e.getMessage());
        }
        byte[] badMagic = good.clone();
        badMagic[0] = 0;
        assertThrows(IllegalArgumentException.class, () -> FdtReader.read(badMagic));
        byte[] badStrings = good.clone();
        ByteBuffer.wrap(badStrings).putInt(32, 0x7FFF_FFFF); // size_dt_strings
        assertThrows(IllegalArgumentException.class, () -> FdtReader.read(badStrings));
        byte[] badToken = good.clone();
        int structOff = ByteBuffer.wrap(good).getInt(8);
        ByteBuffer.wrap(badToken).putInt(structOff, 7);
        assertThrows(IllegalArgumentException.class, () -> FdtReader.read(badToken));
    }
}
