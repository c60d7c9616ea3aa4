package dev.jkrun.benchmarks;

import static dev.jkrun.devices.virtio.vsock.VsockHeader.*;

import dev.jkrun.devices.virtio.ActivationContext;
import dev.jkrun.devices.virtio.ActiveQueue;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.devices.virtio.vsock.VirtioVsock;
import dev.jkrun.devices.virtio.vsock.VsockHeader;
import dev.jkrun.libc.EventFd;
import dev.jkrun.libc.Poll;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.memory.MemoryRegion;
import dev.jkrun.memory.MmapGuestMemory;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/**
 * A guest's virtio-vsock driver for {@link VsockThroughput}: a running {@link VirtioVsock} (its own event-loop
 * thread, host sockets) activated directly with rings in mmap'd guest memory, and this class on the calling thread
 * as the guest, the way Linux's virtio_transport uses the queues: the whole rx ring full of buffers of {@code rxBuf}
 * payload bytes (Linux: 4 KiB), reposted as soon as read; tx packets of at most 64 KiB, one descriptor each (header +
 * payload), from {@value #TX_SLOTS} slots reclaimed from the used ring; a notification only when the device has not
 * set VRING_USED_F_NO_NOTIFY; interrupts wake the guest thread (unpark). Payload is copied into guest memory on send
 * and out of it on receive (what the guest kernel's copy from/to user space costs). One connection at a time, with
 * both credit windows (5.10.6.3); the guest advertises {@value #GUEST_BUF_ALLOC} bytes and sends CREDIT_UPDATE when
 * half of it was consumed.
 *
 * <p>Not a test kit: it checks only what the benchmark needs. It counts stalls, waits of more than
 * {@value #STALL_MILLIS} ms in which nothing moved while tx packets were in the ring (a slow device thread: a GC
 * pause, a loaded machine), and lost notifications: still nothing after {@value #LOST_MILLIS} ms while the device had
 * VRING_USED_F_NO_NOTIFY clear (it was not working on the queue) and had read every notification we sent; it then
 * notifies again, so a lost notification shows in the count instead of hanging the run.
 */
final class VsockDriver implements AutoCloseable {
    static final int QSIZE = VirtioVsock.QUEUE_SIZE;
    static final int TX_SLOTS = 128;
    static final int GUEST_BUF_ALLOC = 256 * 1024;
    static final long STALL_MILLIS = 20, LOST_MILLIS = 1000;
    private static final long RINGS = 0x10000, RX_BUFFERS = 0x100000, TX_BUFFERS = 0x800000;
    private static final long MEM_SIZE = 32L << 20;

    private final MmapGuestMemory mem;
    private final VirtioVsock dev;
    private final EventFd[] kicks = new EventFd[3];
    private final Ring rx;
    private final Ring tx;
    private final int rxBuf;
    private final long[] txAddr = new long[TX_SLOTS];
    private final ArrayDeque<Integer> freeTx = new ArrayDeque<>();
    private final AtomicLong interrupts = new AtomicLong();
    private volatile Thread waiter;
    private final byte[] hdr = new byte[SIZE];
    private final byte[] rxData;
    private int nextPort = 50000;
    /** Waits of more than {@value #STALL_MILLIS} ms without progress while tx packets were in the ring. */
    long stalls;
    /** Of those, waits of {@value #LOST_MILLIS} ms with the device idle and no notification unread (then sent again). */
    long lostNotifications;
    /** Never signalled: {@link Poll#awaitReadable} wants a wake-up descriptor. */
    private final EventFd never = new EventFd();
    long kicksSent;

    /** The guest's side of one stream connection. */
    static final class Conn {
        final int local, remote;
        boolean established, reset;
        int peerShutdown;
        long received;
        int rxCnt, fwdCnt, lastFwdCntSent;
        int txCnt, peerBufAlloc, peerFwdCnt;

        Conn(int local, int remote) {
            this.local = local;
            this.remote = remote;
        }

        int peerCredit() {
            return (int) Math.max(0, Integer.toUnsignedLong(peerBufAlloc) - Integer.toUnsignedLong(txCnt - peerFwdCnt));
        }
    }

    private Conn conn;

