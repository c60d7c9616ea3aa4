package dev.jkrun.memory;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jkrun.memory.GuestMemoryException.Reason;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every GuestMemory accessor, on heap and mmap memory, with each accessor (Unsafe; FFM where the JDK has it), at
 * the edges of RAM: an access succeeds exactly when
 * {@code [addr, addr+len)} lies inside one region (as unsigned 64-bit numbers), and a refused access throws
 * GuestMemoryException before touching any byte (checked through a canary pattern over all of RAM).
 */
class GuestMemoryTest {
    /** Two regions with a hole between them; page-aligned so that the mmap implementation takes them too. */
    static final long A = 0x10000, A_SIZE = 0x10000, A_END = A + A_SIZE, B = 0x30000, B_SIZE = 0x1000, B_END = B + B_SIZE;
    static final byte CANARY = (byte) 0xC3;

    private final List<AutoCloseable> toClose = new ArrayList<>();

    @AfterEach
    void close() throws Exception {
        for (AutoCloseable c : toClose) {
            c.close();
        }
    }

    static Stream<Arguments> impls() {
        List<Arguments> l = new ArrayList<>();
        for (GuestMemoryImpl impl : GuestMemoryImpl.values()) {
            String n = impl.name().toLowerCase();
            Function<MemoryRegion[], GuestMemory> heap = rs -> HeapGuestMemory.of(available(impl), rs);
            Function<MemoryRegion[], GuestMemory> mmap = rs -> MmapGuestMemory.create(List.of(rs), available(impl));
            l.add(Arguments.of(n + "-heap", heap));
            l.add(Arguments.of(n + "-mmap", mmap));
        }
        return l.stream();
    }

    /** {@code impl}, or the test is skipped (not passed) on a JDK that lacks it: FFM before 22. */
    static GuestMemoryImpl available(GuestMemoryImpl impl) {
        assumeTrue(impl.isAvailable(), () -> impl + " guest memory needs JDK 22+; skipped on " + Runtime.version());
        return impl;
    }

    private GuestMemory create(Function<MemoryRegion[], GuestMemory> f, MemoryRegion... regions) {
        GuestMemory m = f.apply(regions);
        if (m instanceof AutoCloseable c) {
            toClose.add(c);
        }
        for (MemoryRegion r : m.regions()) {
            m.fill(r.start(), r.size(), CANARY);
        }
        return m;
    }

    private GuestMemory twoRegions(Function<MemoryRegion[], GuestMemory> f) {
        return create(f, region(A, A_SIZE), region(B, B_SIZE));
    }

    static MemoryRegion region(long start, long size) { return new MemoryRegion(GuestAddress.of(start), size); }

    /** Every accessor; fixed-width ones have {@code width > 0}, the others take any length. */
    enum Op {
        READ_BYTE(1), READ_SHORT(2), READ_INT(4), READ_LONG(8), READ_SHORT_ACQUIRE(2),
        WRITE_BYTE(1), WRITE_SHORT(2), WRITE_INT(4), WRITE_LONG(8), WRITE_SHORT_RELEASE(2),
        READ_ARRAY(0), WRITE_ARRAY(0), READ_BYTES(0), READ_HEAP_BUFFER(0), WRITE_HEAP_BUFFER(0),
        READ_DIRECT_BUFFER(0), WRITE_DIRECT_BUFFER(0), FILL(0), VIEW(0);

        final int width;

        Op(int width) { this.width = width; }

        boolean writes() { return name().startsWith("WRITE") || this == FILL; }

