package dev.jkrun.devices.virtio;

import dev.jkrun.devices.RateLimitedLog;
import dev.jkrun.devices.Trigger;
import dev.jkrun.devices.bus.BusDevice;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.devices.virtio.queue.QueueError;
import dev.jkrun.libc.EventFd;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The virtio-mmio transport, version 2 (virtio 1.2 section 4.2.2, include/uapi/linux/virtio_mmio.h), for one
 * {@link VirtioDevice} in one 0x1000-byte MMIO slot.
 *
 * <p>Register accesses come from vCPU threads and are serialized on this object. Registers below 0x100 must be
 * accessed 32 bits wide; other widths are ignored (reads return 0). The transport never throws for a guest access:
 * bad driver behaviour is logged (at most {@link RateLimitedLog#PER_SECOND} lines a second per device) and ignored,
 * or sets DEVICE_NEEDS_RESET where the spec says so. A device thread that fails sets DEVICE_NEEDS_RESET too.
 *
 * <p>Queue notifications: the transport owns one {@link EventFd} per queue ({@link #queueEvents()}). Under KVM the
 * VMM registers each as an ioeventfd on {@code base + 0x50} with datamatch = queue index, so notifications never
 * reach {@link #write}; without one, a write to QueueNotify signals the EventFd here.
 *
 * <p>Interrupts: setting a bit in InterruptStatus calls the {@code raised} trigger (under KVM an irqfd, an edge on
 * the device's own line). A device on a shared, level-triggered line ({@link SharedLine}) also gets a {@code lowered}
 * trigger, called when the driver's InterruptAck or a reset cleared bits, so that the line can drop once no device on
 * it has any left.
 */
public final class MmioTransport implements BusDevice, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(MmioTransport.class);

    public static final int MMIO_MAGIC = 0x74726976; // "virt"
    public static final int MMIO_VERSION = 2;
    public static final int VENDOR_ID = 0;
    /** Size of the MMIO slot. */
    public static final long MMIO_SIZE = 0x1000;

    // Register offsets (virtio_mmio.h).
    public static final int MAGIC_VALUE = 0x000, VERSION = 0x004, DEVICE_ID = 0x008, VENDOR = 0x00c,
            DEVICE_FEATURES = 0x010, DEVICE_FEATURES_SEL = 0x014, DRIVER_FEATURES = 0x020, DRIVER_FEATURES_SEL = 0x024,
            QUEUE_SEL = 0x030, QUEUE_NUM_MAX = 0x034, QUEUE_NUM = 0x038, QUEUE_READY = 0x044, QUEUE_NOTIFY = 0x050,
            INTERRUPT_STATUS = 0x060, INTERRUPT_ACK = 0x064, STATUS = 0x070,
            QUEUE_DESC_LOW = 0x080, QUEUE_DESC_HIGH = 0x084, QUEUE_AVAIL_LOW = 0x090, QUEUE_AVAIL_HIGH = 0x094,
            QUEUE_USED_LOW = 0x0a0, QUEUE_USED_HIGH = 0x0a4, SHM_SEL = 0x0ac, SHM_LEN_LOW = 0x0b0,
            SHM_LEN_HIGH = 0x0b4, SHM_BASE_LOW = 0x0b8, SHM_BASE_HIGH = 0x0bc, CONFIG_GENERATION = 0x0fc,
            CONFIG = 0x100;

    // Device status bits (virtio_config.h).
    public static final int STATUS_ACKNOWLEDGE = 1, STATUS_DRIVER = 2, STATUS_DRIVER_OK = 4, STATUS_FEATURES_OK = 8,
            STATUS_DEVICE_NEEDS_RESET = 0x40, STATUS_FAILED = 0x80;

    /** Interrupt status bits (virtio_mmio.h): VIRTIO_MMIO_INT_VRING, VIRTIO_MMIO_INT_CONFIG. */
    public static final int INT_VRING = 1, INT_CONFIG = 2;

    private final VirtioDevice device;
    private final GuestMemory memory;
    private final Trigger interruptLine;
    private final Trigger interruptLowered;
    private final List<Queue> queues;
    private final List<EventFd> queueEvents;
    private final AtomicInteger interruptStatus = new AtomicInteger();
    private final Trigger usedBufferTrigger;
    private final Trigger configChangedTrigger = this::configChanged;
    private final RateLimitedLog guestWarnings;
    /** A device thread failed (see {@link DeviceThreads}): DEVICE_NEEDS_RESET until the driver resets the device. */
    private volatile boolean deviceFailed;

    private int status;
    private int deviceFeaturesSel;
    private int driverFeaturesSel;
    private long driverFeatures;
    private int queueSel;
    private int shmSel;
    private boolean closed;

    public MmioTransport(VirtioDevice device, GuestMemory memory, Trigger interruptLine) {
        this(device, memory, interruptLine, () -> { });
    }

    /**
     * A transport whose interrupt status is also watched going down: {@code lowered} runs after an InterruptAck or a
     * reset cleared bits (on the vCPU thread, in the register access).
     */
    public MmioTransport(VirtioDevice device, GuestMemory memory, Trigger raised, Trigger lowered) {
        this.device = device;
        this.memory = memory;
        this.interruptLine = raised;
        this.interruptLowered = lowered;
        List<Queue> qs = new ArrayList<>();
        List<EventFd> evs = new ArrayList<>();
        try {
            for (int max : device.queueMaxSizes()) {
                qs.add(new Queue(max));
                evs.add(new EventFd());
            }
        } catch (RuntimeException e) {
            evs.forEach(EventFd::close);
            throw e;
        }
        this.queues = Collections.unmodifiableList(qs);
        this.queueEvents = Collections.unmodifiableList(evs);
        this.usedBufferTrigger = () -> raise(INT_VRING);
        this.guestWarnings = new RateLimitedLog(LOG, "virtio-mmio " + device.deviceType());
        device.threads().onFailure(this::deviceFailed);
    }

    public VirtioDevice device() { return device; }

    /** One EventFd per queue, for KVM_IOEVENTFD on {@code base + 0x50} with datamatch = index. */
    public List<EventFd> queueEvents() { return queueEvents; }

    /** The queues as the driver configured them (for diagnostics and tests). */
    public List<Queue> queues() { return queues; }

    /** The device's threads that are still alive (see {@link VirtioDevice#threads()}). */
    public List<Thread> liveThreads() { return device.threads().alive(); }

    /**
     * The transport's state in one line, for diagnosing a guest that waits on a device: status, interrupt status and,
     * per ready queue, the rings' indexes as the guest left them (avail, used) beside the device's (next avail, next
     * used) and the flags and event indexes of each side. Read without stopping the device: a snapshot that may be a
     * moment old.
     */
    public String describe() {
        // the status field read without the lock: a vCPU thread holds it through a reset, which can take seconds,
        // and a report of a hang must not wait on that (a stale value is good enough here)
        int st = currentStatus();
        StringBuilder sb = new StringBuilder("type ").append(device.deviceType())
                .append(": status 0x").append(Integer.toHexString(st))
                .append(" isr ").append(interruptStatus.get());
        for (int i = 0; i < queues.size(); i++) {
            Queue q = queues.get(i);
            if (!q.isReady()) {
                continue;
            }
            sb.append("; q").append(i).append(' ');
            try {
                int size = q.size();
                boolean sized = size > 0 && size <= q.maxSize(); // the event indexes sit past a ring of this size
                long avail = q.availRing().value(), used = q.usedRing().value();
                sb.append("avail ").append(u16(avail + 2)).append(" flags ").append(u16(avail));
                if (sized) {
                    sb.append(" used_event ").append(u16(avail + Queue.usedEventOffset(size)));
                }
                sb.append(" | used ").append(u16(used + 2)).append(" flags ").append(u16(used));
                if (sized) {
                    sb.append(" avail_event ").append(u16(used + Queue.availEventOffset(size)));
                } else {
                    sb.append(" (size ").append(size).append(')');
                }
            } catch (RuntimeException e) {
                sb.append("(rings unreadable: ").append(e.getMessage()).append(')');
            }
            sb.append(" | device next avail ").append(q.nextAvail()).append(" next used ").append(q.nextUsed());
            if (q.isBroken()) {
                sb.append(" BROKEN");
            }
        }
        return sb.toString();
    }

    private int u16(long address) { return Short.toUnsignedInt(memory.readShort(GuestAddress.of(address))); }

    /** Current device status register (with DEVICE_NEEDS_RESET when a queue broke). */
    public synchronized int status() { return currentStatus(); }

    public int interruptStatus() { return interruptStatus.get(); }

    /** Features the driver accepted so far. */
    public synchronized long driverFeatures() { return driverFeatures; }

    /** The device's config changed: set interrupt status bit 1 and raise the interrupt. */
    public void configChanged() { raise(INT_CONFIG); }

    private void raise(int bit) {
        interruptStatus.getAndUpdate(v -> v | bit);
        try {
            interruptLine.trigger();
        } catch (RuntimeException e) {
            guestWarnings.warn("virtio-mmio {}: raising the interrupt failed: {}", device.deviceType(), e.toString());
        }
    }

    private void lowered() {
        try {
            interruptLowered.trigger();
        } catch (RuntimeException e) {
            guestWarnings.warn("virtio-mmio {}: lowering the interrupt failed: {}", device.deviceType(), e.toString());
        }
    }

    private int currentStatus() {
        int s = status;
        if (deviceFailed) {
            s |= STATUS_DEVICE_NEEDS_RESET;
        }
        if ((s & STATUS_DRIVER_OK) != 0) {
            for (Queue q : queues) {
                if (q.isBroken()) {
                    s |= STATUS_DEVICE_NEEDS_RESET;
                    break;
                }
            }
        }
        return s;
    }

    private long offeredFeatures() { return device.availableFeatures() | VirtioDevice.VIRTIO_F_VERSION_1; }

    // ---- BusDevice ------------------------------------------------------------------------------------------

    @Override
    public synchronized void read(long offset, byte[] data) {
        try {
            if (offset >= CONFIG) {
                device.readConfig(offset - CONFIG, data);
                return;
            }
            if (data.length != 4 || offset < 0) {
                LOG.debug("virtio-mmio: ignoring {}-byte read at 0x{}", data.length, Long.toHexString(offset));
                java.util.Arrays.fill(data, (byte) 0);
                return;
            }
            putInt(data, readRegister((int) offset));
        } catch (RuntimeException e) {
            guestWarnings.warn("virtio-mmio {}: read at 0x{} failed: {}", device.deviceType(), Long.toHexString(offset), e.toString());
            java.util.Arrays.fill(data, (byte) 0);
        }
    }

    @Override
    public synchronized void write(long offset, byte[] data) {
        if (closed) {
            // A vCPU thread that outlived the VM's stop must not activate the device again: the threads it would
            // start are not among those the VMM joins before it unmaps guest memory.
            return;
        }
        try {
            if (offset >= CONFIG) {
                int s = status;
                if ((s & STATUS_DRIVER) != 0 && (s & STATUS_FAILED) == 0) {
                    device.writeConfig(offset - CONFIG, data);
                } else {
                    guestWarnings.warn("virtio-mmio {}: config write in status 0x{} ignored", device.deviceType(), Integer.toHexString(s));
                }
                return;
            }
            if (data.length != 4 || offset < 0) {
                LOG.debug("virtio-mmio: ignoring {}-byte write at 0x{}", data.length, Long.toHexString(offset));
                return;
            }
            writeRegister((int) offset, getInt(data));
        } catch (RuntimeException e) {
            guestWarnings.warn("virtio-mmio {}: write at 0x{} failed: {}", device.deviceType(), Long.toHexString(offset), e.toString());
        }
    }

    private int readRegister(int off) {
        switch (off) {
            case MAGIC_VALUE: return MMIO_MAGIC;
            case VERSION: return MMIO_VERSION;
            case DEVICE_ID: return device.deviceType();
            case VENDOR: return VENDOR_ID;
            case DEVICE_FEATURES: {
                long f = offeredFeatures();
                return switch (deviceFeaturesSel) {
                    case 0 -> (int) f;
                    case 1 -> (int) (f >>> 32);
                    default -> 0;
                };
            }
            case QUEUE_NUM_MAX: {
                Queue q = selectedQueue();
                return q == null ? 0 : q.maxSize();
            }
            case QUEUE_READY: {
                Queue q = selectedQueue();
                return q != null && q.isReady() ? 1 : 0;
            }
            case INTERRUPT_STATUS: return interruptStatus.get();
            case STATUS: return currentStatus();
            case SHM_LEN_LOW: case SHM_LEN_HIGH: case SHM_BASE_LOW: case SHM_BASE_HIGH: {
                // virtio 1.2 section 4.2.2: a region id the device does not have reads as length and base ~0
                VirtioDevice.SharedMemoryRegion r = device.sharedMemoryRegions().stream()
                        .filter(x -> x.id() == shmSel).findFirst().orElse(null);
                long v = r == null ? -1 : off == SHM_LEN_LOW || off == SHM_LEN_HIGH ? r.length() : r.guestAddress();
                return off == SHM_LEN_LOW || off == SHM_BASE_LOW ? (int) v : (int) (v >>> 32);
            }
            case CONFIG_GENERATION: return 0;
            default:
                LOG.debug("virtio-mmio {}: read of write-only or unknown register 0x{}", device.deviceType(), Integer.toHexString(off));
                return 0;
        }
    }

    private Queue selectedQueue() { return queueSel >= 0 && queueSel < queues.size() ? queues.get(queueSel) : null; }

    private void writeRegister(int off, int v) {
        switch (off) {
            case DEVICE_FEATURES_SEL -> deviceFeaturesSel = v;
            case DRIVER_FEATURES_SEL -> driverFeaturesSel = v;
            case DRIVER_FEATURES -> writeDriverFeatures(v);
            case QUEUE_SEL -> queueSel = v;
            case QUEUE_NUM, QUEUE_READY, QUEUE_DESC_LOW, QUEUE_DESC_HIGH, QUEUE_AVAIL_LOW, QUEUE_AVAIL_HIGH,
                    QUEUE_USED_LOW, QUEUE_USED_HIGH -> writeQueueRegister(off, v);
            case QUEUE_NOTIFY -> notifyQueue(v);
            case INTERRUPT_ACK -> {
                if ((status & STATUS_DRIVER_OK) != 0) {
                    if ((interruptStatus.getAndUpdate(s -> s & ~v) & v) != 0) {
                        lowered();
                    }
                } else {
                    guestWarnings.warn("virtio-mmio {}: interrupt ack before DRIVER_OK ignored", device.deviceType());
                }
            }
            case STATUS -> writeStatus(v);
            case SHM_SEL -> shmSel = v;
            default -> guestWarnings.warn("virtio-mmio {}: write 0x{} to read-only or unknown register 0x{} ignored",
                    device.deviceType(), Integer.toHexString(v), Integer.toHexString(off));
        }
    }

    private void writeDriverFeatures(int v) {
        // 4.2.2.1 / 3.1.1: features are written after DRIVER and before FEATURES_OK.
        if ((status & (STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_FAILED)) != STATUS_DRIVER) {
            guestWarnings.warn("virtio-mmio {}: driver features written in status 0x{}, ignored", device.deviceType(),
                    Integer.toHexString(status));
            return;
        }
        long offered = offeredFeatures();
        long page;
        long mask;
        switch (driverFeaturesSel) {
            case 0 -> { page = Integer.toUnsignedLong(v); mask = 0xFFFF_FFFFL; }
            case 1 -> { page = Integer.toUnsignedLong(v) << 32; mask = 0xFFFF_FFFF_0000_0000L; }
            default -> {
                guestWarnings.warn("virtio-mmio {}: driver features page {} ignored", device.deviceType(), driverFeaturesSel);
                return;
            }
        }
        if ((page & ~offered) != 0) {
            // 2.2.1: "The driver MUST NOT accept a feature which the device did not offer"; drop those bits.
            guestWarnings.warn("virtio-mmio {}: driver accepted unoffered features 0x{}, dropped", device.deviceType(),
                    Long.toHexString(page & ~offered));
        }
        driverFeatures = (driverFeatures & ~mask) | (page & offered);
    }

    private void writeQueueRegister(int off, int v) {
        // 4.2.3.2: queues are set up after FEATURES_OK and before DRIVER_OK.
        if ((status & (STATUS_FEATURES_OK | STATUS_DRIVER_OK | STATUS_FAILED)) != STATUS_FEATURES_OK) {
            guestWarnings.warn("virtio-mmio {}: queue register 0x{} written in status 0x{}, ignored",
                    device.deviceType(), Integer.toHexString(off), Integer.toHexString(status));
            return;
        }
        Queue q = selectedQueue();
        if (q == null) {
            guestWarnings.warn("virtio-mmio {}: queue register 0x{} written for nonexistent queue {}, ignored", device.deviceType(),
                    Integer.toHexString(off), queueSel);
            return;
        }
        long u = Integer.toUnsignedLong(v);
        switch (off) {
            case QUEUE_NUM -> q.setSize(v);
            case QUEUE_READY -> q.setReady(v == 1);
            case QUEUE_DESC_LOW -> q.setDescTable(low(q.descTable(), u));
            case QUEUE_DESC_HIGH -> q.setDescTable(high(q.descTable(), u));
            case QUEUE_AVAIL_LOW -> q.setAvailRing(low(q.availRing(), u));
            case QUEUE_AVAIL_HIGH -> q.setAvailRing(high(q.availRing(), u));
            case QUEUE_USED_LOW -> q.setUsedRing(low(q.usedRing(), u));
            case QUEUE_USED_HIGH -> q.setUsedRing(high(q.usedRing(), u));
            default -> { }
        }
    }

    private static GuestAddress low(GuestAddress a, long u) { return GuestAddress.of((a.value() & 0xFFFF_FFFF_0000_0000L) | u); }

    private static GuestAddress high(GuestAddress a, long u) { return GuestAddress.of((a.value() & 0xFFFF_FFFFL) | (u << 32)); }

    private void notifyQueue(int v) {
        if ((status & STATUS_DRIVER_OK) == 0 || v < 0 || v >= queueEvents.size()) {
            guestWarnings.warn("virtio-mmio {}: notify for queue {} in status 0x{} ignored", device.deviceType(), v,
                    Integer.toHexString(status));
            return;
        }
        queueEvents.get(v).signal();
    }

    private void writeStatus(int v) {
        if (v == 0) {
            reset();
            return;
        }
        if ((v & STATUS_FAILED) != 0) {
            // 2.1.1: the driver gave up on the device.
            guestWarnings.warn("virtio-mmio {}: driver set FAILED", device.deviceType());
            status |= STATUS_FAILED;
            return;
        }
        int cur = status & ~STATUS_DEVICE_NEEDS_RESET;
        int want = v & ~STATUS_DEVICE_NEEDS_RESET;
        // 3.1.1: ACKNOWLEDGE, then DRIVER, then FEATURES_OK, then DRIVER_OK, each adding one bit.
        if (cur == 0 && want == STATUS_ACKNOWLEDGE) {
            status = want;
        } else if (cur == STATUS_ACKNOWLEDGE && want == (STATUS_ACKNOWLEDGE | STATUS_DRIVER)) {
            status = want;
        } else if (cur == (STATUS_ACKNOWLEDGE | STATUS_DRIVER) && want == (cur | STATUS_FEATURES_OK)) {
            // 6.1: "A device MAY fail to operate further if VIRTIO_F_VERSION_1 is not accepted": refuse
            // FEATURES_OK, which the driver sees when it reads status back (3.1.1 step 6).
            if ((driverFeatures & VirtioDevice.VIRTIO_F_VERSION_1) == 0) {
                guestWarnings.warn("virtio-mmio {}: driver did not accept VIRTIO_F_VERSION_1; FEATURES_OK refused", device.deviceType());
                return;
            }
            status = want;
            device.ackFeatures(driverFeatures);
        } else if (cur == (STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK) && want == (cur | STATUS_DRIVER_OK)) {
            status = want;
            activate();
        } else if (want == cur) {
            // Re-writing the same value is harmless.
        } else {
            guestWarnings.warn("virtio-mmio {}: invalid status transition 0x{} -> 0x{} ignored", device.deviceType(),
                    Integer.toHexString(cur), Integer.toHexString(v));
        }
    }

    private void activate() {
        boolean eventIdx = (driverFeatures & (1L << Queue.VIRTIO_RING_F_EVENT_IDX)) != 0;
        boolean indirect = (driverFeatures & (1L << Queue.VIRTIO_RING_F_INDIRECT_DESC)) != 0;
        for (int i = 0; i < queues.size(); i++) {
            Queue q = queues.get(i);
            q.setEventIdx(eventIdx);
            q.setIndirectAllowed(indirect);
            List<QueueError> errs = q.validate(memory);
            if (!errs.isEmpty()) {
                guestWarnings.warn("virtio-mmio {}: queue {} is invalid: {}; device needs reset", device.deviceType(), i, errs);
                needsReset();
                return;
            }
        }
        List<ActiveQueue> active = new ArrayList<>();
        for (int i = 0; i < queues.size(); i++) {
            active.add(new ActiveQueue(queues.get(i), queueEvents.get(i)));
        }
        try {
            device.activate(new ActivationContext(memory, active, usedBufferTrigger, configChangedTrigger));
        } catch (RuntimeException | Error e) {
            // An Error here is mostly "unable to create native thread": this device fails, not the vCPU (the VM).
            guestWarnings.error("virtio-mmio {}: activation failed; device needs reset", device.deviceType(), e);
            needsReset();
        }
    }

    /** A device thread failed: 2.1.2 DEVICE_NEEDS_RESET, then the configuration change notification. */
    private void deviceFailed() {
        deviceFailed = true;
        raise(INT_CONFIG);
    }

    /** 2.1.2: "the device MUST send a device configuration change notification" after setting DEVICE_NEEDS_RESET. */
    private void needsReset() {
        status |= STATUS_DEVICE_NEEDS_RESET;
        raise(INT_CONFIG);
    }

    private void reset() {
        if (device.isActivated()) {
            device.reset();
        }
        deviceFailed = false; // after the reset: its threads are gone, their failures with them
        for (Queue q : queues) {
            q.reset();
        }
        status = 0;
        driverFeatures = 0;
        deviceFeaturesSel = driverFeaturesSel = queueSel = shmSel = 0;
        if (interruptStatus.getAndSet(0) != 0) {
            lowered();
        }
    }

    private static void putInt(byte[] d, int v) {
        d[0] = (byte) v;
        d[1] = (byte) (v >>> 8);
        d[2] = (byte) (v >>> 16);
        d[3] = (byte) (v >>> 24);
    }

    private static int getInt(byte[] d) {
        return (d[0] & 0xFF) | (d[1] & 0xFF) << 8 | (d[2] & 0xFF) << 16 | (d[3] & 0xFF) << 24;
    }

    /** Closes the device (joining its threads) and the queue EventFds. Idempotent. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            device.close();
        } finally {
            queueEvents.forEach(EventFd::close);
            guestWarnings.flush();
        }
    }
}
