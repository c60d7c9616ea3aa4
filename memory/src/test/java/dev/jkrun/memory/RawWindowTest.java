package dev.jkrun.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** RawWindow's one compare (bound and liveness) and the registry that shuts windows, without touching memory. */
class RawWindowTest {
    /** A window that only reports the address it would access. */
    private static final class Probe extends RawWindow {
        Probe(long address, long length) { super(address, GuestAddress.of(0x4000), length); }

        long address(long offset, int n) { return at(offset, n); }

        @Override
        public short readShort(long offset) { throw new UnsupportedOperationException(); }

        @Override
        public long readLong(long offset) { throw new UnsupportedOperationException(); }

        @Override
        public void writeShort(long offset, short value) { throw new UnsupportedOperationException(); }

        @Override
        public void writeLong(long offset, long value) { throw new UnsupportedOperationException(); }

        @Override
        public short readShortAcquire(long offset) { throw new UnsupportedOperationException(); }

        @Override
        public void writeShortRelease(long offset, short value) { throw new UnsupportedOperationException(); }
    }

    @Test
    void everyAccessLiesInsideTheWindow() {
        Probe w = new Probe(0x7f00_0000_0000L, 16);
        assertEquals(0x7f00_0000_0000L, w.address(0, 8));
        assertEquals(0x7f00_0000_0008L, w.address(8, 8));
        assertEquals(0x7f00_0000_000eL, w.address(14, 2));
        for (long off : new long[] {-1, 9, 16, Long.MAX_VALUE, Long.MIN_VALUE, -8}) {
            assertThrows(GuestMemoryException.class, () -> w.address(off, 8), "offset " + off);
        }
        assertThrows(GuestMemoryException.class, () -> w.address(15, 2));
        Probe small = new Probe(0x1000, 4);
        assertThrows(GuestMemoryException.class, () -> small.address(0, 8), "shorter than the access");
        Probe empty = new Probe(0x1000, 0);
        assertThrows(GuestMemoryException.class, () -> empty.address(0, 2));
        assertEquals(GuestAddress.of(0x4000), w.start());
        assertEquals(16, w.length());
    }

    @Test
    void shuttingRefusesEveryOffsetAndWindowsMadeLaterAreBornShut() {
        RawWindow.Registry r = new RawWindow.Registry();
        Probe before = (Probe) r.add(new Probe(0x1000, 4096));
        assertEquals(0x1000, before.address(0, 8));
        r.shutAll();
        for (long off : new long[] {0, 8, 4088, -1, 4096}) {
            assertThrows(IllegalStateException.class, () -> before.address(off, 8), "offset " + off);
        }
        Probe after = (Probe) r.add(new Probe(0x2000, 4096));
        assertThrows(IllegalStateException.class, () -> after.address(0, 2), "made while the memory closes");
        assertEquals(4096, before.length(), "a shut window still says what it was");
        r.shutAll(); // idempotent
        assertThrows(IllegalStateException.class, () -> before.address(0, 2));
    }
}
