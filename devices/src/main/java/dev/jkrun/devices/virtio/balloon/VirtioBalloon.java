package dev.jkrun.devices.virtio.balloon;

import dev.jkrun.devices.RateLimitedLog;
import dev.jkrun.devices.Trigger;
import dev.jkrun.devices.runtime.EventLoop;
import dev.jkrun.devices.virtio.ActivationContext;
import dev.jkrun.devices.virtio.ActiveQueue;
import dev.jkrun.devices.virtio.DeviceThreads;
import dev.jkrun.devices.virtio.QueueWorker;
import dev.jkrun.devices.virtio.VirtioDevice;
import dev.jkrun.devices.virtio.queue.Descriptor;
import dev.jkrun.devices.virtio.queue.DescriptorChain;
import dev.jkrun.devices.virtio.queue.InvalidChainException;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.devices.virtio.queue.Reader;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.memory.GuestMemoryException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * virtio-balloon (device id 5, virtio 1.2 section 5.5) as libkrun attaches it to every VM, with free page reporting:
 * pages the guest reports free, or puts in the balloon, are given back to the host (MADV_DONTNEED on their host
 * mapping, {@link GuestMemory#discard}), so the host RSS of a guest that freed memory falls.
 *
 * <p>Features: libkrun's STATS_VQ, FREE_PAGE_HINT and PAGE_REPORTING, plus DEFLATE_ON_OOM (libkrun does not offer
 * it: its inflate queue is unserved and its target never changes; here {@link #setTargetPages} can ask the guest to
 * inflate, and a guest that then runs out of memory should take pages back rather than kill processes), and the ring
 * features INDIRECT_DESC and EVENT_IDX. Queues, in the order virtio assigns them for the negotiated features (a queue
 * whose feature is not negotiated does not exist and the ones after it move down, as Linux numbers them since
 * "virtio_mmio: fix vq # when vq skipped" (5.14); with all of them negotiated, as libkrunfw's kernel does, this is
 * the fixed 0-4 of virtio 1.2's table): inflateq, deflateq, statsq (STATS_VQ), free_page_vq (FREE_PAGE_HINT), reporting_vq
 * (PAGE_REPORTING). Config space: num_pages (the target, set by the host), actual (written by the driver),
 * free_page_hint_cmd_id (always 0, VIRTIO_BALLOON_CMD_ID_STOP: hinting never starts, as in libkrun), poison_val (0;
 * PAGE_POISON is not offered).
 *
 * <p>Every PFN and range comes from the guest and is checked against guest RAM: a page or range not wholly inside one
 * RAM region (beyond RAM, in the MMIO hole, wrapping past 2^64, zero length) is skipped and counted, never discarded,
 * and nothing escapes the device. Per chain at most {@link #MAX_PFNS_PER_CHAIN} PFNs are read (Linux sends 256).
 * Deflated pages need nothing from the host (a touch faults a zeroed page in; MUST_TELL_HOST is not offered).
 */
public final class VirtioBalloon implements VirtioDevice {
    public static final int DEVICE_TYPE = 5;
    public static final int QUEUE_SIZE = 256;
    public static final int NUM_QUEUES = 5;
    public static final int F_STATS_VQ = 1, F_DEFLATE_ON_OOM = 2, F_FREE_PAGE_HINT = 3, F_PAGE_REPORTING = 5;
    public static final int CONFIG_SIZE = 16;
    /** PFNs read from one inflate or deflate chain; the rest are ignored. */
    public static final int MAX_PFNS_PER_CHAIN = 1 << 16;
    /** Stats entries kept from one stats buffer (Linux has 16 tags). */
    public static final int MAX_STATS = 64;
    public static final long PAGE_SIZE = GuestMemory.PAGE_SIZE;

    /** What each queue index is for, given the negotiated features. */
    public enum Role { INFLATE, DEFLATE, STATS, FREE_PAGE_HINT, REPORTING }

    /** The guest's latest memory statistics (virtio 1.2 §5.5.6.3): tag to value, in the order sent. */
    public record Stats(Map<Integer, Long> values, long receivedNanos) {
        public Stats {
            values = Collections.unmodifiableMap(new LinkedHashMap<>(values));
        }

        public Optional<Long> get(int tag) { return Optional.ofNullable(values.get(tag)); }
    }

    /** Tags of §5.5.6.3. */
    public static final int STAT_SWAP_IN = 0, STAT_SWAP_OUT = 1, STAT_MAJFLT = 2, STAT_MINFLT = 3, STAT_MEMFREE = 4,
            STAT_MEMTOT = 5, STAT_AVAIL = 6, STAT_CACHES = 7, STAT_HTLB_PGALLOC = 8, STAT_HTLB_PGFAIL = 9;

    private static final Logger LOG = LoggerFactory.getLogger(VirtioBalloon.class);
    private static final String NAME = "virtio-balloon";

    private final DeviceThreads threads = new DeviceThreads(NAME);
    private final RateLimitedLog failures = new RateLimitedLog(LOG, NAME);
    private final AtomicLong inflatedPages = new AtomicLong(), deflatedPages = new AtomicLong(),
            discardedBytes = new AtomicLong(), reportedBytes = new AtomicLong(), rejected = new AtomicLong();
    private volatile long acked;
    private volatile int targetPages;
    private volatile int actualPages;
    private volatile Stats stats;
    /** Between activate and reset. */
    private EventLoop loop;
    private ActivationContext ctx;
    private StatsQueue statsQueue;

    @Override
    public int deviceType() { return DEVICE_TYPE; }

    @Override
    public int[] queueMaxSizes() {
        int[] q = new int[NUM_QUEUES];
        java.util.Arrays.fill(q, QUEUE_SIZE);
        return q;
    }

    @Override
    public long availableFeatures() {
        return 1L << F_STATS_VQ | 1L << F_DEFLATE_ON_OOM | 1L << F_FREE_PAGE_HINT | 1L << F_PAGE_REPORTING
                | 1L << Queue.VIRTIO_RING_F_INDIRECT_DESC | 1L << Queue.VIRTIO_RING_F_EVENT_IDX;
    }

    @Override
    public void ackFeatures(long features) { acked = features; }

    /** Queue index to role for {@code features}: absent queues are left out and the later ones move down. */
    public static List<Role> roles(long features) {
        List<Role> r = new ArrayList<>(List.of(Role.INFLATE, Role.DEFLATE));
        if ((features & 1L << F_STATS_VQ) != 0) {
            r.add(Role.STATS);
        }
        if ((features & 1L << F_FREE_PAGE_HINT) != 0) {
            r.add(Role.FREE_PAGE_HINT);
        }
        if ((features & 1L << F_PAGE_REPORTING) != 0) {
            r.add(Role.REPORTING);
        }
        return List.copyOf(r);
    }

    @Override
    public void readConfig(long offset, byte[] data) {
        ByteBuffer b = ByteBuffer.allocate(CONFIG_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(targetPages).putInt(actualPages).putInt(0).putInt(0);
        VirtioDevice.readConfigBytes(b.array(), offset, data);
    }

    /** The driver writes {@code actual} (offset 4) after inflating or deflating; other fields are the device's. */
    @Override
    public synchronized void writeConfig(long offset, byte[] data) {
        if (offset >= 4 && offset + data.length <= 8 && data.length > 0) {
            byte[] cur = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(actualPages).array();
            System.arraycopy(data, 0, cur, (int) offset - 4, data.length);
            actualPages = ByteBuffer.wrap(cur).order(ByteOrder.LITTLE_ENDIAN).getInt();
            return;
        }
        failures.warn("{}: the driver wrote {} bytes at config offset {}; only actual (4..8) is the driver's", NAME,
                data.length, offset);
    }

    /**
     * Asks the guest to hold {@code pages} 4 KiB pages in the balloon (num_pages) and raises the config-change
     * interrupt when the driver is running; before that, the driver reads it when it starts. Unsigned 32-bit.
     */
    public void setTargetPages(int pages) {
        Trigger t;
        synchronized (this) {
            targetPages = pages;
            t = ctx == null ? null : ctx.configChanged();
        }
        if (t != null) {
            t.trigger();
        }
    }

    /** The target the host set (num_pages), unsigned. */
    public long targetPages() { return Integer.toUnsignedLong(targetPages); }

    /** Pages the driver says the balloon holds (actual), unsigned. */
    public long actualPages() { return Integer.toUnsignedLong(actualPages); }

    /** PFNs accepted from the inflate queue, and discarded, since creation. */
    public long inflatedPages() { return inflatedPages.get(); }

    /** PFNs accepted from the deflate queue since creation. */
    public long deflatedPages() { return deflatedPages.get(); }

    /** Bytes of free memory the guest reported and the host discarded since creation. */
    public long reportedBytes() { return reportedBytes.get(); }

    /** Bytes given back to the host through inflation and reporting. */
    public long discardedBytes() { return discardedBytes.get(); }

    /** PFNs and ranges refused (outside guest RAM, zero length, past the per-chain bound). */
    public long rejected() { return rejected.get(); }

    /** The guest's latest statistics, if it sent any (STATS_VQ negotiated). */
    public Optional<Stats> stats() { return Optional.ofNullable(stats); }

    /**
     * Asks the guest for fresh statistics by returning the stats buffer it posted (§5.5.6.3); the driver refills and
     * posts it again, and {@link #stats()} changes then. Returns whether a buffer was held to return (not yet one
     * before the driver posts its first, or without STATS_VQ).
     */
    public boolean requestStats() {
        StatsQueue s;
        EventLoop l;
        synchronized (this) {
            s = statsQueue;
            l = loop;
        }
        if (s == null || !s.holding()) {
            return false;
        }
        l.execute(s::giveBack);
        return true;
    }

    @Override
    public synchronized void activate(ActivationContext ctx) {
        if (loop != null) {
            throw new IllegalStateException(NAME + " already active");
        }
        List<Role> roles = roles(acked);
        EventLoop l = new EventLoop(NAME);
        StatsQueue sq = null;
        try {
            for (int i = 0; i < ctx.queues().size(); i++) {
                Role role = i < roles.size() ? roles.get(i) : null;
                ActiveQueue q = ctx.queue(i);
                if (role == Role.STATS) {
                    sq = new StatsQueue(ctx.memory(), q, ctx.usedBuffer());
                    sq.attach(l);
                    continue;
                }
                QueueWorker.Handler h = role == null ? chain -> 0 : switch (role) {
                    case INFLATE -> chain -> pfns(chain, true);
                    case DEFLATE -> chain -> pfns(chain, false);
                    case REPORTING -> this::report;
                    default -> chain -> 0; // free page hints: never started (cmd id stays STOP); returned unused
                };
                new QueueWorker(NAME + "-q" + i, ctx.memory(), q, ctx.usedBuffer(), h, failures).attach(l);
            }
            l.start(threads);
        } catch (RuntimeException | Error e) {
            l.close();
            throw e;
        }
        this.loop = l;
        this.ctx = ctx;
        this.statsQueue = sq;
    }

    @Override
    public DeviceThreads threads() { return threads; }

    @Override
    public synchronized boolean isActivated() { return loop != null; }

    @Override
    public synchronized void reset() {
        if (loop != null) {
            loop.close();
            loop = null;
            ctx = null;
            statsQueue = null;
            actualPages = 0; // a driver that starts again starts with an empty balloon
            acked = 0;
            failures.flush();
        }
    }

    @Override
    public synchronized void close() {
        reset();
        failures.flush();
    }

    /**
     * An inflate or deflate chain: little-endian u32 PFNs of 4 KiB pages in its readable part. Inflated pages in
     * RAM are discarded, contiguous runs in one call; the rest are counted as rejected. Writes nothing.
     */
    int pfns(DescriptorChain chain, boolean inflate) {
        GuestMemory mem = chain.memory();
        Reader r = chain.reader();
        long total = r.available() / 4;
        long count = Math.min(total, MAX_PFNS_PER_CHAIN);
        if (total > count) {
            rejected.addAndGet(total - count);
            failures.warn("{}: a chain of {} PFNs; all past the first {} are ignored", NAME, total, MAX_PFNS_PER_CHAIN);
        }
        if ((r.available() & 3) != 0) {
            LOG.debug("{}: {} bytes of PFNs is not a whole number of them; the last {} ignored", NAME, r.available(), r.available() & 3);
        }
        byte[] block = new byte[4096];
        ByteBuffer b = ByteBuffer.wrap(block).order(ByteOrder.LITTLE_ENDIAN);
        long runStart = -1, runPages = 0;
        for (long done = 0; done < count && !DeviceThreads.stopRequested(); ) {
            int want = (int) Math.min(block.length / 4, count - done) * 4;
            int got = r.read(block, 0, want);
            if (got < want) { // the queue layer checked the buffers: cannot happen
                failures.warn("{}: a PFN buffer ended early ({} of {} bytes)", NAME, got, want);
                count = done + got / 4;
            }
            for (int i = 0; i + 4 <= got; i += 4) {
                long pfn = Integer.toUnsignedLong(b.getInt(i));
                long addr = pfn * PAGE_SIZE; // < 2^44: no overflow
                if (!mem.contains(GuestAddress.of(addr), PAGE_SIZE)) {
                    rejected.incrementAndGet();
                    LOG.debug("{}: PFN {} is not guest RAM; ignored", NAME, pfn);
                    continue;
                }
                if (runStart >= 0 && addr == runStart + runPages * PAGE_SIZE
                        && mem.contains(GuestAddress.of(runStart), (runPages + 1) * PAGE_SIZE)) {
                    runPages++;
                } else {
                    flush(mem, runStart, runPages, inflate);
                    runStart = addr;
                    runPages = 1;
                }
            }
            done += got / 4;
            if (got < want) {
                break;
            }
        }
        flush(mem, runStart, runPages, inflate);
        return 0;
    }

    private void flush(GuestMemory mem, long start, long pages, boolean inflate) {
        if (start < 0 || pages == 0) {
            return;
        }
        if (!inflate) {
            deflatedPages.addAndGet(pages);
            return;
        }
        inflatedPages.addAndGet(pages);
        discard(mem, start, pages * PAGE_SIZE);
    }

    /**
     * A free page report: each descriptor (Linux posts them device-writable; either direction is taken) is a range
     * of free guest memory. Ranges inside one RAM region are discarded (whole pages); others are refused. Returns 0.
     */
    int report(DescriptorChain chain) {
        GuestMemory mem = chain.memory();
        for (Descriptor d : chain.descriptors()) {
            if (DeviceThreads.stopRequested()) {
                break;
            }
            long len = d.length();
            if (len == 0 || !mem.contains(d.addr(), len)) {
                rejected.incrementAndGet();
                LOG.debug("{}: reported range {} + {} is not guest RAM; ignored", NAME, d.addr(), len);
                continue;
            }
            reportedBytes.addAndGet(discard(mem, d.addr().value(), len));
        }
        return 0;
    }

    private long discard(GuestMemory mem, long addr, long len) {
        try {
            long n = mem.discard(GuestAddress.of(addr), len);
            discardedBytes.addAndGet(n);
            return n;
        } catch (GuestMemoryException e) {
            rejected.incrementAndGet();
            return 0;
        } catch (RuntimeException e) {
            failures.warn("{}: discarding {} bytes at 0x{} failed: {}", NAME, len, Long.toHexString(addr), e.toString());
            return 0;
        }
    }

    /**
     * The stats queue (§5.5.6.3): the driver posts one buffer of {tag u16, val u64} entries; the device reads it,
     * keeps it, and returns it (used length 0) to ask for the next. A second buffer while one is held sends the
     * older back. On the loop thread.
     */
    private final class StatsQueue {
        private final GuestMemory mem;
        private final Queue queue;
        private final ActiveQueue active;
        private final Trigger interrupt;
        private volatile int held = -1;

        StatsQueue(GuestMemory mem, ActiveQueue q, Trigger interrupt) {
            this.mem = mem;
            this.queue = q.queue();
            this.active = q;
            this.interrupt = interrupt;
        }

        boolean holding() { return held >= 0; }

        void attach(EventLoop l) {
            l.register(active.notification().fd().raw(), EventLoop.IN, events -> {
                active.notification().await();
                drain();
            });
            l.execute(this::drain);
        }

        void drain() {
            if (!queue.isReady()) {
                return;
            }
            int guard = 0;
            while (!DeviceThreads.stopRequested() && guard++ < 2 * QUEUE_SIZE) {
                Optional<DescriptorChain> c;
                try {
                    c = queue.pop(mem);
                } catch (InvalidChainException e) {
                    LOG.debug("{}: malformed stats chain: {}", NAME, e.getMessage());
                    if (!e.isChainError()) {
                        return;
                    }
                    used(e.headIndex());
                    continue;
                }
                if (c.isEmpty()) {
                    if (!queue.enableNotification(mem)) {
                        return;
                    }
                    continue;
                }
                DescriptorChain chain = c.get();
                try {
                    stats = parse(chain);
                } catch (RuntimeException | InvalidChainException e) {
                    failures.warn("{}: stats buffer unreadable: {}", NAME, e.toString());
                }
                int old = held;
                held = chain.headIndex();
                if (old >= 0) {
                    used(old);
                }
            }
        }

        void giveBack() {
            int h = held;
            if (h >= 0) {
                held = -1;
                used(h);
            }
        }

        private void used(int head) {
            queue.addUsed(mem, head, 0);
            if (queue.needsNotification(mem)) {
                interrupt.trigger();
            }
        }
    }

    static Stats parse(DescriptorChain chain) throws InvalidChainException {
        Reader r = chain.reader();
        Map<Integer, Long> m = new LinkedHashMap<>();
        int n = 0;
        while (r.available() >= 10 && n++ < MAX_STATS) {
            int tag = Short.toUnsignedInt(r.readShort());
            long val = r.readLong();
            m.put(tag, val);
        }
        return new Stats(m, System.nanoTime());
    }
}
