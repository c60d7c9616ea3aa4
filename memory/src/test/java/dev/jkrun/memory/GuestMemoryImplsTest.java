package dev.jkrun.memory;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.libc.AnonymousMapping;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The GuestMemory contract against every accessor this JVM has (Unsafe everywhere, FFM on JDK 22+), each over heap
 * arrays and over mappings, so the two implementations cannot drift apart.
 */
class GuestMemoryImplsTest {
    /** Two regions with a hole, as RAM around an MMIO hole, given out of order. */
    static final MemoryRegion HIGH = new MemoryRegion(GuestAddress.of(0x10_0000), 0x4000);
    static final MemoryRegion LOW = new MemoryRegion(GuestAddress.of(0x1000), 0x2000);

    /** One way to make guest memory: an accessor over heap arrays or over mappings. */
    record Kind(GuestMemoryImpl impl, boolean mapped) {
        GuestMemory create(MemoryRegion... regions) {
            return mapped ? MmapGuestMemory.create(List.of(regions), impl) : HeapGuestMemory.of(impl, regions);
        }

        @Override
        public String toString() { return impl.name().toLowerCase() + (mapped ? "-mmap" : "-heap"); }
    }

    static Stream<Kind> kinds() {
        List<Kind> ks = new ArrayList<>();
        for (GuestMemoryImpl impl : GuestMemoryImpl.available()) {
            ks.add(new Kind(impl, false));
            ks.add(new Kind(impl, true));
        }
        return ks.stream();
    }

    private static void with(Kind k, Consumer<GuestMemory> body) {
        GuestMemory mem = k.create(HIGH, LOW);
        try {
            body.accept(mem);
        } finally {
            if (mem instanceof MmapGuestMemory m) {
                m.close();
            }
        }
    }

    private static GuestAddress at(long a) { return GuestAddress.of(a); }

    @Test
    void ffmIsTheDefaultFromJdk22() throws ReflectiveOperationException {
        boolean jdk22 = Runtime.version().feature() >= 22;
        // One line in the test log says which accessors these tests really exercised.
        System.out.println("guest memory tests on JDK " + Runtime.version() + ": accessors " + GuestMemoryImpl.available());
        assertEquals(jdk22, GuestMemoryImpl.FFM.isAvailable(), "FFM availability on " + Runtime.version());
        assertEquals(jdk22 ? GuestMemoryImpl.FFM : GuestMemoryImpl.UNSAFE, GuestMemoryImpl.preferred());
        assertEquals(GuestMemoryImpl.preferred(), HeapGuestMemory.of(0, 4096).impl());
        // And that the facades really sit on the accessor they name, not just carry its name.
        for (GuestMemoryImpl impl : GuestMemoryImpl.available()) {
            String want = impl == GuestMemoryImpl.FFM ? "SegmentGuestMemory" : "UnsafeHeapMemory";
            assertEquals(want, accessor(HeapGuestMemory.of(impl, LOW)).getClass().getSimpleName());
            try (MmapGuestMemory m = MmapGuestMemory.create(List.of(LOW), impl)) {
                assertEquals(impl == GuestMemoryImpl.FFM ? want : "UnsafeMmapMemory", accessor(m).getClass().getSimpleName());
            }
        }
    }

    /**
     * FFM's check where memory is touched is the JDK's, against the segment: each segment must be exactly its region
     * (never the rounded-up mapping), and the views' segments too, or an access straddling a region's end would pass.
     */
    @ParameterizedTest
    @MethodSource("kinds")
    void ffmSegmentsAreExactlyTheirRegions(Kind k) throws ReflectiveOperationException {
        if (k.impl() != GuestMemoryImpl.FFM) {
            return;
        }
        GuestMemory mem = k.create(HIGH, LOW);
        try {
            Object acc = accessor(mem);
            java.lang.reflect.Method byteSize = Class.forName("java.lang.foreign.MemorySegment").getMethod("byteSize");
            for (String field : new String[] {"segments", "viewSegments"}) {
                java.lang.reflect.Field f = acc.getClass().getDeclaredField(field);
                f.setAccessible(true);
                Object[] segs = (Object[]) f.get(acc);
                assertEquals(2, segs.length);
                assertEquals(LOW.size(), byteSize.invoke(segs[0]), field);
                assertEquals(HIGH.size(), byteSize.invoke(segs[1]), field);
            }
        } finally {
            if (mem instanceof MmapGuestMemory m) {
                m.close();
            }
        }
    }

