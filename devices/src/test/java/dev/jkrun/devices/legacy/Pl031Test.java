package dev.jkrun.devices.legacy;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The PL031: the host's seconds, a guest-loaded offset, PrimeCell ids, and odd accesses ignored. */
class Pl031Test {
    private static int read(Pl031 rtc, long at) {
        byte[] b = new byte[4];
        rtc.read(at, b);
        return ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getInt();
    }

    private static void write(Pl031 rtc, long at, int v) {
        rtc.write(at, ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v).array());
    }

    @Test
    void countsHostSecondsAndKeepsTheGuestsOffset() {
        AtomicLong now = new AtomicLong(1_700_000_000L);
        Pl031 rtc = new Pl031(now::get);
        assertEquals(1_700_000_000, read(rtc, Pl031.DR));
        assertEquals(1, read(rtc, Pl031.CR));
        write(rtc, Pl031.LR, 1_800_000_000);
        now.addAndGet(5);
        assertEquals(1_800_000_005, read(rtc, Pl031.DR));
        write(rtc, Pl031.MR, 42);
        assertEquals(42, read(rtc, Pl031.MR));
    }

    @Test
    void primeCellIdsAndOddAccesses() {
        Pl031 rtc = new Pl031(() -> 0);
        assertEquals(0x31, read(rtc, 0xFE0));
        assertEquals(0x10, read(rtc, 0xFE4));
        assertEquals(0xB1, read(rtc, 0xFFC));
        assertEquals(0, read(rtc, 0xFFE)); // unaligned
        assertEquals(0, read(rtc, Long.MAX_VALUE));
        byte[] one = {(byte) 0xAA};
        rtc.read(Pl031.DR, one);
        assertEquals((byte) 0xAA, one[0], "a byte read leaves the bus's fill");
        rtc.write(-1, new byte[4]);
        rtc.write(Pl031.LR, new byte[2]);
        assertEquals(0, read(rtc, Pl031.DR));
    }
}
