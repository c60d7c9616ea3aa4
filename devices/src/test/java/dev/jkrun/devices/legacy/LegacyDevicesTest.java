package dev.jkrun.devices.legacy;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

class LegacyDevicesTest {
    private static int read(dev.jkrun.devices.bus.BusDevice d, long off) {
        byte[] b = new byte[1];
        d.read(off, b);
        return b[0] & 0xFF;
    }

    private static void write(dev.jkrun.devices.bus.BusDevice d, long off, int v) { d.write(off, new byte[] {(byte) v}); }

    @Test
    void i8042ResetAndStatus() {
        AtomicInteger resets = new AtomicInteger();
        I8042 k = new I8042(resets::incrementAndGet);
        assertEquals(0x10, read(k, 4));
        write(k, 4, 0xFE);
        assertEquals(1, resets.get());
        write(k, 4, 0x60); // write control byte
        write(k, 0, 0x47);
        write(k, 4, 0x20); // read it back
        assertEquals(0x11, read(k, 4), "output buffer full");
        assertEquals(0x47, read(k, 0));
        assertEquals(0x10, read(k, 4));
        write(k, 4, 0xD1);
        write(k, 0, 0x03);
        write(k, 4, 0xD0);
        assertEquals(0x03, read(k, 0));
        assertEquals(1, resets.get());
        k.read(4, new byte[2]); // wrong width: ignored, no throw
    }

    @Test
    void cmosMemorySizes() {
        long below = 3L << 30, above = 5L << 30;
        Cmos c = new Cmos(below, above);
        long low = (below - (16 << 20)) / 65536;
        write(c, 0, 0x34);
        assertEquals(low & 0xFF, read(c, 1));
        write(c, 0, 0x35);
        assertEquals(low >>> 8, read(c, 1));
        long high = above / 65536;
        write(c, 0, 0x5B);
        assertEquals(high & 0xFF, read(c, 1));
        write(c, 0, 0x5C);
        assertEquals((high >>> 8) & 0xFF, read(c, 1));
        write(c, 0, 0x80 | 0x5D); // NMI-disable bit is masked off
        assertEquals(high >>> 16, read(c, 1));
        assertEquals(0x5D, read(c, 0));
        write(c, 0, 0x10);
        assertEquals(0, read(c, 1));
        write(c, 1, 0xAA); // data is read-only
        assertEquals(0, read(c, 1));
    }

    @Test
    void cmosCapsAndSmallMemory() {
        Cmos big = new Cmos(1L << 40, 0);
        write(big, 0, 0x34);
        assertEquals(0xFF, read(big, 1));
        write(big, 0, 0x35);
        assertEquals(0xFF, read(big, 1));
        Cmos small = new Cmos(8 << 20, 0);
        write(small, 0, 0x34);
        assertEquals(0, read(small, 1));
    }

    @Test
    void debugPortSinksBytes() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        DebugPort p = new DebugPort(out::write);
        assertEquals(0x60, read(p, 5));
        for (byte b : "hi\n".getBytes()) {
            write(p, 0, b);
        }
        write(p, 3, 0x80); // DLAB: divisor latch, not a character
        write(p, 0, 0x01);
        write(p, 3, 0x03);
        write(p, 0, '!');
        assertEquals("hi\n!", out.toString());
        assertEquals(0, read(p, 2));
    }
}
