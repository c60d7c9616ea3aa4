package dev.jkrun.benchmarks;

import dev.jkrun.devices.virtio.queue.DescriptorChain;
import dev.jkrun.devices.virtio.queue.InvalidChainException;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.memory.HeapGuestMemory;
import java.util.Collection;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;
import org.openjdk.jmh.runner.options.VerboseMode;

/**
 * The split-virtqueue hot path on the device side ({@link Queue#pop} → {@link DescriptorChain} → {@link Queue#addUsed})
 * against {@link HeapGuestMemory}, with no VM: device logic only.
 *
 * <p>Ring layout (virtio 1.2 §2.7, as {@code DriverQueue} in the devices test kit lays it out): a queue of
 * {@value #QSIZE} entries; descriptor table at {@code 0x1000}, avail ring right after it, used ring 4-aligned after
 * that; buffers from {@code 0x10000}. The driver side is pre-built once: chain {@code c} (of {@value #QSIZE}/2) is
 * descriptors {@code 2c} (device-readable payload of {@code payloadBytes}) → {@code 2c+1} (device-writable 1-byte
 * status), like a virtio-blk/net request, and avail ring slot {@code k} permanently names chain {@code k mod QSIZE/2};
 * so "the driver makes one more chain available" is a single 16-bit store of avail idx, and each benchmark op is:
 * <ul>
 *   <li>{@code popAddUsed}: publish, pop (parse + validate the 2-descriptor chain), addUsed — the ring bookkeeping;</li>
 *   <li>{@code popCopyAddUsed}: the same plus reading the payload into a byte[] and writing the status byte through
 *       the chain's Reader/Writer — a whole request;</li>
 *   <li>{@code arraycopyBaseline}: copying the same bytes (payload + status) with System.arraycopy.</li>
 * </ul>
 * {@link #main} runs them (1 fork, 3×1 s warm-up, 3×1 s measurement) and prints ns/op and the ratios against the
 * baseline of the same payload size.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(1)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 3, time = 1)
public class QueueBench {
    static final int QSIZE = 256;
    private static final long DESC = 0x1000;
    private static final long AVAIL = DESC + 16L * QSIZE;
    private static final long USED = (AVAIL + 6 + 2L * QSIZE + 3) & ~3L;
    private static final long BUFFERS = 0x10000;

    @Param({"64", "1500", "4096"})
    public int payloadBytes;

    private GuestMemory mem;
    private Queue queue;
    private GuestAddress availIdxAddr;
    private short availIdx;
    private byte[] dst;
    private byte[] src;
    private final byte[] status = {0};
    private byte[] statusDst;

    @Setup(Level.Trial)
    public void setUp() {
        int chains = QSIZE / 2;
        long stride = (payloadBytes + 1 + 63) & ~63L;
        mem = HeapGuestMemory.of(0, (int) (BUFFERS + stride * chains + 4096));
        for (int c = 0; c < chains; c++) {
            long payload = BUFFERS + stride * c;
            writeDesc(2 * c, payload, payloadBytes, Queue.VRING_DESC_F_NEXT, 2 * c + 1);
            writeDesc(2 * c + 1, payload + payloadBytes, 1, Queue.VRING_DESC_F_WRITE, 0);
            for (long i = 0; i < payloadBytes; i++) {
                mem.writeByte(GuestAddress.of(payload + i), (byte) (c + i));
            }
        }
        for (int k = 0; k < QSIZE; k++) {
            mem.writeShort(GuestAddress.of(AVAIL + 4 + 2L * k), (short) (2 * (k % chains)));
        }
        queue = new Queue(QSIZE);
        queue.setSize(QSIZE);
        queue.setDescTable(GuestAddress.of(DESC));
        queue.setAvailRing(GuestAddress.of(AVAIL));
        queue.setUsedRing(GuestAddress.of(USED));
        queue.setReady(true);
        if (!queue.validate(mem).isEmpty()) {
            throw new IllegalStateException("bad ring layout: " + queue.validate(mem));
        }
        availIdxAddr = GuestAddress.of(AVAIL + 2);
        availIdx = 0;
        dst = new byte[payloadBytes];
        src = new byte[payloadBytes];
        statusDst = new byte[1];
    }

    private void writeDesc(int i, long addr, int len, int flags, int next) {
        long d = DESC + 16L * i;
        mem.writeLong(GuestAddress.of(d), addr);
        mem.writeInt(GuestAddress.of(d + 8), len);
        mem.writeShort(GuestAddress.of(d + 12), (short) flags);
        mem.writeShort(GuestAddress.of(d + 14), (short) next);
    }

    /** The driver's whole per-request work here: make one more (pre-built) chain available. */
    private void publish() { mem.writeShort(availIdxAddr, ++availIdx); }

    @Benchmark
    public int popAddUsed() throws InvalidChainException {
        publish();
        DescriptorChain c = queue.pop(mem).orElseThrow();
        queue.addUsed(mem, c.headIndex(), 0);
        return c.headIndex();
    }

    @Benchmark
    public int popCopyAddUsed() throws InvalidChainException {
        publish();
        DescriptorChain c = queue.pop(mem).orElseThrow();
        int n = c.reader().read(dst, 0, dst.length);
        var w = c.writer();
        w.write(status, 0, 1);
        queue.addUsed(mem, c.headIndex(), w.usedLength());
        return n + dst[0];
    }

    @Benchmark
    public int arraycopyBaseline() {
        System.arraycopy(src, 0, dst, 0, src.length);
        System.arraycopy(status, 0, statusDst, 0, 1);
        return dst[0] + statusDst[0];
    }

    /**
     * Runs the benchmarks in a forked JVM (1 fork, 3×1 s warm-up, 3×1 s measurement) and prints ns/op and the ratios
     * against the arraycopy baseline. Arguments: {@code verbose=true} shows JMH's own output.
     */
    public static void main(String[] args) throws Exception {
        Bench.Opts o = new Bench.Opts(args);
        boolean verbose = Boolean.parseBoolean(o.string("verbose", "false"));
        Options opts = new OptionsBuilder()
                .include(QueueBench.class.getName() + "\\.")
                .forks(1)
                .warmupIterations(3).warmupTime(TimeValue.seconds(1))
                .measurementIterations(3).measurementTime(TimeValue.seconds(1))
                .verbosity(verbose ? VerboseMode.NORMAL : VerboseMode.SILENT)
                .build();
        System.out.println("== QueueBench: split virtqueue device hot path on HeapGuestMemory vs System.arraycopy of the same bytes");
        System.out.println("   (JMH: 1 fork, 3x1 s warm-up, 3x1 s measurement per benchmark; ns/op, +- is JMH's 99.9% error)");
        System.out.flush();
        Collection<RunResult> results = new Runner(opts).run();
        Map<Integer, Map<String, double[]>> byPayload = new TreeMap<>();
        for (RunResult r : results) {
            String label = r.getParams().getBenchmark();
            String method = label.substring(label.lastIndexOf('.') + 1);
            int payload = Integer.parseInt(r.getParams().getParam("payloadBytes"));
            byPayload.computeIfAbsent(payload, k -> new TreeMap<>()).put(method,
                    new double[] {r.getPrimaryResult().getScore(), r.getPrimaryResult().getScoreError()});
        }
        double[] none = {Double.NaN, Double.NaN};
        Bench.line(System.out, "payload bytes (+1 status byte)", "arraycopy", "pop+addUsed", "+read/write", "ratio p+a", "ratio all");
        for (var e : byPayload.entrySet()) {
            double[] base = e.getValue().getOrDefault("arraycopyBaseline", none);
            double[] pu = e.getValue().getOrDefault("popAddUsed", none);
            double[] all = e.getValue().getOrDefault("popCopyAddUsed", none);
            Bench.line(System.out, String.valueOf(e.getKey()), pm(base), pm(pu), pm(all),
                    Bench.fmt(pu[0] / base[0]), Bench.fmt(all[0] / base[0]));
        }
        for (var e : byPayload.entrySet()) {
            double base = e.getValue().getOrDefault("arraycopyBaseline", none)[0];
            double pu = e.getValue().getOrDefault("popAddUsed", none)[0];
            double all = e.getValue().getOrDefault("popCopyAddUsed", none)[0];
            System.out.printf("RESULT queue payload=%d arraycopy_ns=%.1f pop_add_used_ns=%.1f pop_copy_add_used_ns=%.1f"
                    + " ratio_pop_add_used=%.2f ratio_pop_copy_add_used=%.2f%n", e.getKey(), base, pu, all, pu / base, all / base);
        }
    }

    private static String pm(double[] scoreAndError) {
        return Bench.fmt(scoreAndError[0]) + "+-" + Bench.fmt(scoreAndError[1]);
    }
}