    VsockDriver(VirtioVsock dev, int rxBuf) {
        if (rxBuf < 1 || rxBuf > MAX_PAYLOAD) {
            throw new IllegalArgumentException("rx_buf " + rxBuf + " is not in 1..65536");
        }
        this.dev = dev;
        this.rxBuf = rxBuf;
        this.rxData = new byte[MAX_PAYLOAD];
        this.mem = MmapGuestMemory.create(List.of(new MemoryRegion(GuestAddress.ZERO, MEM_SIZE)));
        if (RX_BUFFERS + (long) QSIZE * (SIZE + rxBuf) > TX_BUFFERS) {
            throw new IllegalStateException("rx buffers overlap tx");
        }
        rx = new Ring(mem, RINGS);
        tx = new Ring(mem, RINGS + 0x10000);
        Ring event = new Ring(mem, RINGS + 0x20000);
        List<ActiveQueue> queues = new ArrayList<>();
        Ring[] rings = {rx, tx, event};
        for (int q = 0; q < 3; q++) {
            kicks[q] = new EventFd();
            queues.add(new ActiveQueue(rings[q].deviceQueue(), kicks[q]));
        }
        dev.activate(new ActivationContext(mem, queues, this::interrupt, () -> { }));
        for (int i = 0; i < QSIZE; i++) {
            rx.writeDesc(i, RX_BUFFERS + (long) i * (SIZE + rxBuf), SIZE + rxBuf, Queue.VRING_DESC_F_WRITE);
            rx.publish(i);
        }
        kick(rx, VirtioVsock.RX);
        for (int i = 0; i < TX_SLOTS; i++) {
            txAddr[i] = TX_BUFFERS + (long) i * (SIZE + MAX_PAYLOAD);
            freeTx.add(i);
        }
        if (txAddr[TX_SLOTS - 1] + SIZE + MAX_PAYLOAD > MEM_SIZE) {
            throw new IllegalStateException("tx slots beyond guest memory");
        }
    }

    private void interrupt() {
        interrupts.incrementAndGet();
        Thread w = waiter;
        if (w != null) {
            LockSupport.unpark(w);
        }
    }

    /** Wakes {@link #until} from another thread (a host socket's end finished). */
    void wake() {
        Thread w = waiter;
        if (w != null) {
            LockSupport.unpark(w);
        }
    }

    // ---- connections ------------------------------------------------------------------------------------------

    /** connect(CID 2, port): REQUEST, then the RESPONSE (or RST). */
    Conn connect(int port, long timeoutMs) {
        Conn c = new Conn(nextPort, port);
        nextPort = nextPort == 0x7fffffff ? 50000 : nextPort + 1;
        conn = c;
        send(header(c, OP_REQUEST, 0, 0), null, 0);
        kick(tx, VirtioVsock.TX);
        until(() -> c.established || c.reset, timeoutMs, "the RESPONSE");
        return c;
    }

    /** Sends {@code bytes} bytes on {@code c} as credit allows, in packets of at most 64 KiB; returns when all went. */
    void write(Conn c, long bytes, byte[] data, long timeoutMs) {
        long[] left = {bytes};
        until(() -> {
            boolean sent = false;
            while (left[0] > 0 && !c.reset) {
                int n = (int) Math.min(Math.min(left[0], MAX_PAYLOAD), c.peerCredit());
                if (n == 0 || !reclaimTx()) {
                    break;
                }
                send(header(c, OP_RW, 0, n), data, n);
                c.txCnt += n;
                left[0] -= n;
                sent = true;
            }
            if (sent) {
                kick(tx, VirtioVsock.TX);
            }
            return left[0] == 0 || c.reset;
        }, timeoutMs, "credit to send " + bytes + " bytes");
        if (c.reset) {
            throw new IllegalStateException("vsock connection reset while sending");
        }
    }

    /** SHUTDOWN with both flags (close()), then the device's RST. */
    void close(Conn c, long timeoutMs) {
        if (!c.reset) {
            send(header(c, OP_SHUTDOWN, SHUTDOWN_RCV | SHUTDOWN_SEND, 0), null, 0);
            kick(tx, VirtioVsock.TX);
            until(() -> c.reset, timeoutMs, "the RST after close");
        }
        conn = null;
    }

