package dev.jkrun.devices.virtio.vsock;

import dev.jkrun.devices.testing.DriverQueue;
import dev.jkrun.devices.testing.MockDriver;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import java.util.ArrayDeque;
import java.util.Optional;

/**
 * A guest driver's view of a running {@link VirtioVsock}'s queues, as Linux's virtio_vsock uses them: a fixed set of
 * rx buffers (one descriptor each, reposted as soon as read) and tx slots (one descriptor per packet, reclaimed from
 * the used ring). The device runs on its own thread; everything here runs on the test's.
 */
final class QueueGuest {
    static final int RX_BUFFERS = 128, RX_PAYLOAD = 4096, TX_SLOT = VsockHeader.SIZE + VsockHeader.MAX_PAYLOAD;
    static final int TX_SLOTS = 64;
    private final GuestMemory mem;
    private final DriverQueue rx;
    private final DriverQueue tx;
    private final long[] rxAddr = new long[RX_BUFFERS];
    private final long[] txAddr = new long[TX_SLOTS];
    private final ArrayDeque<Integer> freeTx = new ArrayDeque<>();

    QueueGuest(MockDriver drv) {
        this.mem = drv.memory();
        this.rx = drv.queue(VirtioVsock.RX);
        this.tx = drv.queue(VirtioVsock.TX);
        for (int i = 0; i < RX_BUFFERS; i++) {
            rxAddr[i] = rx.alloc(VsockHeader.SIZE + RX_PAYLOAD);
            postRx(i);
        }
        for (int i = 0; i < TX_SLOTS; i++) {
            txAddr[i] = tx.alloc(TX_SLOT);
            freeTx.add(i);
        }
        rx.kick();
    }

    private void postRx(int i) {
        rx.writeDescriptor(i, rxAddr[i], VsockHeader.SIZE + RX_PAYLOAD, Queue.VRING_DESC_F_WRITE, 0);
        rx.publish(i);
    }

    /** Sends raw bytes as one tx descriptor (any bytes: malformed packets too). */
    void sendRaw(byte[] bytes) {
        if (bytes.length > TX_SLOT) {
            throw new IllegalArgumentException("tx slot too small");
        }
        while (freeTx.isEmpty()) {
            reclaimTx();
            if (freeTx.isEmpty()) {
                Thread.onSpinWait();
            }
        }
        int i = freeTx.poll();
        mem.write(GuestAddress.of(txAddr[i]), bytes);
        tx.writeDescriptor(i, txAddr[i], bytes.length, 0, 0);
        tx.publish(i);
        tx.kick();
    }

    void send(VsockPacket p) {
        byte[] h = p.header().encode();
        byte[] b = new byte[h.length + p.payload().length];
        System.arraycopy(h, 0, b, 0, h.length);
        System.arraycopy(p.payload(), 0, b, h.length, p.payload().length);
        sendRaw(b);
    }

    private void reclaimTx() {
        Optional<DriverQueue.Used> u;
        while ((u = tx.pollUsed()).isPresent()) {
            freeTx.add(u.get().id());
        }
    }

    /** The next packet the device put in an rx buffer, or null; the buffer goes back at once. */
    VsockPacket receive() {
        reclaimTx();
        Optional<DriverQueue.Used> u = rx.pollUsed();
        if (u.isEmpty()) {
            return null;
        }
        int i = u.get().id();
        int len = u.get().len();
        byte[] b = new byte[len];
        mem.read(GuestAddress.of(rxAddr[i]), b, 0, len);
        postRx(i);
        rx.kick();
        if (len < VsockHeader.SIZE) {
            throw new AssertionError("rx packet of " + len + " bytes");
        }
        VsockHeader h = VsockHeader.decode(b);
        if (VsockHeader.SIZE + h.lenUnsigned() != len) {
            throw new AssertionError("used length " + len + " for " + h);
        }
        return new VsockPacket(h, java.util.Arrays.copyOfRange(b, VsockHeader.SIZE, len));
    }

    TestGuest guest() {
        TestGuest g = new TestGuest(this::send, this::receive);
        g.raw = this::sendRaw;
        return g;
    }
}