    private static Object accessor(GuestMemory facade) throws ReflectiveOperationException {
        java.lang.reflect.Field f = facade.getClass().getDeclaredField("m");
        f.setAccessible(true);
        return f.get(facade);
    }

    @Test
    void propertyOverridesTheChoice() {
        String old = System.getProperty(GuestMemoryImpl.PROPERTY);
        try {
            System.setProperty(GuestMemoryImpl.PROPERTY, "unsafe");
            assertEquals(GuestMemoryImpl.UNSAFE, HeapGuestMemory.of(0, 4096).impl());
            System.setProperty(GuestMemoryImpl.PROPERTY, "ffm");
            if (GuestMemoryImpl.FFM.isAvailable()) {
                assertEquals(GuestMemoryImpl.FFM, HeapGuestMemory.of(0, 4096).impl());
            } else {
                assertThrows(UnsupportedOperationException.class, () -> HeapGuestMemory.of(0, 4096));
            }
            System.setProperty(GuestMemoryImpl.PROPERTY, "chronicle");
            assertThrows(IllegalArgumentException.class, GuestMemoryImpl::preferred);
        } finally {
            if (old == null) {
                System.clearProperty(GuestMemoryImpl.PROPERTY);
            } else {
                System.setProperty(GuestMemoryImpl.PROPERTY, old);
            }
        }
    }

    /** Windows (virtqueue rings): made only inside one region, each access checked against the window alone. */
    @ParameterizedTest
    @MethodSource("kinds")
    void windowsStayInsideTheirRange(Kind k) {
        with(k, mem -> {
            assertFalse(mem.window(at(0x1000), 16) instanceof GuestWindow.Delegating, "the accessor's own");
            GuestWindow w = mem.window(at(0x2ff0), 16); // the last 16 bytes of LOW
            assertEquals(16, w.length());
            assertEquals(at(0x2ff0), w.start());
            w.writeLong(8, 0x1122334455667788L);
            assertEquals(0x1122334455667788L, mem.readLong(at(0x2ff8)));
            assertEquals((short) 0x7788, w.readShort(8));
            w.writeShortRelease(0, (short) 7);
            assertEquals(7, w.readShortAcquire(0));
            w.writeShort(14, (short) -1);
            assertEquals((short) -1, mem.readShort(at(0x2ffe)));
            // Offsets past the window, negative ones, and an access that straddles its end: refused.
            assertThrows(GuestMemoryException.class, () -> w.readLong(9));
            assertThrows(GuestMemoryException.class, () -> w.readShort(-1));
            assertThrows(GuestMemoryException.class, () -> w.writeLong(16, 0));
            assertThrows(GuestMemoryException.class, () -> w.readShort(Long.MAX_VALUE));
            assertThrows(GuestMemoryException.class, () -> w.readShortAcquire(15));
            assertThrows(GuestMemoryException.class, () -> w.writeShortRelease(Long.MIN_VALUE, (short) 0));
            assertEquals((short) -1, mem.readShort(at(0x2ffe)), "nothing written by a refused access");
            // Windows past a region's end, across the hole, at or above 2^63, or wrapping: refused when made.
            assertThrows(GuestMemoryException.class, () -> mem.window(at(0x2ff0), 17));
            assertThrows(GuestMemoryException.class, () -> mem.window(at(0x2000), 0x10_0000));
            assertThrows(GuestMemoryException.class, () -> mem.window(at(0x8000_0000_0000_1000L), 16));
            assertThrows(GuestMemoryException.class, () -> mem.window(at(0xFFFF_FFFF_FFFF_FFF0L), 32));
            assertThrows(RuntimeException.class, () -> mem.window(at(0x1000), -1));
            assertEquals(0, mem.window(at(0x3000), 0).length(), "empty, at a region's end");
        });
    }

