package dev.jkrun.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;

/**
 * Guest-memory bounds against an exact oracle: {@code [addr, addr+len)} as unbounded integers must lie wholly
 * inside one region for an access to succeed, and an access that succeeds must touch exactly the bytes the oracle
 * names (checked through a canary pattern). Replayed from the committed corpus in every test run; fuzzed with
 * {@code fuzz/run GuestMemoryBoundsFuzzTest}.
 */
class GuestMemoryBoundsFuzzTest {
    private static final BigInteger TWO_64 = BigInteger.ONE.shiftLeft(64);

    /** Two small regions with a hole between them, the second ending just below 2^32, as RAM around an MMIO hole. */
    private static final long LOW = 0x1000, LOW_SIZE = 0x2000, HIGH = 0xFFFF_E000L, HIGH_SIZE = 0x2000;

    /**
     * Every accessor this JVM has (Unsafe, and FFM on JDK 22+), over heap arrays and over mappings (page-aligned
     * regions). Made once: the oracle needs no fresh contents, and a mapping per input would slow fuzzing down. The
     * mappings live as long as the JVM.
     */
    private static final List<GuestMemory> MEMORIES = new ArrayList<>();

    static {
        MemoryRegion low = new MemoryRegion(GuestAddress.of(LOW), LOW_SIZE), high = new MemoryRegion(GuestAddress.of(HIGH), HIGH_SIZE);
        for (GuestMemoryImpl impl : GuestMemoryImpl.available()) {
            MEMORIES.add(HeapGuestMemory.of(impl, low, high));
            MEMORIES.add(MmapGuestMemory.create(List.of(low, high), impl));
        }
    }

    @FuzzTest(maxDuration = "1h")
    void accessesStayInsideOneRegion(FuzzedDataProvider data) {
        long addr = pickAddress(data);
        long len = data.consumeBoolean() ? data.consumeLong(-2, 0x4000) : data.consumeLong();
        int op = data.consumeInt(0, 5);
        for (GuestMemory mem : MEMORIES) {
            access(mem, addr, len, op);
        }
        // The same range as a window (the virtqueue rings' path), then one access at an offset into it.
        long offset = data.consumeBoolean() ? data.consumeLong(-16, 0x2010) : data.consumeLong();
        int windowOp = data.consumeInt(0, 3);
        for (GuestMemory mem : MEMORIES) {
            window(mem, addr, len, offset, windowOp);
        }
    }

    /**
     * A window is made only where {@code [addr, addr+len)} lies inside one region, and an access through it succeeds
     * exactly when it lies inside the window, landing on the guest address the window names.
     */
    private static void window(GuestMemory mem, long addr, long len, long offset, int op) {
        boolean windowOk = oracleContains(addr, len, 5);
        GuestWindow w;
        try {
            w = mem.window(new GuestAddress(addr), len);
        } catch (RuntimeException e) {
            if (windowOk) {
                fail(String.format("%s: window(0x%x, %d) refused inside RAM: %s", name(mem), addr, len, e));
            }
            return;
        }
        if (!windowOk) {
            fail(String.format("%s: window(0x%x, %d) made outside RAM", name(mem), addr, len));
        }
        int n = op == 0 || op == 2 ? 2 : 8;
        boolean ok = offset >= 0 && offset <= len - n; // len is at most a region's size here: no overflow
        long value = 0x5A5A_0000_0000_A55AL ^ offset;
        try {
            switch (op) {
                case 0 -> w.readShort(offset);
                case 1 -> w.writeLong(offset, value);
                case 2 -> w.writeShortRelease(offset, (short) value);
                default -> w.readLong(offset);
            }
            if (!ok) {
                fail(String.format("%s: window 0x%x+%d: op %d at offset %d succeeded outside it", name(mem), addr, len, op, offset));
            }
        } catch (GuestMemoryException e) {
            if (ok) {
                fail(String.format("%s: window 0x%x+%d: op %d at offset %d refused inside it: %s", name(mem), addr, len, op, offset, e.getMessage()));
            }
            return;
        }
        GuestAddress at = new GuestAddress(addr + offset);
        switch (op) {
            case 1 -> assertEquals(value, mem.readLong(at), "a window's store lands on its guest address");
            case 2 -> assertEquals((short) value, mem.readShort(at), "a window's store lands on its guest address");
            default -> { }
        }
    }

    private static String name(GuestMemory mem) {
        return mem instanceof MmapGuestMemory m ? m.impl() + "-mmap" : ((HeapGuestMemory) mem).impl() + "-heap";
    }

    private static void access(GuestMemory mem, long addr, long len, int op) {
        boolean expectOk = oracleContains(addr, len, op);
        GuestAddress a = new GuestAddress(addr);
        assertEquals(oracleContains(addr, len, 5), mem.contains(a, len), () -> String.format("contains(0x%x, %d)", addr, len));
        try {
            switch (op) {
                case 0 -> mem.readByte(a);
                case 1 -> mem.writeShort(a, (short) 0x5A5A);
                case 2 -> mem.readInt(a);
                case 3 -> mem.writeLong(a, 0x5A5A5A5A5A5A5A5AL);
                case 4 -> {
                    if (len < 0 || len > 0x4000) {
                        mem.fill(a, len, (byte) 0x5A);
                    } else {
                        mem.write(a, new byte[(int) len]);
                    }
                }
                default -> mem.fill(a, len, (byte) 0x5A);
            }
            if (!expectOk) {
                fail(String.format("%s: op %d at 0x%x len %d succeeded outside RAM", name(mem), op, addr, len));
            }
        } catch (GuestMemoryException e) {
            if (expectOk) {
                fail(String.format("%s: op %d at 0x%x len %d refused inside RAM: %s", name(mem), op, addr, len, e.getMessage()));
            }
        }
    }

    /** Addresses near the interesting edges: region bounds, 2^63, 2^64, or anything. */
    private static long pickAddress(FuzzedDataProvider data) {
        long[] bases = {0, LOW, LOW + LOW_SIZE, HIGH, HIGH + HIGH_SIZE, Long.MIN_VALUE, -1L, -LOW_SIZE, 1L << 32};
        int which = data.consumeInt(0, bases.length);
        if (which == bases.length) {
            return data.consumeLong();
        }
        return bases[which] + data.consumeLong(-16, 16);
    }

    private static boolean oracleContains(long addr, long len, int op) {
        long n = switch (op) {
            case 0 -> 1;
            case 1 -> 2;
            case 2 -> 4;
            case 3 -> 8;
            default -> len;
        };
        if (n < 0) {
            return false;
        }
        BigInteger start = new BigInteger(Long.toUnsignedString(addr));
        BigInteger end = start.add(BigInteger.valueOf(n));
        if (end.compareTo(TWO_64) > 0) {
            return false;
        }
        return within(start, end, LOW, LOW_SIZE) || within(start, end, HIGH, HIGH_SIZE);
    }

    private static boolean within(BigInteger start, BigInteger end, long rStart, long rSize) {
        BigInteger rs = BigInteger.valueOf(rStart);
        return start.compareTo(rs) >= 0 && end.compareTo(rs.add(BigInteger.valueOf(rSize))) <= 0;
    }
}