        /** Performs the access of {@code len} bytes (fixed-width ops ignore len); writes store 0x5A bytes. */
        void apply(GuestMemory m, GuestAddress a, int len) {
            switch (this) {
                case READ_BYTE -> m.readByte(a);
                case READ_SHORT -> m.readShort(a);
                case READ_INT -> m.readInt(a);
                case READ_LONG -> m.readLong(a);
                case READ_SHORT_ACQUIRE -> m.readShortAcquire(a);
                case WRITE_BYTE -> m.writeByte(a, (byte) 0x5A);
                case WRITE_SHORT -> m.writeShort(a, (short) 0x5A5A);
                case WRITE_INT -> m.writeInt(a, 0x5A5A5A5A);
                case WRITE_LONG -> m.writeLong(a, 0x5A5A5A5A5A5A5A5AL);
                case WRITE_SHORT_RELEASE -> m.writeShortRelease(a, (short) 0x5A5A);
                case READ_ARRAY -> m.read(a, new byte[len + 3], 3, len);
                case WRITE_ARRAY -> m.write(a, filled(len + 2), 2, len);
                case READ_BYTES -> m.readBytes(a, len);
                case READ_HEAP_BUFFER -> m.read(a, ByteBuffer.allocate(len));
                case WRITE_HEAP_BUFFER -> m.write(a, ByteBuffer.wrap(filled(len)));
                case READ_DIRECT_BUFFER -> m.read(a, ByteBuffer.allocateDirect(len));
                case WRITE_DIRECT_BUFFER -> m.write(a, ByteBuffer.allocateDirect(len).put(filled(len)).flip());
                case FILL -> m.fill(a, len, (byte) 0x5A);
                case VIEW -> m.view(a, len);
            }
        }

        int len(int varLen) { return width > 0 ? width : varLen; }
    }

    static byte[] filled(int n) {
        byte[] b = new byte[n];
        Arrays.fill(b, (byte) 0x5A);
        return b;
    }

    /** All of RAM still holds the canary, except {@code [addr, addr+len)} (pass len 0 for "all of it"). */
    private static void assertCanaryExcept(GuestMemory m, long addr, long len, String what) {
        for (MemoryRegion r : m.regions()) {
            byte[] b = m.readBytes(r.start(), (int) r.size());
            for (int i = 0; i < b.length; i++) {
                long at = r.start().value() + i;
                boolean written = Long.compareUnsigned(at - addr, len) < 0;
                if (!written && b[i] != CANARY) {
                    throw new AssertionError(String.format("%s: byte at 0x%x changed to 0x%02x", what, at, b[i]));
                }
            }
        }
    }

    private static void restoreCanary(GuestMemory m) {
        for (MemoryRegion r : m.regions()) {
            m.fill(r.start(), r.size(), CANARY);
        }
    }

    /** The access fits: contains() agrees, it succeeds, and a write lands on exactly those bytes. */
    private static void assertAllowed(GuestMemory m, Op op, long addr, int varLen) {
        int len = op.len(varLen);
        String what = String.format("%s at 0x%x len %d", op, addr, len);
        assertTrue(m.contains(GuestAddress.of(addr), len), what + ": contains");
        op.apply(m, GuestAddress.of(addr), len);
        if (op.writes() && len > 0) {
            assertArrayEquals(filled(len), m.readBytes(GuestAddress.of(addr), len), what);
        }
        assertCanaryExcept(m, addr, op.writes() ? len : 0, what);
        restoreCanary(m);
    }