    @ParameterizedTest
    @MethodSource("kinds")
    void windowsOfReleasedMemoryRefuseAccess(Kind k) {
        if (!k.mapped()) {
            return; // heap memory has no end of life
        }
        MmapGuestMemory mem = (MmapGuestMemory) k.create(HIGH, LOW);
        GuestWindow w = mem.window(at(0x10_0000), 64);
        w.writeLong(0, 1);
        mem.close();
        assertThrows(IllegalStateException.class, () -> w.readLong(0));
        assertThrows(IllegalStateException.class, () -> w.writeShortRelease(0, (short) 1));
        assertEquals(64, w.length(), "a shut window still says what it was");
        // Retired (a thread may still run): every window made before refuses, at every offset and width.
        MmapGuestMemory retired = (MmapGuestMemory) k.create(HIGH, LOW);
        try {
            GuestWindow r = retired.window(at(0x10_0000), 64);
            GuestWindow other = retired.window(at(0x1000), 16);
            r.writeShort(62, (short) 1);
            retired.retire();
            assertThrows(IllegalStateException.class, () -> r.readShortAcquire(0));
            assertThrows(IllegalStateException.class, () -> r.writeLong(56, 0));
            assertThrows(IllegalStateException.class, () -> other.readShort(0));
            assertThrows(RuntimeException.class, () -> retired.window(at(0x1000), 16), "no new window of retired memory");
        } finally {
            retired.close();
        }
    }

    @ParameterizedTest
    @MethodSource("kinds")
    void regionsAreSortedAndSized(Kind k) {
        with(k, mem -> {
            assertEquals(List.of(LOW, HIGH), mem.regions());
            assertEquals(0x6000, mem.size());
        });
        assertThrows(IllegalArgumentException.class,
                () -> k.create(LOW, new MemoryRegion(GuestAddress.of(0x2000), 0x2000)), "overlap");
    }

    @ParameterizedTest
    @MethodSource("kinds")
    void littleEndianAtAnyAlignment(Kind k) {
        with(k, mem -> {
            for (long a : new long[] {0x1000, 0x1001, 0x1003, 0x10_0007, 0x10_3FF8}) {
                mem.writeLong(at(a), 0x1122334455667788L);
                assertArrayEquals(new byte[] {(byte) 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11}, mem.readBytes(at(a), 8));
                assertEquals(0x1122334455667788L, mem.readLong(at(a)));
                assertEquals(0x55667788, mem.readInt(at(a)));
                assertEquals((short) 0x7788, mem.readShort(at(a)));
                assertEquals((byte) 0x88, mem.readByte(at(a)));
                mem.writeInt(at(a), 0xA1B2C3D4);
                assertEquals(0x11223344A1B2C3D4L, mem.readLong(at(a)));
                mem.writeShort(at(a + 4), (short) 0xBEEF);
                mem.writeByte(at(a + 7), (byte) 0x99);
                assertEquals(0x9922BEEFA1B2C3D4L, mem.readLong(at(a)));
                mem.writeShortRelease(at(a), (short) 0x1234);
                assertEquals((short) 0x1234, mem.readShortAcquire(at(a)));
                mem.fullFence();
            }
        });
    }

