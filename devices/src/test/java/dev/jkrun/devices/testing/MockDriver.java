package dev.jkrun.devices.testing;

import dev.jkrun.devices.virtio.MmioTransport;
import dev.jkrun.devices.virtio.VirtioDevice;
import dev.jkrun.memory.GuestMemory;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.Map;

/**
 * Drives a {@link MmioTransport} the way the Linux virtio-mmio driver does: 32-bit register accesses, the status
 * handshake (ACKNOWLEDGE → DRIVER → features → FEATURES_OK → queues → DRIVER_OK), and {@link DriverQueue}s laid
 * out in the test memory. Device tests reuse it: build the device, wrap it in a transport over a
 * {@code HeapGuestMemory}, call {@link #init(long)}, then add buffers and read the used rings.
 *
 * <p>Memory plan: rings from {@code ringBase} (0x1_0000 bytes per queue), buffers from {@code bufferBase}.
 */
public final class MockDriver {
    private final MmioTransport transport;
    private final GuestMemory mem;
    private final long ringBase;
    private final long bufferBase;
    private final long bufferPerQueue;
    private final Map<Integer, DriverQueue> queues = new HashMap<>();

    public MockDriver(MmioTransport transport, GuestMemory mem, long ringBase, long bufferBase, long bufferPerQueue) {
        this.transport = transport;
        this.mem = mem;
        this.ringBase = ringBase;
        this.bufferBase = bufferBase;
        this.bufferPerQueue = bufferPerQueue;
    }

    /** Defaults for a memory of at least 4 MiB starting at 0: rings at 0x10000, 64 KiB of buffers per queue at 0x200000. */
    public MockDriver(MmioTransport transport, GuestMemory mem) { this(transport, mem, 0x10000, 0x200000, 0x10000); }

    public MmioTransport transport() { return transport; }

    public GuestMemory memory() { return mem; }

    // ---- registers ------------------------------------------------------------------------------------------

    public int read(int offset) {
        byte[] d = new byte[4];
        transport.read(offset, d);
        return ByteBuffer.wrap(d).order(ByteOrder.LITTLE_ENDIAN).getInt();
    }

    public void write(int offset, int value) {
        transport.write(offset, ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(value).array());
    }

    public byte[] readConfig(int offset, int len) {
        byte[] d = new byte[len];
        transport.read(MmioTransport.CONFIG + offset, d);
        return d;
    }

    public int status() { return read(MmioTransport.STATUS); }

    public void setStatus(int s) { write(MmioTransport.STATUS, s); }

    /** Adds status bits to the current status, as Linux's virtio_add_status does. */
    public void addStatus(int bits) { setStatus(status() | bits); }

    public long deviceFeatures() {
        write(MmioTransport.DEVICE_FEATURES_SEL, 0);
        long lo = Integer.toUnsignedLong(read(MmioTransport.DEVICE_FEATURES));
        write(MmioTransport.DEVICE_FEATURES_SEL, 1);
        long hi = Integer.toUnsignedLong(read(MmioTransport.DEVICE_FEATURES));
        return hi << 32 | lo;
    }

    public void writeDriverFeatures(long f) {
        write(MmioTransport.DRIVER_FEATURES_SEL, 0);
        write(MmioTransport.DRIVER_FEATURES, (int) f);
        write(MmioTransport.DRIVER_FEATURES_SEL, 1);
        write(MmioTransport.DRIVER_FEATURES, (int) (f >>> 32));
    }

    // ---- handshake --------------------------------------------------------------------------------------------

    /** ACKNOWLEDGE, DRIVER, accept {@code wanted & offered} (plus VERSION_1), FEATURES_OK; returns the accepted set. */
    public long negotiate(long wanted) {
        setStatus(0);
        addStatus(MmioTransport.STATUS_ACKNOWLEDGE);
        addStatus(MmioTransport.STATUS_DRIVER);
        long accepted = (wanted | VirtioDevice.VIRTIO_F_VERSION_1) & deviceFeatures();
        writeDriverFeatures(accepted);
        addStatus(MmioTransport.STATUS_FEATURES_OK);
        if ((status() & MmioTransport.STATUS_FEATURES_OK) == 0) {
            throw new AssertionError("device refused FEATURES_OK");
        }
        return accepted;
    }

    /** Sets queue {@code index} up with {@code size} entries (0 = the device's maximum) and marks it ready. */
    public DriverQueue setupQueue(int index, int size) {
        write(MmioTransport.QUEUE_SEL, index);
        int max = read(MmioTransport.QUEUE_NUM_MAX);
        if (max == 0) {
            throw new AssertionError("queue " + index + " does not exist");
        }
        int n = size == 0 ? max : size;
        DriverQueue q = new DriverQueue(mem, n, ringBase + 0x10000L * index,
                bufferBase + bufferPerQueue * index, bufferPerQueue, () -> notifyQueue(index));
        write(MmioTransport.QUEUE_NUM, n);
        write(MmioTransport.QUEUE_DESC_LOW, (int) q.descTable().value());
        write(MmioTransport.QUEUE_DESC_HIGH, (int) (q.descTable().value() >>> 32));
        write(MmioTransport.QUEUE_AVAIL_LOW, (int) q.availRing().value());
        write(MmioTransport.QUEUE_AVAIL_HIGH, (int) (q.availRing().value() >>> 32));
        write(MmioTransport.QUEUE_USED_LOW, (int) q.usedRing().value());
        write(MmioTransport.QUEUE_USED_HIGH, (int) (q.usedRing().value() >>> 32));
        write(MmioTransport.QUEUE_READY, 1);
        queues.put(index, q);
        return q;
    }

    /** Negotiates {@code wanted}, sets up every queue at full size, sets DRIVER_OK; returns the accepted features. */
    public long init(long wanted) {
        long accepted = negotiate(wanted);
        int n = transport.queues().size();
        for (int i = 0; i < n; i++) {
            setupQueue(i, 0);
        }
        addStatus(MmioTransport.STATUS_DRIVER_OK);
        return accepted;
    }

    public DriverQueue queue(int index) { return queues.get(index); }

    /** Writes QueueNotify, as the guest would without an ioeventfd. */
    public void notifyQueue(int index) { write(MmioTransport.QUEUE_NOTIFY, index); }

    public int interruptStatus() { return read(MmioTransport.INTERRUPT_STATUS); }

    public void ackInterrupt(int bits) { write(MmioTransport.INTERRUPT_ACK, bits); }
}
