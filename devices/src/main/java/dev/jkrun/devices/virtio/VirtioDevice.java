package dev.jkrun.devices.virtio;

/**
 * The device half of a virtio device: what it offers, its config space, and its work once the driver is ready.
 * It knows nothing about the transport (virtio-mmio here) or the hypervisor: at activation it gets an
 * {@link ActivationContext}.
 */
public interface VirtioDevice extends AutoCloseable {
    /** VIRTIO_F_VERSION_1, added by the transport to every device's features. */
    long VIRTIO_F_VERSION_1 = 1L << 32;

    /** Device type (virtio 1.2 section 5): 1 net, 2 block, 3 console, 4 rng, ... */
    int deviceType();

    /** Maximum size of each queue; the list's length is the number of queues. */
    int[] queueMaxSizes();

    /** Device-specific and ring feature bits (64-bit) the device offers; the transport adds VERSION_1. */
    long availableFeatures();

    /**
     * The features the driver accepted (a subset of {@link #availableFeatures()} plus VERSION_1), told once at
     * FEATURES_OK, before {@link #activate}.
     */
    default void ackFeatures(long features) {}

    /** Fills {@code data} from config space at {@code offset}; bytes past the end of the config read as 0. */
    void readConfig(long offset, byte[] data);

    /** {@link #readConfig} for a device whose config space is the byte array {@code config}. */
    static void readConfigBytes(byte[] config, long offset, byte[] data) {
        for (int i = 0; i < data.length; i++) {
            long o = offset + i;
            data[i] = o >= 0 && o < config.length ? config[(int) o] : 0;
        }
    }

    /** A driver write to config space; most devices log and ignore it. */
    void writeConfig(long offset, byte[] data);

    /**
     * The driver set DRIVER_OK: start working with what {@code ctx} holds (queues, their notify EventFds, the
     * used-buffer and config-change interrupts).
     *
     * @throws RuntimeException when the device cannot start; the transport then sets DEVICE_NEEDS_RESET
     */
    void activate(ActivationContext ctx);

    /**
     * The threads the device runs, all started through it ({@link DeviceThreads#start}): the transport learns of
     * their failures there, and the VMM keeps guest memory mapped while any of them is alive.
     */
    default DeviceThreads threads() { return DeviceThreads.NONE; }

    /** A shared memory region (virtio 1.2 section 2.10): its id, guest-physical base and length. */
    record SharedMemoryRegion(int id, long guestAddress, long length) {}

    /** The device's shared memory regions (virtio-fs: its DAX window); the transport reports them. */
    default java.util.List<SharedMemoryRegion> sharedMemoryRegions() { return java.util.List.of(); }

    /** Whether {@link #activate} ran and no {@link #reset()} since. */
    boolean isActivated();

    /** The driver wrote 0 to status: stop and join all device threads, forget the queues; may be activated again. */
    void reset();

    /** Stops and joins every thread the device started and releases its host resources. Idempotent. */
    @Override
    void close();
}