    /**
     * The access does not fit: contains() says so first (so that, with a broken bounds check, the test fails
     * here instead of letting Unsafe touch host memory), then the accessor throws {@code reason} and no byte of
     * RAM changed.
     */
    private static void assertRefused(GuestMemory m, Op op, long addr, int varLen, Reason reason) {
        int len = op.len(varLen);
        String what = String.format("%s at 0x%x len %d", op, addr, len);
        assertFalse(m.contains(GuestAddress.of(addr), len), what + ": contains");
        GuestMemoryException e = assertThrows(GuestMemoryException.class, () -> op.apply(m, GuestAddress.of(addr), len), what);
        if (reason != null) {
            assertEquals(reason, e.reason(), what);
        }
        assertCanaryExcept(m, 0, 0, what);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("impls")
    void everyAccessorAtTheEdgesOfEachRegion(String name, Function<MemoryRegion[], GuestMemory> f) {
        GuestMemory m = twoRegions(f);
        for (Op op : Op.values()) {
            for (int varLen : new int[] {1, 2, 3, 8, 16}) {
                int w = op.len(varLen);
                for (long[] r : new long[][] {{A, A_END}, {B, B_END}}) {
                    assertAllowed(m, op, r[0], varLen);
                    assertAllowed(m, op, r[1] - w, varLen);
                    assertRefused(m, op, r[1] - w + 1, varLen, Reason.OUT_OF_BOUNDS);
                    assertRefused(m, op, r[1], varLen, Reason.OUT_OF_BOUNDS);
                    assertRefused(m, op, r[0] - 1, varLen, Reason.OUT_OF_BOUNDS);
                    assertRefused(m, op, r[0] - w, varLen, Reason.OUT_OF_BOUNDS);
                }
                assertRefused(m, op, 0, varLen, Reason.OUT_OF_BOUNDS);
                assertRefused(m, op, A_END + 0x100, varLen, Reason.OUT_OF_BOUNDS);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("impls")
    void wholeRegionsAndZeroLength(String name, Function<MemoryRegion[], GuestMemory> f) {
        GuestMemory m = twoRegions(f);
        for (Op op : Op.values()) {
            if (op.width > 0) {
                continue;
            }
            assertAllowed(m, op, A, (int) A_SIZE);
            assertAllowed(m, op, B, (int) B_SIZE);
            assertRefused(m, op, A, (int) A_SIZE + 1, Reason.OUT_OF_BOUNDS);
            assertRefused(m, op, A - 1, (int) A_SIZE, Reason.OUT_OF_BOUNDS);
            // Zero bytes at the very end of a region are inside it; one past the end is not.
            assertAllowed(m, op, A_END, 0);
            assertAllowed(m, op, B_END, 0);
            assertRefused(m, op, A_END + 1, 0, Reason.OUT_OF_BOUNDS);
            assertRefused(m, op, A - 1, 0, Reason.OUT_OF_BOUNDS);
            // From A to the end of B crosses the hole between them.
            assertRefused(m, op, A, (int) (B_END - A), Reason.OUT_OF_BOUNDS);
            assertRefused(m, op, A_END - 1, 2, Reason.OUT_OF_BOUNDS);
            assertRefused(m, op, B - 1, 2, Reason.OUT_OF_BOUNDS);
        }
        assertEquals(0, m.view(GuestAddress.of(A_END), 0).capacity());
    }

    /** Addresses near 2^63 and 2^64, with lengths that do and do not wrap past 2^64. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("impls")
    void addressesAtAndAbove2p63(String name, Function<MemoryRegion[], GuestMemory> f) {
        GuestMemory m = twoRegions(f);
        long[] noWrap = {0x7FFF_FFFF_FFFF_FFFFL, 0x8000_0000_0000_0000L, 0x8000_0000_0000_0000L + A,
            0x8000_0000_0000_0000L + A_END - 8, 0x8000_0000_0000_0000L + B, 0xFFFF_FFFF_FFFF_F000L,
            0xFFFF_FFFF_FFFF_F000L + A, 0xFFFF_FFFF_FFFF_FFF0L};
        for (Op op : Op.values()) {
            for (long addr : noWrap) {
                assertRefused(m, op, addr, 8, Reason.OUT_OF_BOUNDS);
                assertRefused(m, op, addr, 0, Reason.OUT_OF_BOUNDS);
            }
            if (op.width > 0) {
                assertRefused(m, op, -1L, 0, Reason.OVERFLOW); // even one byte at 2^64 - 1 ends at 2^64
                continue;
            }
            assertRefused(m, op, 0x7FFF_FFFF_FFFF_FFFFL, 2, Reason.OUT_OF_BOUNDS);
            assertRefused(m, op, 0xFFFF_FFFF_FFFF_F000L, 0xFFF, Reason.OUT_OF_BOUNDS); // ends at 2^64 - 1
            assertRefused(m, op, 0xFFFF_FFFF_FFFF_F000L, 0x1000, Reason.OVERFLOW); // ends exactly at 2^64
            assertRefused(m, op, 0xFFFF_FFFF_FFFF_F000L, (int) (0x1000 + A + 8), Reason.OVERFLOW); // wraps into A
            assertRefused(m, op, -1L, (int) (A + 2), Reason.OVERFLOW);
        }
    }

    /** A region that itself lies above 2^63 is addressed like any other. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("impls")
    void regionsAbove2p63(String name, Function<MemoryRegion[], GuestMemory> f) {
        long hi = 0x8000_0000_0000_0000L, top = 0xFFFF_FFFF_FFFF_E000L;
        GuestMemory m = create(f, region(A, A_SIZE), region(hi, 0x1000), region(top, 0x1000));
        for (Op op : Op.values()) {
            assertAllowed(m, op, hi, 8);
            assertAllowed(m, op, hi + 0x1000 - op.len(8), 8);
            assertAllowed(m, op, top + 0x1000 - op.len(8), 8);
            assertRefused(m, op, hi - 1, 8, Reason.OUT_OF_BOUNDS);
            assertRefused(m, op, hi + 0x1000 - op.len(8) + 1, 8, Reason.OUT_OF_BOUNDS);
            assertRefused(m, op, top - 1, 8, Reason.OUT_OF_BOUNDS);
            assertRefused(m, op, top + 0x1000, 8, Reason.OUT_OF_BOUNDS);
            assertRefused(m, op, hi - A_SIZE, 8, Reason.OUT_OF_BOUNDS);
        }
        m.writeLong(GuestAddress.of(hi), 0x1122334455667788L);
        assertEquals(0x1122334455667788L, m.readLong(GuestAddress.of(hi)));
        assertEquals(CANARY, m.readByte(GuestAddress.of(A)), "the high write did not land in low RAM");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("impls")
    void viewBounds(String name, Function<MemoryRegion[], GuestMemory> f) {
        GuestMemory m = twoRegions(f);
        ByteBuffer v = m.view(GuestAddress.of(A_END - 16), 16);
        assertEquals(16, v.capacity());
        assertEquals(16, v.remaining());
        assertEquals(ByteOrder.LITTLE_ENDIAN, v.order());
        v.putInt(12, 0x04030201);
        assertArrayEquals(new byte[] {1, 2, 3, 4}, m.readBytes(GuestAddress.of(A_END - 4), 4), "the view aliases RAM");
        m.writeLong(GuestAddress.of(A_END - 16), 0x0807060504030201L);
        assertEquals(0x0807060504030201L, v.getLong(0), "and RAM shows through the view");
        restoreCanary(m);
        assertRefused(m, Op.VIEW, A_END - 16, 17, Reason.OUT_OF_BOUNDS);
        assertRefused(m, Op.VIEW, A_END - 1, Integer.MAX_VALUE, Reason.OUT_OF_BOUNDS);
        assertRefused(m, Op.VIEW, 0xFFFF_FFFF_FFFF_FFF0L, 0x20, Reason.OVERFLOW);
        GuestMemoryException e = assertThrows(GuestMemoryException.class, () -> m.view(GuestAddress.of(A), -1));
        assertEquals(Reason.BAD_LENGTH, e.reason());
        e = assertThrows(GuestMemoryException.class, () -> m.view(GuestAddress.of(A), Integer.MIN_VALUE));
        assertEquals(Reason.BAD_LENGTH, e.reason());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("impls")
    void byteBuffers(String name, Function<MemoryRegion[], GuestMemory> f) {
        GuestMemory m = twoRegions(f);
        for (boolean direct : new boolean[] {false, true}) {
            ByteBuffer src = direct ? ByteBuffer.allocateDirect(32) : ByteBuffer.allocate(32);
            for (int i = 0; i < 32; i++) {
                src.put(i, (byte) i);
            }
            src.position(8).limit(24);
            m.write(GuestAddress.of(B_END - 16), src);
            assertEquals(24, src.position(), "write advances the source");
            byte[] want = new byte[16];
            for (int i = 0; i < 16; i++) {
                want[i] = (byte) (8 + i);
            }
            assertArrayEquals(want, m.readBytes(GuestAddress.of(B_END - 16), 16));
            ByteBuffer dst = direct ? ByteBuffer.allocateDirect(20) : ByteBuffer.allocate(20);
            dst.position(4);
            m.read(GuestAddress.of(B_END - 16), dst);
            assertEquals(20, dst.position(), "read advances the destination");
            for (int i = 0; i < 16; i++) {
                assertEquals(want[i], dst.get(4 + i));
            }
            restoreCanary(m);
            // One byte too many: refused, neither buffer moves, RAM unchanged.
            src.position(7).limit(24);
            assertThrows(GuestMemoryException.class, () -> m.write(GuestAddress.of(B_END - 16), src));
            assertEquals(7, src.position());
            dst.position(3);
            assertThrows(GuestMemoryException.class, () -> m.read(GuestAddress.of(B_END - 16), dst));
            assertEquals(3, dst.position());
            assertCanaryExcept(m, 0, 0, "refused buffer copy");
            // An empty buffer at the end of a region is fine.
            m.read(GuestAddress.of(B_END), dst.position(dst.limit()));
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("impls")
    void fillLengths(String name, Function<MemoryRegion[], GuestMemory> f) {
        GuestMemory m = twoRegions(f);
        for (long len : new long[] {-1, -0x1000, Long.MIN_VALUE}) {
            GuestMemoryException e = assertThrows(GuestMemoryException.class, () -> m.fill(GuestAddress.of(A), len, (byte) 0));
            assertEquals(Reason.BAD_LENGTH, e.reason(), "fill length " + len);
        }
        for (long len : new long[] {A_SIZE + 1, 1L << 32, Long.MAX_VALUE}) {
            GuestMemoryException e = assertThrows(GuestMemoryException.class, () -> m.fill(GuestAddress.of(A), len, (byte) 0));
            assertEquals(Reason.OUT_OF_BOUNDS, e.reason(), "fill length " + len);
        }
        GuestMemoryException e = assertThrows(GuestMemoryException.class,
                () -> m.fill(GuestAddress.of(0x8000_0000_0000_0001L), Long.MAX_VALUE, (byte) 0));
        assertEquals(Reason.OVERFLOW, e.reason());
        e = assertThrows(GuestMemoryException.class, () -> m.fill(GuestAddress.of(-1L), A + 1, (byte) 0));
        assertEquals(Reason.OVERFLOW, e.reason());
        assertCanaryExcept(m, 0, 0, "refused fills");
        m.fill(GuestAddress.of(A), A_SIZE, (byte) 7);
        assertEquals(7, m.readByte(GuestAddress.of(A_END - 1)));
        assertEquals(CANARY, m.readByte(GuestAddress.of(B)));
    }

    /** Bad array bounds are the caller's bug, not the guest's: refused before any byte moves. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("impls")
    void arrayBoundsCheckedBeforeCopying(String name, Function<MemoryRegion[], GuestMemory> f) {
        GuestMemory m = twoRegions(f);
        byte[] b = filled(8);
        assertThrows(IndexOutOfBoundsException.class, () -> m.write(GuestAddress.of(A), b, 4, 5));
        assertThrows(IndexOutOfBoundsException.class, () -> m.write(GuestAddress.of(A), b, -1, 2));
        assertThrows(IndexOutOfBoundsException.class, () -> m.read(GuestAddress.of(A), b, 0, -1));
        assertThrows(IndexOutOfBoundsException.class, () -> m.read(GuestAddress.of(A), b, Integer.MAX_VALUE, 2));
        assertCanaryExcept(m, 0, 0, "bad array bounds");
        assertArrayEquals(filled(8), b);
    }
}