    /**
     * Polls the rings and runs {@code done} until it holds, sleeping until an interrupt (or {@link #wake}) when
     * nothing moved; counts stalls and lost notifications (see the class comment).
     */
    void until(BooleanSupplier done, long timeoutMs, String what) {
        waiter = Thread.currentThread();
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        long idleSince = System.nanoTime();
        boolean stalled = false;
        try {
            while (true) {
                long seen = interrupts.get();
                int free = freeTx.size();
                reclaimTx();
                boolean moved = pollRx() | freeTx.size() != free;
                if (done.getAsBoolean()) {
                    return;
                }
                long now = System.nanoTime();
                if (moved) {
                    idleSince = now;
                    stalled = false;
                    continue;
                }
                if (now > deadline) {
                    throw new IllegalStateException("vsock driver: timed out waiting for " + what);
                }
                if (freeTx.size() < TX_SLOTS && now - idleSince > TimeUnit.MILLISECONDS.toNanos(STALL_MILLIS)) {
                    if (!stalled) {
                        stalled = true;
                        stalls++;
                    }
                    // Lost: still nothing after LOST_MILLIS, the device not working on the queue (NO_NOTIFY clear)
                    // and no notification of ours unread: it waits for one that never came. Notify again.
                    if (now - idleSince > TimeUnit.MILLISECONDS.toNanos(LOST_MILLIS)
                            && (tx.usedFlags() & Queue.VRING_USED_F_NO_NOTIFY) == 0
                            && Poll.awaitReadable(kicks[VirtioVsock.TX].fd().raw(), never, 0) != Poll.Ready.READABLE) {
                        lostNotifications++;
                        kicks[VirtioVsock.TX].signal();
                        idleSince = now;
                    }
                }
                if (interrupts.get() == seen) {
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(1));
                }
            }
        } finally {
            waiter = null;
        }
    }

    // ---- packets ------------------------------------------------------------------------------------------------

    private static VsockHeader header(Conn c, int op, int flags, int len) {
        c.lastFwdCntSent = c.fwdCnt;
        return new VsockHeader(GUEST_CID, HOST_CID, c.local, c.remote, len, TYPE_STREAM, op, flags, GUEST_BUF_ALLOC,
                c.fwdCnt);
    }

    /** One tx packet: header and {@code len} bytes of {@code data} copied into a free slot, published (no kick). */
    private void send(VsockHeader h, byte[] data, int len) {
        long waitUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!reclaimTx()) {
            if (System.nanoTime() > waitUntil) {
                throw new IllegalStateException("vsock driver: no tx slot came back in 30 s");
            }
            kick(tx, VirtioVsock.TX);
            LockSupport.parkNanos(TimeUnit.MICROSECONDS.toNanos(50));
        }
        int i = freeTx.poll();
        mem.write(GuestAddress.of(txAddr[i]), h.encode());
        if (len > 0) {
            mem.write(GuestAddress.of(txAddr[i] + SIZE), data, 0, len);
        }
        tx.writeDesc(i, txAddr[i], SIZE + len, 0);
        tx.publish(i);
    }

    /** Takes back the tx slots the device used; whether one is free. */
    private boolean reclaimTx() {
        int id;
        while ((id = tx.pollUsed()) >= 0) {
            freeTx.add(id);
        }
        return !freeTx.isEmpty();
    }

    /** Reads every used rx buffer into the connection's state and reposts it; whether any came. */
    private boolean pollRx() {
        boolean any = false;
        int id;
        while ((id = rx.pollUsed()) >= 0) {
            any = true;
            int len = rx.lastUsedLen;
            long at = RX_BUFFERS + (long) id * (SIZE + rxBuf);
            if (len >= SIZE) {
                mem.read(GuestAddress.of(at), hdr, 0, SIZE);
                VsockHeader h = VsockHeader.decode(hdr);
                int payload = Math.min(len - SIZE, h.len());
                if (payload > 0) {
                    mem.read(GuestAddress.of(at + SIZE), rxData, 0, payload);
                }
                onPacket(h, payload);
            }
            rx.publish(id);
        }
        if (any) {
            kick(rx, VirtioVsock.RX);
        }
        return any;
    }

    private void onPacket(VsockHeader h, int payload) {
        Conn c = conn;
        if (c == null || h.dstPort() != c.local || h.srcPort() != c.remote) {
            return; // an earlier connection's late packet
        }
        if (h.op() == OP_RST) {
            c.reset = true;
            return;
        }
        c.peerBufAlloc = h.bufAlloc();
        c.peerFwdCnt = h.fwdCnt();
        switch (h.op()) {
            case OP_RESPONSE -> c.established = true;
            case OP_RW -> {
                c.received += payload;
                c.rxCnt += payload;
                c.fwdCnt = c.rxCnt; // the application reads at once
                if (Integer.toUnsignedLong(c.fwdCnt - c.lastFwdCntSent) >= GUEST_BUF_ALLOC / 2) {
                    send(header(c, OP_CREDIT_UPDATE, 0, 0), null, 0);
                    kick(tx, VirtioVsock.TX);
                }
            }
            case OP_CREDIT_REQUEST -> {
                send(header(c, OP_CREDIT_UPDATE, 0, 0), null, 0);
                kick(tx, VirtioVsock.TX);
            }
            case OP_SHUTDOWN -> c.peerShutdown |= h.flags();
            default -> { }
        }
    }

    /** Notifies queue {@code q} unless the device said it needs no notification (after a full fence, as Linux). */
    private void kick(Ring r, int q) {
        mem.fullFence();
        if ((r.usedFlags() & Queue.VRING_USED_F_NO_NOTIFY) == 0) {
            kicksSent++;
            kicks[q].signal();
        }
    }

    @Override
    public void close() {
        dev.reset();
        for (EventFd k : kicks) {
            if (k != null) {
                k.close();
            }
        }
        never.close();
        // As the VMM: unmap only once the device's threads have ended; a straggler keeps the range mapped (retired),
        // since ring windows are checked by jkrun alone and an access racing the unmap would fault.
        if (dev.threads().alive().isEmpty()) {
            mem.close();
        } else {
            mem.retire();
        }
    }

    /** The driver's side of one split virtqueue of {@value #QSIZE} entries at {@code base}. */
    private static final class Ring {
        private final GuestMemory mem;
        private final long desc, avail, used;
        private short availIdx;
        private short lastUsed;
        int lastUsedLen;

        Ring(GuestMemory mem, long base) {
            this.mem = mem;
            this.desc = base;
            this.avail = base + 16L * QSIZE;
            this.used = (avail + 6 + 2L * QSIZE + 3) & ~3L;
            mem.fill(GuestAddress.of(base), used + 6 + 8L * QSIZE - base, (byte) 0);
        }

        Queue deviceQueue() {
            Queue q = new Queue(QSIZE);
            q.setSize(QSIZE);
            q.setDescTable(GuestAddress.of(desc));
            q.setAvailRing(GuestAddress.of(avail));
            q.setUsedRing(GuestAddress.of(used));
            q.setReady(true);
            return q;
        }

        void writeDesc(int i, long addr, int len, int flags) {
            long d = desc + 16L * i;
            mem.writeLong(GuestAddress.of(d), addr);
            mem.writeInt(GuestAddress.of(d + 8), len);
            mem.writeShort(GuestAddress.of(d + 12), (short) flags);
            mem.writeShort(GuestAddress.of(d + 14), (short) 0);
        }

        void publish(int head) {
            mem.writeShort(GuestAddress.of(avail + 4 + 2L * (Short.toUnsignedInt(availIdx) % QSIZE)), (short) head);
            availIdx++;
            mem.writeShortRelease(GuestAddress.of(avail + 2), availIdx);
        }

        int usedFlags() { return Short.toUnsignedInt(mem.readShort(GuestAddress.of(used))); }

        boolean hasUsed() {
            return Short.toUnsignedInt(mem.readShortAcquire(GuestAddress.of(used + 2))) != Short.toUnsignedInt(lastUsed);
        }

        /** The next used element's id (its length in {@link #lastUsedLen}), or -1. */
        int pollUsed() {
            if (!hasUsed()) {
                return -1;
            }
            long e = used + 4 + 8L * (Short.toUnsignedInt(lastUsed) % QSIZE);
            lastUsed++;
            lastUsedLen = mem.readInt(GuestAddress.of(e + 4));
            return mem.readInt(GuestAddress.of(e));
        }
    }
}