    @ParameterizedTest
    @MethodSource("kinds")
    void bulkCopiesFillAndViews(Kind k) {
        with(k, mem -> {
            byte[] src = new byte[64];
            for (int i = 0; i < src.length; i++) {
                src[i] = (byte) (i + 1);
            }
            mem.write(at(0x10_0010), src, 8, 32);
            byte[] dst = new byte[40];
            mem.read(at(0x10_0010), dst, 4, 32);
            for (int i = 0; i < 32; i++) {
                assertEquals(src[8 + i], dst[4 + i]);
            }
            assertThrows(IndexOutOfBoundsException.class, () -> mem.read(at(0x1000), dst, 30, 20), "the caller's array");

            for (ByteBuffer b : new ByteBuffer[] {ByteBuffer.allocate(16), ByteBuffer.allocateDirect(16)}) {
                b.position(4);
                mem.read(at(0x10_0010), b);
                assertEquals(16, b.position());
                assertEquals(src[8], b.get(4));
                b.position(4);
                mem.write(at(0x2000), b);
                assertEquals(16, b.position());
                assertArrayEquals(mem.readBytes(at(0x10_0010), 12), mem.readBytes(at(0x2000), 12));
            }

            mem.fill(at(0x1800), 0x100, (byte) 0x5A);
            assertEquals(0, mem.readByte(at(0x17FF)));
            assertEquals(0x5A5A5A5A5A5A5A5AL, mem.readLong(at(0x18F8)));
            assertEquals(0, mem.readByte(at(0x1900)));

            ByteBuffer v = mem.view(at(0x10_0100), 16);
            assertEquals(ByteOrder.LITTLE_ENDIAN, v.order());
            assertEquals(16, v.capacity());
            assertEquals(0, v.position());
            v.putInt(4, 0xCAFEBABE);
            assertEquals(0xCAFEBABE, mem.readInt(at(0x10_0104)));
            mem.writeLong(at(0x10_0108), 42);
            assertEquals(42, v.getLong(8));
            assertThrows(IndexOutOfBoundsException.class, () -> v.get(16));
        });
    }

    @ParameterizedTest
    @MethodSource("kinds")
    void everyAccessOutsideOneRegionIsRefused(Kind k) {
        with(k, mem -> {
            // [addr, len, expected reason or null for success]
            Object[][] cases = {
                    {0x2FF8L, 8L, null}, {0x2FF9L, 8L, "OUT_OF_BOUNDS"}, {0x3000L, 0L, null}, {0x3000L, 1L, "OUT_OF_BOUNDS"},
                    {0x0FFFL, 1L, "OUT_OF_BOUNDS"}, {0x0FFFL, 2L, "OUT_OF_BOUNDS"}, {0x2000L, 0x10_0000L, "OUT_OF_BOUNDS"},
                    {0x10_3FFFL, 1L, null}, {0x10_3FFFL, 2L, "OUT_OF_BOUNDS"}, {0x10_4000L, 0L, null},
                    {0x1000L, -1L, "BAD_LENGTH"}, {-8L, 16L, "OVERFLOW"}, {-1L, 1L, "OVERFLOW"},
                    {Long.MIN_VALUE + 0x1000, 8L, "OUT_OF_BOUNDS"}, {0x1000L + (1L << 32), 8L, "OUT_OF_BOUNDS"},
                    {0x1000L, Long.MAX_VALUE, "OUT_OF_BOUNDS"}, {0x8000_0000_0000_1000L, 0x2000L, "OUT_OF_BOUNDS"},
            };
            for (Object[] c : cases) {
                long a = (Long) c[0], len = (Long) c[1];
                String want = (String) c[2];
                assertEquals(want == null, mem.contains(at(a), len), String.format("contains(0x%x, %d)", a, len));
                List<Runnable> ops = new ArrayList<>();
                ops.add(() -> mem.fill(at(a), len, (byte) 1));
                if (len >= 0 && len <= 64) {
                    ops.add(() -> mem.read(at(a), new byte[(int) len], 0, (int) len));
                    ops.add(() -> mem.write(at(a), new byte[(int) len], 0, (int) len));
                    ops.add(() -> mem.read(at(a), ByteBuffer.allocate((int) len)));
                    ops.add(() -> mem.write(at(a), ByteBuffer.allocate((int) len)));
                    ops.add(() -> mem.view(at(a), (int) len));
                }
                if (len == 8) {
                    ops.add(() -> mem.readLong(at(a)));
                    ops.add(() -> mem.writeLong(at(a), 1));
                }
                if (len == 2) {
                    ops.add(() -> mem.readShortAcquire(at(a)));
                    ops.add(() -> mem.writeShortRelease(at(a), (short) 1));
                }
                if (len == 1) {
                    ops.add(() -> mem.readByte(at(a)));
                    ops.add(() -> mem.writeByte(at(a), (byte) 1));
                }
                for (int i = 0; i < ops.size(); i++) {
                    String what = String.format("%s op %d at 0x%x len %d", k, i, a, len);
                    if (want == null) {
                        ops.get(i).run();
                    } else {
                        GuestMemoryException e = assertThrows(GuestMemoryException.class, ops.get(i)::run, what);
                        assertEquals(want, e.reason().name(), what);
                    }
                }
            }
            assertThrows(GuestMemoryException.class, () -> mem.view(at(0x1000), -1));
        });
    }

