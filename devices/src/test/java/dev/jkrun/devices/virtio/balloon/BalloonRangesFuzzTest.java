package dev.jkrun.devices.virtio.balloon;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jkrun.devices.virtio.queue.Descriptor;
import dev.jkrun.devices.virtio.queue.DescriptorChain;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.HeapGuestMemory;
import dev.jkrun.memory.MemoryRegion;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A hostile guest's inflate, deflate and free-page-report chains straight into the balloon's parsers: PFNs (biased
 * toward the edges of two RAM regions with a hole between them, past RAM and the top of the u32 range) in buffers split
 * anywhere, and report ranges with fuzzed address and length (around the edges, wrapping past 2^64, zero, up to
 * 4 GiB). Oracle: nothing throws; afterwards every page of the two regions is either untouched or all zeros, and the
 * zeroed ones are exactly the pages an inflate PFN named or a report range (inside one region) wholly covered; deflate
 * changes nothing. Replayed from the committed inputs by every test run; fuzzed with
 * {@code fuzz/run BalloonRangesFuzzTest}.
 */
class BalloonRangesFuzzTest {
    static final long PAGE = 4096;
    static final long LOW_PAGES = 64, HIGH_START = 128 * PAGE, HIGH_PAGES = 64, SCRATCH = 1 << 20;
    static final byte FILL = 0x5A;
    private static final HeapGuestMemory MEM = HeapGuestMemory.of(
            new MemoryRegion(GuestAddress.of(0), LOW_PAGES * PAGE),
            new MemoryRegion(GuestAddress.of(HIGH_START), HIGH_PAGES * PAGE),
            new MemoryRegion(GuestAddress.of(SCRATCH), 64 * 1024));
    private static final long[] EDGES = {0, LOW_PAGES * PAGE, HIGH_START, HIGH_START + HIGH_PAGES * PAGE, SCRATCH, -PAGE, 1L << 32};

    private static final byte[] ZEROS = new byte[(int) PAGE], FILLED = new byte[(int) PAGE], PAGE_BUF = new byte[(int) PAGE];

    static {
        Arrays.fill(FILLED, FILL);
    }

    static boolean ram(long page) {
        return page >= 0 && page < LOW_PAGES || page >= HIGH_START / PAGE && page < HIGH_START / PAGE + HIGH_PAGES;
    }

    static long address(FuzzedDataProvider data) {
        return switch (data.consumeInt(0, 2)) {
            case 0 -> EDGES[data.consumeInt(0, EDGES.length - 1)] + data.consumeInt(-3, 3) * PAGE + data.consumeInt(-2, 2);
            case 1 -> data.consumeLong(0, HIGH_START + HIGH_PAGES * PAGE + PAGE);
            default -> data.consumeLong();
        };
    }

    @FuzzTest(maxDuration = "1h")
    void hostilePfnsAndRangesDiscardExactlyWhatIsRam(FuzzedDataProvider data) {
        MEM.fill(GuestAddress.of(0), LOW_PAGES * PAGE, FILL);
        MEM.fill(GuestAddress.of(HIGH_START), HIGH_PAGES * PAGE, FILL);
        boolean[] expect = new boolean[(int) (HIGH_START / PAGE + HIGH_PAGES)];
        VirtioBalloon b = new VirtioBalloon();
        int steps = data.consumeInt(1, 6);
        for (int s = 0; s < steps && data.remainingBytes() > 0; s++) {
            int kind = data.consumeInt(0, 2);
            if (kind < 2) {
                // PFN chain: up to 64 PFNs in the scratch region, split over up to three descriptors at any byte
                int n = data.consumeInt(0, 64);
                ByteBuffer buf = ByteBuffer.allocate(n * 4 + 3).order(ByteOrder.LITTLE_ENDIAN);
                for (int i = 0; i < n; i++) {
                    long pfn = data.consumeBoolean() ? address(data) / PAGE : data.consumeInt();
                    buf.putInt((int) pfn);
                    long p = Integer.toUnsignedLong((int) pfn);
                    if (kind == 0 && p < expect.length && ram(p)) {
                        expect[(int) p] = true;
                    }
                }
                int len = n * 4 + data.consumeInt(0, 3); // a torn PFN at the end
                MEM.write(GuestAddress.of(SCRATCH), buf.array(), 0, len);
                List<Descriptor> ds = new ArrayList<>();
                int cut1 = data.consumeInt(0, len), cut2 = data.consumeInt(cut1, len);
                ds.add(new Descriptor(GuestAddress.of(SCRATCH), cut1, false));
                ds.add(new Descriptor(GuestAddress.of(SCRATCH + cut1), cut2 - cut1, false));
                ds.add(new Descriptor(GuestAddress.of(SCRATCH + cut2), len - cut2, false));
                if (data.consumeBoolean()) {
                    ds.add(new Descriptor(GuestAddress.of(SCRATCH + 32768), 64, true)); // writable: never read
                }
                assertEquals(0, b.pfns(DescriptorChain.of(MEM, 0, ds), kind == 0));
            } else {
                int n = data.consumeInt(1, 4);
                List<Descriptor> ds = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    long a = address(data);
                    int len = data.consumeBoolean() ? (int) (data.consumeInt(0, 8) * PAGE + data.consumeInt(-2, 2)) : data.consumeInt();
                    ds.add(new Descriptor(GuestAddress.of(a), len, data.consumeBoolean()));
                    long l = Integer.toUnsignedLong(len);
                    if (l > 0 && MEM.contains(GuestAddress.of(a), l)) {
                        long first = (a + PAGE - 1) / PAGE, end = (a + l) / PAGE; // a >= 0 here: inside RAM
                        for (long p = first; p < end; p++) {
                            if (p < expect.length && ram(p)) {
                                expect[(int) p] = true;
                            }
                        }
                    }
                }
                assertEquals(0, b.report(DescriptorChain.of(MEM, 0, ds)));
            }
        }
        for (int p = 0; p < expect.length; p++) {
            if (!ram(p)) {
                continue;
            }
            MEM.read(GuestAddress.of(p * PAGE), PAGE_BUF, 0, (int) PAGE);
            if (!Arrays.equals(PAGE_BUF, expect[p] ? ZEROS : FILLED)) {
                throw new AssertionError("page " + p + (expect[p] ? " should be discarded" : " should be untouched"));
            }
        }
        b.close();
    }
}
