package dev.jkrun.benchmarks;

import dev.jkrun.devices.virtio.queue.DescriptorChain;
import dev.jkrun.devices.virtio.queue.InvalidChainException;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.memory.GuestMemoryImpl;
import dev.jkrun.memory.GuestWindow;
import dev.jkrun.memory.HeapGuestMemory;
import dev.jkrun.memory.MemoryRegion;
import dev.jkrun.memory.MmapGuestMemory;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
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
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;
import org.openjdk.jmh.runner.options.VerboseMode;

/**
 * The split-virtqueue hot path on the device side ({@link Queue#pop(GuestMemory, DescriptorChain)} into one reused
 * chain, as {@code QueueWorker} does → {@link DescriptorChain} → {@link Queue#addUsed})
 * with no VM: device logic only, over each guest-memory accessor this JVM has ({@code memory}: {@code unsafe-heap},
 * {@code unsafe-mmap}, and on JDK 22+ {@code ffm-heap}, {@code ffm-mmap}; heap is {@link HeapGuestMemory}, mmap is
 * {@link MmapGuestMemory} as a VM's RAM).
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
 *   <li>{@code arraycopyBaseline}: copying the same bytes (payload + status) with System.arraycopy;</li>
 *   <li>{@code floorPopAddUsed}: {@code popAddUsed}'s work written flat ({@link Floor}), the Java counterpart of
 *       {@code benchmarks/src/main/c/queue-floor.c}: what the JIT makes of the bare protocol and checks.</li>
 * </ul>
 * {@link #main} runs them (1 fork, 3×1 s warm-up, 3×1 s measurement) and prints ns/op, the ratios against the
 * baseline of the same payload size, and FFM's time over Unsafe's on the same backing.
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

    private byte[] dst;
    private byte[] src;
    private final byte[] status = {0};
    private byte[] statusDst;

    @Setup(Level.Trial)
    public void setUp() {
        dst = new byte[payloadBytes];
        src = new byte[payloadBytes];
        statusDst = new byte[1];
    }

    /** The rings in guest memory of one kind. Only the queue benchmarks take it, so the baseline runs once per size. */
    @State(Scope.Thread)
    public static class Ring {
        public Ring() {}
        @Param({"unsafe-heap", "unsafe-mmap", "ffm-heap", "ffm-mmap"})
        public String memory;

        GuestMemory mem;
        Queue queue;
        /** The chain every pop fills, as QueueWorker keeps one per queue. */
        final DescriptorChain chain = new DescriptorChain();
        private GuestWindow availIdxWindow;
        private short availIdx;

        @Setup(Level.Trial)
        public void setUp(QueueBench b) {
            int payloadBytes = b.payloadBytes;
            int chains = QSIZE / 2;
            long stride = (payloadBytes + 1 + 63) & ~63L;
            mem = create(memory, (BUFFERS + stride * chains + 4096 + 4095) & ~4095L);
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
            availIdxWindow = mem.window(GuestAddress.of(AVAIL + 2), 2);
            availIdx = 0;
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            if (mem instanceof MmapGuestMemory m) {
                m.close();
            }
        }

        private void writeDesc(int i, long addr, int len, int flags, int next) {
            long d = DESC + 16L * i;
            mem.writeLong(GuestAddress.of(d), addr);
            mem.writeInt(GuestAddress.of(d + 8), len);
            mem.writeShort(GuestAddress.of(d + 12), (short) flags);
            mem.writeShort(GuestAddress.of(d + 14), (short) next);
        }

        /**
         * The driver's whole per-request work here: make one more (pre-built) chain available. The driver is the
         * guest, not jkrun, so it stores as cheaply as jkrun can (a window, as the device's rings), like the floors'
         * raw store; through {@code GuestMemory.writeShort} it added ~1 ns with Unsafe and ~3 ns with FFM (the
         * arena's checks) to every figure.
         */
        void publish() { availIdxWindow.writeShort(0, ++availIdx); }
    }

    /** {@code <impl>-<heap|mmap>}: one region of {@code size} bytes at guest address 0. */
    static GuestMemory create(String kind, long size) {
        int dash = kind.indexOf('-');
        GuestMemoryImpl impl = GuestMemoryImpl.valueOf(kind.substring(0, dash).toUpperCase(Locale.ROOT));
        MemoryRegion region = new MemoryRegion(GuestAddress.ZERO, size);
        return switch (kind.substring(dash + 1)) {
            case "heap" -> HeapGuestMemory.of(impl, region);
            case "mmap" -> MmapGuestMemory.create(List.of(region), impl);
            default -> throw new IllegalArgumentException("memory kind " + kind + ": expected <unsafe|ffm>-<heap|mmap>");
        };
    }

    /** The memory kinds this JVM can run: both backings for every available accessor. */
    static List<String> availableKinds() {
        List<String> kinds = new ArrayList<>();
        for (GuestMemoryImpl impl : GuestMemoryImpl.available()) {
            kinds.add(impl.name().toLowerCase(Locale.ROOT) + "-heap");
            kinds.add(impl.name().toLowerCase(Locale.ROOT) + "-mmap");
        }
        return kinds;
    }

    @Benchmark
    public int popAddUsed(Ring r) throws InvalidChainException {
        r.publish();
        DescriptorChain c = pop(r);
        r.queue.addUsed(r.mem, c.headIndex(), 0);
        return c.headIndex();
    }

    @Benchmark
    public int popCopyAddUsed(Ring r) throws InvalidChainException {
        r.publish();
        DescriptorChain c = pop(r);
        int n = c.reader().read(dst, 0, dst.length);
        var w = c.writer();
        w.write(status, 0, 1);
        r.queue.addUsed(r.mem, c.headIndex(), w.usedLength());
        return n + dst[0];
    }

    private static DescriptorChain pop(Ring r) throws InvalidChainException {
        if (!r.queue.pop(r.mem, r.chain)) {
            throw new IllegalStateException("nothing available");
        }
        return r.chain;
    }

    /**
     * queue-floor.c in Java: the same device work with the same checks, written flat with Unsafe on raw addresses
     * (no GuestMemory, no windows, no snapshot): what Java itself costs for this work, against which popAddUsed's
     * own abstractions are measured.
     */
    @State(Scope.Thread)
    public static class Floor {
        public Floor() {}
        private static final sun.misc.Unsafe U = unsafe();
        long host;
        long size;
        long[] regionStart = {0};
        long[] regionSize = new long[1];
        long desc, avail, used;
        int qsize = QSIZE;
        boolean ready = true;
        boolean broken;
        short nextAvail, nextUsed, availIdx;
        int head, count, firstWritable;
        final long[] addrs = new long[4];
        final int[] lens = new int[4];
        long rlen, wlen;

        @Setup(Level.Trial)
        public void setUp(QueueBench b) {
            int payloadBytes = b.payloadBytes;
            int chains = QSIZE / 2;
            long stride = (payloadBytes + 1 + 63) & ~63L;
            size = (BUFFERS + stride * chains + 4096 + 4095) & ~4095L;
            host = U.allocateMemory(size);
            U.setMemory(host, size, (byte) 0);
            regionSize[0] = size;
            for (int c = 0; c < chains; c++) {
                long p = BUFFERS + stride * c;
                long d = host + DESC + 16L * (2 * c);
                U.putLong(d, p);
                U.putLong(d + 8, (payloadBytes & 0xFFFFFFFFL) | ((long) Queue.VRING_DESC_F_NEXT << 32) | ((long) (2 * c + 1) << 48));
                U.putLong(d + 16, p + payloadBytes);
                U.putLong(d + 24, 1L | ((long) Queue.VRING_DESC_F_WRITE << 32));
            }
            for (int k = 0; k < QSIZE; k++) {
                U.putShort(host + AVAIL + 4 + 2L * k, (short) (2 * (k % chains)));
            }
            desc = host + DESC;
            avail = host + AVAIL;
            used = host + USED;
        }

        @TearDown(Level.Trial)
        public void tearDown() { U.freeMemory(host); }

        private static sun.misc.Unsafe unsafe() {
            try {
                java.lang.reflect.Field f = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
                f.setAccessible(true);
                return (sun.misc.Unsafe) f.get(null);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        private boolean contains(long a, long len) {
            for (int i = 0; i < regionStart.length; i++) {
                long off = a - regionStart[i];
                if (Long.compareUnsigned(off, regionSize[i]) <= 0 && Long.compareUnsigned(len, regionSize[i] - off) <= 0) {
                    return true;
                }
            }
            return false;
        }

        /** 1: a chain; 0: nothing available; -1: a bad chain. */
        int pop() {
            if (!ready || broken) {
                return 0;
            }
            short idx = U.getShort(avail + 2);
            U.loadFence();
            int n = Short.toUnsignedInt((short) (idx - nextAvail));
            if (n == 0) {
                return 0;
            }
            if (n > qsize) {
                broken = true;
                return -1;
            }
            int h = Short.toUnsignedInt(U.getShort(avail + 4 + 2L * (nextAvail & (qsize - 1))));
            nextAvail++;
            head = h;
            count = 0;
            firstWritable = 0;
            rlen = wlen = 0;
            int index = h, visited = 0;
            while (true) {
                if (index >= qsize || ++visited > qsize) {
                    return -1;
                }
                long addr = U.getLong(desc + 16L * index);
                long lfn = U.getLong(desc + 16L * index + 8);
                long len = lfn & 0xFFFFFFFFL;
                int flags = (int) (lfn >>> 32) & 0xFFFF;
                int next = (int) (lfn >>> 48);
                if ((flags & 4) != 0) {
                    return -1;
                }
                boolean writable = (flags & 2) != 0;
                if (!writable && count > firstWritable) {
                    return -1;
                }
                if (Long.compareUnsigned(addr + len, addr) < 0) {
                    return -1;
                }
                if (len != 0 && !contains(addr, len)) {
                    return -1;
                }
                if (rlen + wlen + len > (1L << 32)) {
                    return -1;
                }
                if (count == 4) {
                    return -1;
                }
                addrs[count] = addr;
                lens[count] = (int) len;
                count++;
                if (writable) {
                    wlen += len;
                } else {
                    rlen += len;
                    firstWritable = count;
                }
                if ((flags & 1) == 0) {
                    return 1;
                }
                index = next;
            }
        }

        void addUsed(int h, int len) {
            if (!ready || broken) {
                return;
            }
            int slot = Short.toUnsignedInt(nextUsed) & (qsize - 1);
            U.putLong(used + 4 + 8L * slot, ((long) len << 32) | Integer.toUnsignedLong(h));
            nextUsed++;
            U.storeFence();
            U.putShort(used + 2, nextUsed);
        }
    }

    /** {@link Floor}: queue-floor.c's work in flat Java, under the same harness as {@link #popAddUsed}. */
    @Benchmark
    public int floorPopAddUsed(Floor f) {
        Floor.U.putShort(f.avail + 2, ++f.availIdx);
        if (f.pop() != 1) {
            throw new IllegalStateException("pop failed");
        }
        f.addUsed(f.head, 0);
        return f.head;
    }

    @Benchmark
    public int arraycopyBaseline() {
        System.arraycopy(src, 0, dst, 0, src.length);
        System.arraycopy(status, 0, statusDst, 0, 1);
        return dst[0] + statusDst[0];
    }

    /**
     * Runs the benchmarks in forked JVMs and prints ns/op, the ratios against the arraycopy baseline, and FFM over
     * Unsafe per backing. Arguments ({@code key=value}): {@code memory} (comma list, default every kind this JVM has),
     * {@code payload} (comma list, default 64,1500,4096), {@code rounds} (1: the whole JMH run repeated, so slow drift
     * on a shared machine hits every kind alike; the median round counts), {@code forks} (1), {@code warmup} (3 × 1 s),
     * {@code iterations} (3) of {@code time} ms (1000), {@code stat} ({@code mean}: JMH's score; {@code min}: the fastest
     * measurement iteration, which interference from other load can only make slower — use it with many short
     * iterations on a busy machine; {@code median}: the median iteration over every fork, which one fork that C2
     * compiled differently cannot move far — use it with several forks), {@code bench} (comma list of benchmark methods, default all four),
     * {@code verbose=true} (JMH's own output).
     */
    public static void main(String[] args) throws Exception {
        Bench.Opts o = new Bench.Opts(args);
        boolean verbose = Boolean.parseBoolean(o.string("verbose", "false"));
        String[] kinds = o.string("memory", String.join(",", availableKinds())).split(",");
        String[] payloads = o.string("payload", "64,1500,4096").split(",");
        int rounds = o.integer("rounds", 1), forks = o.integer("forks", 1);
        int warmup = o.integer("warmup", 3), iterations = o.integer("iterations", 3), time = o.integer("time", 1000);
        String stat = o.string("stat", "mean");
        if (!List.of("mean", "median", "min").contains(stat)) {
            throw new IllegalArgumentException("stat=mean|median|min");
        }
        String benches = o.string("bench", "popAddUsed,popCopyAddUsed,arraycopyBaseline,floorPopAddUsed").replace(',', '|');
        Options opts = new OptionsBuilder()
                .include(QueueBench.class.getName() + "\\.(" + benches + ")$")
                .param("memory", kinds)
                .param("payloadBytes", payloads)
                .forks(forks)
                .warmupIterations(warmup).warmupTime(TimeValue.seconds(1))
                .measurementIterations(iterations).measurementTime(TimeValue.milliseconds(time))
                .verbosity(verbose ? VerboseMode.NORMAL : VerboseMode.SILENT)
                .build();
        System.out.println("== QueueBench: split virtqueue device hot path per guest-memory accessor vs System.arraycopy of the same bytes");
        System.out.printf("   (JMH: %d fork(s), %dx1 s warm-up, %dx%d ms measurement per benchmark, %d round(s); ns/op, %s, median round;"
                + " +- is JMH's 99.9%% error of the mean in that round)%n", forks, warmup, iterations, time, rounds,
                stat.equals("mean") ? "mean" : stat.equals("min") ? "fastest iteration" : "median iteration");
        System.out.println("   memory kinds: " + String.join(", ", kinds) + " (on " + Runtime.version() + ")");
        System.out.flush();
        // payload -> memory kind ("" for the baseline) -> method -> one {score, error} per round
        Map<Integer, Map<String, Map<String, List<double[]>>>> res = new TreeMap<>();
        for (int round = 0; round < rounds; round++) {
            for (RunResult r : new Runner(opts).run()) {
                String label = r.getParams().getBenchmark();
                String method = label.substring(label.lastIndexOf('.') + 1);
                int payload = Integer.parseInt(r.getParams().getParam("payloadBytes"));
                String kind = method.equals("arraycopyBaseline") || method.equals("floorPopAddUsed") ? "" : r.getParams().getParam("memory");
                res.computeIfAbsent(payload, k -> new TreeMap<>()).computeIfAbsent(kind, k -> new TreeMap<>())
                        .computeIfAbsent(method, k -> new ArrayList<>())
                        .add(new double[] {statistic(r, stat), r.getPrimaryResult().getScoreError()});
            }
        }
        Bench.line(System.out, "payload bytes (+1 status byte)", "memory", "arraycopy", "pop+addUsed", "+read/write", "ratio p+a", "ratio all", "flat p+a");
        for (var e : res.entrySet()) {
            double[] base = median(e.getValue().get(""), "arraycopyBaseline");
            double[] floor = median(e.getValue().get(""), "floorPopAddUsed");
            for (String kind : kinds) {
                double[] pu = median(e.getValue().get(kind), "popAddUsed");
                double[] all = median(e.getValue().get(kind), "popCopyAddUsed");
                Bench.line(System.out, String.valueOf(e.getKey()), kind, pm(base), pm(pu), pm(all),
                        Bench.fmt(pu[0] / base[0]), Bench.fmt(all[0] / base[0]), pm(floor));
            }
        }
        List<String> ffmRows = new ArrayList<>();
        for (var e : res.entrySet()) {
            for (String backing : new String[] {"heap", "mmap"}) {
                Map<String, List<double[]>> u = e.getValue().get("unsafe-" + backing), f = e.getValue().get("ffm-" + backing);
                if (u == null || f == null) {
                    continue;
                }
                String[] cells = new String[2];
                String[] methods = {"popAddUsed", "popCopyAddUsed"};
                double[] ratios = new double[2];
                for (int m = 0; m < 2; m++) {
                    ratios[m] = median(f, methods[m])[0] / median(u, methods[m])[0];
                    double lo = Double.MAX_VALUE, hi = 0;
                    for (int round = 0; round < rounds; round++) {
                        double x = f.get(methods[m]).get(round)[0] / u.get(methods[m]).get(round)[0];
                        lo = Math.min(lo, x);
                        hi = Math.max(hi, x);
                    }
                    cells[m] = String.format("%.3f", ratios[m]) + (rounds > 1 ? String.format(" (%.2f..%.2f)", lo, hi) : "");
                }
                ffmRows.add(String.format("%d\t%s\t%s\t%s\t%.3f\t%.3f", e.getKey(), backing, cells[0], cells[1], ratios[0], ratios[1]));
            }
        }
        if (!ffmRows.isEmpty()) {
            System.out.println();
            System.out.printf("  %-44s%8s  %-22s  %-22s%n", "FFM / Unsafe time, same backing (rounds)", "backing", "pop+addUsed", "+read/write");
            for (String row : ffmRows) {
                String[] c = row.split("\t");
                System.out.printf("  %-44s%8s  %-22s  %-22s%n", c[0], c[1], c[2], c[3]);
            }
        }
        for (var e : res.entrySet()) {
            double base = median(e.getValue().get(""), "arraycopyBaseline")[0];
            double floor = median(e.getValue().get(""), "floorPopAddUsed")[0];
            for (String kind : kinds) {
                double pu = median(e.getValue().get(kind), "popAddUsed")[0];
                double all = median(e.getValue().get(kind), "popCopyAddUsed")[0];
                System.out.printf("RESULT queue payload=%d memory=%s arraycopy_ns=%.1f pop_add_used_ns=%.1f pop_copy_add_used_ns=%.1f"
                        + " ratio_pop_add_used=%.2f ratio_pop_copy_add_used=%.2f flat_java_pop_add_used_ns=%.1f%n", e.getKey(), kind,
                        base, pu, all, pu / base, all / base, floor);
            }
        }
        for (String row : ffmRows) {
            String[] c = row.split("\t");
            System.out.printf("RESULT queue_ffm_over_unsafe payload=%s backing=%s pop_add_used=%s pop_copy_add_used=%s%n", c[0], c[1], c[4], c[5]);
        }
    }

    /** JMH's mean score, or the median or fastest of the measurement iterations of every fork. */
    private static double statistic(RunResult r, String stat) {
        if (stat.equals("mean")) {
            return r.getPrimaryResult().getScore();
        }
        double[] its = r.getBenchmarkResults().stream().flatMap(b -> b.getIterationResults().stream())
                .mapToDouble(i -> i.getPrimaryResult().getScore()).sorted().toArray();
        return its.length == 0 ? Double.NaN : stat.equals("min") ? its[0] : its[its.length / 2];
    }

    /** The round with the median score of {@code method} (NaNs when it did not run). */
    private static double[] median(Map<String, List<double[]>> byMethod, String method) {
        List<double[]> rs = byMethod == null ? null : byMethod.get(method);
        if (rs == null || rs.isEmpty()) {
            return new double[] {Double.NaN, Double.NaN};
        }
        List<double[]> sorted = new ArrayList<>(rs);
        sorted.sort((a, b) -> Double.compare(a[0], b[0]));
        return sorted.get(sorted.size() / 2);
    }

    private static String pm(double[] scoreAndError) {
        return Bench.fmt(scoreAndError[0]) + "+-" + Bench.fmt(scoreAndError[1]);
    }
}