    @ParameterizedTest
    @MethodSource("kinds")
    void closedMemoryRefusesEverythingAndIsUnmapped(Kind k) {
        if (!k.mapped()) {
            return;
        }
        long before = AnonymousMapping.mappedBytes();
        MmapGuestMemory mem = (MmapGuestMemory) k.create(HIGH, LOW);
        assertSame(k.impl(), mem.impl());
        assertEquals(before + 0x6000, AnonymousMapping.mappedBytes());
        List<MmapGuestMemory.Slot> slots = mem.slots();
        assertEquals(2, slots.size());
        assertTrue(slots.get(0).mapping().address() != 0);
        mem.writeLong(at(0x1000), 7);
        mem.close();
        mem.close();
        assertEquals(before, AnonymousMapping.mappedBytes());
        for (MmapGuestMemory.Slot s : slots) {
            assertThrows(IllegalStateException.class, () -> s.mapping().address());
        }
        List<Runnable> ops = List.of(() -> mem.readByte(at(0x1000)), () -> mem.readLong(at(0x10_0000)),
                () -> mem.writeInt(at(0x1000), 1), () -> mem.readShortAcquire(at(0x1000)),
                () -> mem.writeShortRelease(at(0x1000), (short) 1), () -> mem.read(at(0x1000), new byte[8], 0, 8),
                () -> mem.write(at(0x1000), new byte[8], 0, 8), () -> mem.read(at(0x1000), ByteBuffer.allocate(8)),
                () -> mem.fill(at(0x1000), 8, (byte) 0), () -> mem.view(at(0x1000), 8),
                () -> mem.readByte(at(0x5000)), () -> mem.fill(at(0x1000), -1, (byte) 0));
        for (int i = 0; i < ops.size(); i++) {
            assertThrows(IllegalStateException.class, ops.get(i)::run, k + " op " + i);
        }
        assertFalse(mem.contains(at(0x5000), 1));
    }

    @Test
    void aFailedCreateUnmapsWhatItMapped() {
        long before = AnonymousMapping.mappedBytes();
        for (GuestMemoryImpl impl : GuestMemoryImpl.available()) {
            assertThrows(IllegalArgumentException.class,
                    () -> MmapGuestMemory.create(List.of(LOW, new MemoryRegion(GuestAddress.of(0x2000), 0x1000)), impl));
            assertThrows(IllegalArgumentException.class,
                    () -> MmapGuestMemory.create(List.of(LOW, new MemoryRegion(GuestAddress.of(0x8000), 0x1800)), impl));
            assertEquals(before, AnonymousMapping.mappedBytes(), impl.name());
        }
    }
}
