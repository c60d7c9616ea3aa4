package dev.jkrun.devices.virtio.block;

import dev.jkrun.devices.RateLimitedLog;
import dev.jkrun.devices.block.DiskImage;
import dev.jkrun.devices.block.SyncMode;
import dev.jkrun.devices.runtime.EventLoop;
import dev.jkrun.devices.virtio.ActivationContext;
import dev.jkrun.devices.virtio.DeviceThreads;
import dev.jkrun.devices.virtio.QueueWorker;
import dev.jkrun.devices.virtio.VirtioDevice;
import dev.jkrun.devices.virtio.queue.DescriptorChain;
import dev.jkrun.devices.virtio.queue.InvalidChainException;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.devices.virtio.queue.Reader;
import dev.jkrun.devices.virtio.queue.Writer;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * virtio-blk (device id 2, virtio 1.2 section 5.2) over a {@link DiskImage}: one request queue of 256 entries served
 * by one {@link QueueWorker} on the device's {@link EventLoop}. Requests IN, OUT, FLUSH, GET_ID, DISCARD and WRITE_ZEROES; anything malformed gets
 * VIRTIO_BLK_S_IOERR, unknown types VIRTIO_BLK_S_UNSUPP, and nothing a guest sends escapes the device.
 */
public final class VirtioBlock implements VirtioDevice {
    public static final int DEVICE_TYPE = 2;
    public static final int QUEUE_SIZE = 256;
    public static final int SECTOR_SIZE = 512;
    public static final int SECTOR_SHIFT = 9;
    /** Most data segments a request may carry (queue size minus header and status). */
    public static final int SEG_MAX = QUEUE_SIZE - 2;
    public static final int ID_BYTES = 20;
    /** Largest discard / write-zeroes range in sectors; one segment per request. */
    public static final int MAX_DISCARD_SECTORS = 0x3fff_ffff, MAX_DISCARD_SEG = 1;

    // Feature bits (linux/virtio_blk.h).
    public static final int F_SIZE_MAX = 1, F_SEG_MAX = 2, F_RO = 5, F_BLK_SIZE = 6, F_FLUSH = 9, F_TOPOLOGY = 10,
            F_DISCARD = 13, F_WRITE_ZEROES = 14;
    // Request types.
    public static final int T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11, T_WRITE_ZEROES = 13;
    // Status values.
    public static final byte S_OK = 0, S_IOERR = 1, S_UNSUPP = 2;
    /** struct virtio_blk_outhdr: le32 type, le32 ioprio, le64 sector. */
    public static final int HEADER_BYTES = 16;
    /** struct virtio_blk_discard_write_zeroes: le64 sector, le32 num_sectors, le32 flags. */
    public static final int SEGMENT_BYTES = 16;
    public static final int WRITE_ZEROES_FLAG_UNMAP = 1;
    /**
     * Data moved per DiskImage call: a request may cover up to 4 GiB of (overlapping) guest buffers, and the worker
     * checks between calls whether the device is being stopped. Larger than any request Linux sends.
     */
    static final long MAX_BYTES_PER_CALL = 16 << 20;

    /**
     * struct virtio_blk_config (packed, little-endian) offsets: capacity 0, size_max 8, seg_max 12, geometry 16,
     * blk_size 20, topology 24 (physical_block_exp 24, alignment_offset 25, min_io_size 26, opt_io_size 28),
     * writeback 32, num_queues 34, max_discard_sectors 36, max_discard_seg 40, discard_sector_alignment 44,
     * max_write_zeroes_sectors 48, max_write_zeroes_seg 52, write_zeroes_may_unmap 56, unused1[3] 57; 60 bytes up
     * to the secure-erase fields we do not offer.
     */
    public static final int CONFIG_BYTES = 60;
    static final int CFG_CAPACITY = 0, CFG_SEG_MAX = 12, CFG_BLK_SIZE = 20, CFG_PHYSICAL_BLOCK_EXP = 24,
            CFG_MIN_IO_SIZE = 26, CFG_NUM_QUEUES = 34,
            CFG_MAX_DISCARD_SECTORS = 36, CFG_MAX_DISCARD_SEG = 40, CFG_DISCARD_ALIGNMENT = 44,
            CFG_MAX_WZ_SECTORS = 48, CFG_MAX_WZ_SEG = 52, CFG_WZ_MAY_UNMAP = 56;

    private static final Logger LOG = LoggerFactory.getLogger(VirtioBlock.class);

    private final DiskImage disk;
    private final String id;
    private final byte[] idBytes = new byte[ID_BYTES];
    private final SyncMode sync;
    private final long capacitySectors;
    /** log2(physical block / 512): non-zero when the image prefers larger aligned requests (direct I/O). */
    private final int physicalBlockExp;
    private final byte[] config = new byte[CONFIG_BYTES];
    private final DeviceThreads threads;
    private final RateLimitedLog failures;
    /** The device's one thread, between activate and reset. */
    private EventLoop loop;

    /**
     * @param disk the image, owned by the device from now on (closed with it)
     * @param id the disk id the guest reads with GET_ID (up to 20 bytes, NUL-padded)
     */
    public VirtioBlock(DiskImage disk, String id, SyncMode sync) {
        this.disk = Objects.requireNonNull(disk, "disk");
        this.id = Objects.requireNonNull(id, "id");
        this.sync = Objects.requireNonNull(sync, "sync");
        this.threads = new DeviceThreads("virtio-blk[" + id + "]");
        this.failures = new RateLimitedLog(LOG, "virtio-blk[" + id + "]");
        byte[] b = id.getBytes(StandardCharsets.UTF_8);
        System.arraycopy(b, 0, idBytes, 0, Math.min(b.length, ID_BYTES));
        // A trailing partial sector is hidden from the guest.
        this.capacitySectors = disk.capacityBytes() >>> SECTOR_SHIFT;
        ByteBuffer c = ByteBuffer.wrap(config).order(ByteOrder.LITTLE_ENDIAN);
        c.putLong(CFG_CAPACITY, capacitySectors);
        c.putInt(CFG_SEG_MAX, SEG_MAX);
        // blk_size is the guest's logical block size: it stays 512 whatever the host wants, since partition tables
        // and file systems in an existing image are laid out in 512-byte sectors (a larger logical block would
        // move GPT/MBR offsets and refuse 1 KiB-block file systems). A host that needs larger aligned requests
        // (O_DIRECT) says so as the physical block size instead, which Linux follows for alignment and minimum
        // I/O size; anything smaller still works, through the image's read-modify-write.
        c.putInt(CFG_BLK_SIZE, SECTOR_SIZE);
        this.physicalBlockExp = physicalBlockExp(disk.physicalBlockSize());
        if (physicalBlockExp > 0) {
            config[CFG_PHYSICAL_BLOCK_EXP] = (byte) physicalBlockExp;
            c.putShort(CFG_MIN_IO_SIZE, (short) (1 << physicalBlockExp)); // in logical blocks
        }
        c.putShort(CFG_NUM_QUEUES, (short) 1);
        c.putInt(CFG_MAX_DISCARD_SECTORS, MAX_DISCARD_SECTORS);
        c.putInt(CFG_MAX_DISCARD_SEG, MAX_DISCARD_SEG);
        c.putInt(CFG_DISCARD_ALIGNMENT, 1);
        c.putInt(CFG_MAX_WZ_SECTORS, MAX_DISCARD_SECTORS);
        c.putInt(CFG_MAX_WZ_SEG, MAX_DISCARD_SEG);
        config[CFG_WZ_MAY_UNMAP] = 1;
    }

    /** Physical blocks of {@code bytes} as a power of two of sectors; 0 for 512 or anything not usable as one. */
    static int physicalBlockExp(int bytes) {
        if (bytes <= SECTOR_SIZE || Integer.bitCount(bytes) != 1) {
            return 0;
        }
        // min_io_size is a le16 count of sectors: 2^15 sectors (16 MiB) is far beyond any file system block.
        return Math.min(Integer.numberOfTrailingZeros(bytes) - SECTOR_SHIFT, 15);
    }

    public String id() { return id; }

    public DiskImage disk() { return disk; }

    public long capacitySectors() { return capacitySectors; }

    @Override
    public int deviceType() { return DEVICE_TYPE; }

    @Override
    public int[] queueMaxSizes() { return new int[] {QUEUE_SIZE}; }

    @Override
    public long availableFeatures() {
        // As libkrun: DISCARD and WRITE_ZEROES always (refused with IOERR on a read-only disk), FLUSH unless NONE.
        long f = 1L << F_SEG_MAX | 1L << F_BLK_SIZE | 1L << F_DISCARD | 1L << F_WRITE_ZEROES
                | 1L << Queue.VIRTIO_RING_F_EVENT_IDX | 1L << Queue.VIRTIO_RING_F_INDIRECT_DESC;
        if (sync != SyncMode.NONE) {
            f |= 1L << F_FLUSH;
        }
        if (disk.readOnly()) {
            f |= 1L << F_RO;
        }
        if (physicalBlockExp > 0) {
            f |= 1L << F_TOPOLOGY;
        }
        return f;
    }

    @Override
    public void readConfig(long offset, byte[] data) {
        VirtioDevice.readConfigBytes(config, offset, data);
    }

    @Override
    public void writeConfig(long offset, byte[] data) {
        // writeback (CONFIG_WCE) is not offered; the rest of the config space is read-only for the driver.
    }

    @Override
    public synchronized void activate(ActivationContext ctx) {
        if (loop != null) {
            throw new IllegalStateException("virtio-blk[" + id + "] already active");
        }
        // Requests run on the loop thread, fsync included, as on the queue's own thread before: one queue, nothing
        // else to wait for; a stop waits for the request in progress (long ones check stopRequested).
        GuestMemory mem = ctx.memory();
        loop = QueueWorker.serve(threads, "virtio-blk[" + id + "]", ctx, q -> chain -> handle(mem, chain), failures);
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
            failures.flush();
        }
    }

    @Override
    public synchronized void close() {
        reset();
        failures.flush();
        try {
            disk.close();
        } catch (IOException e) {
            LOG.warn("virtio-blk[{}]: closing {}: {}", id, disk, e.toString());
        }
    }

    // ---- requests -----------------------------------------------------------------------------------------------

    /** A request failed validation or I/O: the status to report. */
    private static final class RequestError extends Exception {
        final byte status;

        RequestError(byte status, String message) {
            super(message, null, false, false);
            this.status = status;
        }
    }

    private static RequestError ioerr(String message) { return new RequestError(S_IOERR, message); }

    /**
     * Serves one chain and returns the used length (data bytes written to the guest plus the status byte). The
     * status byte is the last byte of the device-writable part ("the final byte of the request", spec 5.2.6);
     * a chain without one cannot be answered and goes back with length 0.
     */
    int handle(GuestMemory mem, DescriptorChain chain) {
        GuestAddress status = statusAddress(chain);
        if (status == null) {
            LOG.debug("virtio-blk[{}]: chain {} has no writable status byte", id, chain.headIndex());
            return 0;
        }
        long dataOut = chain.writableLength() - 1;
        byte result;
        long written = 0;
        try {
            written = serve(chain, dataOut);
            result = S_OK;
        } catch (RequestError e) {
            LOG.debug("virtio-blk[{}]: request {}: {}", id, chain.headIndex(), e.getMessage());
            result = e.status;
        } catch (IOException | RuntimeException e) {
            failures.warn("virtio-blk[{}]: request {} failed: {}", id, chain.headIndex(), e.toString());
            result = S_IOERR;
        }
        try {
            mem.writeByte(status, result);
        } catch (RuntimeException e) {
            LOG.debug("virtio-blk[{}]: cannot write status: {}", id, e.toString());
            return 0;
        }
        return (int) Math.min(written + 1, 0xFFFF_FFFFL);
    }

    private static GuestAddress statusAddress(DescriptorChain chain) {
        for (int i = chain.count() - 1; i >= chain.firstWritable(); i--) {
            if (chain.length(i) > 0) {
                return GuestAddress.of(chain.address(i) + chain.length(i) - 1);
            }
        }
        return null;
    }

    /** Runs the request; returns the data bytes written to the guest (not counting the status). */
    private long serve(DescriptorChain chain, long dataOut) throws RequestError, IOException {
        Reader in = chain.reader();
        if (in.available() < HEADER_BYTES) {
            throw ioerr("header needs " + HEADER_BYTES + " readable bytes, chain has " + in.available());
        }
        // virtio_blk_outhdr: type u32, reserved (ioprio) u32, sector u64.
        int type;
        long sector;
        try {
            type = in.readInt();
            in.skip(4);
            sector = in.readLong();
        } catch (InvalidChainException e) {
            throw ioerr(e.getMessage()); // not reached: the length was checked above
        }
        long dataIn = in.available();
        switch (type) {
            case T_IN -> {
                // IN: the data buffers must be device-writable; nothing may follow the header on the readable side.
                if (dataIn != 0) {
                    throw ioerr("IN request with " + dataIn + " device-readable data bytes");
                }
                long off = checkRange(sector, dataOut);
                Writer w = chain.writer();
                long done = 0;
                while (done < dataOut) {
                    stopCheck();
                    // All the guest buffers in one call (up to the bound): a direct-I/O image serves them with one
                    // aligned transfer.
                    long got = disk.read(off + done, w.views(Math.min(dataOut - done, MAX_BYTES_PER_CALL)));
                    if (got == 0) {
                        throw ioerr("short read at " + (off + done));
                    }
                    w.advance(got);
                    done += got;
                }
                return dataOut;
            }
            case T_OUT -> {
                // OUT: data is device-readable; the only writable byte is the status.
                if (dataOut != 0) {
                    throw ioerr("OUT request with " + dataOut + " device-writable data bytes");
                }
                long off = checkRange(sector, dataIn);
                requireWritable("OUT");
                long done = 0;
                while (done < dataIn) {
                    stopCheck();
                    long got = disk.write(off + done, in.views(Math.min(dataIn - done, MAX_BYTES_PER_CALL)));
                    if (got == 0) {
                        throw ioerr("short write at " + (off + done));
                    }
                    in.skip(got);
                    done += got;
                }
                return 0;
            }
            case T_FLUSH -> {
                if (!disk.readOnly()) {
                    disk.flush(sync);
                }
                return 0;
            }
            case T_GET_ID -> {
                int n = (int) Math.min(dataOut, ID_BYTES);
                chain.writer().write(idBytes, 0, n);
                return n;
            }
            case T_DISCARD, T_WRITE_ZEROES -> {
                if (dataOut != 0) {
                    throw ioerr("request type " + type + " with " + dataOut + " device-writable data bytes");
                }
                if (dataIn == 0 || dataIn % SEGMENT_BYTES != 0 || dataIn / SEGMENT_BYTES > MAX_DISCARD_SEG) {
                    throw ioerr("request type " + type + " with " + dataIn + " bytes of segments (max " + MAX_DISCARD_SEG + ")");
                }
                byte[] sb = new byte[SEGMENT_BYTES];
                in.read(sb, 0, SEGMENT_BYTES);
                ByteBuffer s = ByteBuffer.wrap(sb).order(ByteOrder.LITTLE_ENDIAN);
                long segSector = s.getLong(0);
                long sectors = Integer.toUnsignedLong(s.getInt(8));
                int flags = s.getInt(12);
                // 5.2.6.2: UNSUPP for a discard with the unmap flag, or any reserved flag bit set.
                if ((flags & ~WRITE_ZEROES_FLAG_UNMAP) != 0 || (type == T_DISCARD && flags != 0)) {
                    throw new RequestError(S_UNSUPP, "request type " + type + " with flags 0x" + Integer.toHexString(flags));
                }
                if (sectors > MAX_DISCARD_SECTORS) {
                    throw ioerr("segment of " + sectors + " sectors exceeds the limit");
                }
                long off = checkRange(segSector, sectors << SECTOR_SHIFT);
                requireWritable(type == T_DISCARD ? "DISCARD" : "WRITE_ZEROES");
                if (type == T_DISCARD) {
                    disk.discard(off, sectors << SECTOR_SHIFT);
                } else {
                    disk.writeZeroes(off, sectors << SECTOR_SHIFT);
                }
                return 0;
            }
            default -> throw new RequestError(S_UNSUPP, "unsupported request type " + type);
        }
    }

    /** The device is being reset or closed: the rest of a long request is not worth the wait. */
    private static void stopCheck() throws RequestError {
        if (DeviceThreads.stopRequested()) {
            throw ioerr("device stopping");
        }
    }

    private void requireWritable(String what) throws RequestError {
        if (disk.readOnly()) {
            throw ioerr(what + " on a read-only disk");
        }
    }

    /** Byte offset of {@code sector}, after checking that {@code len} bytes from it are whole sectors on the disk. */
    private long checkRange(long sector, long len) throws RequestError {
        if (len % SECTOR_SIZE != 0) {
            throw ioerr("length " + len + " is not a multiple of " + SECTOR_SIZE);
        }
        long sectors = len >>> SECTOR_SHIFT;
        // Unsigned compare: a sector number with the top bit set is far past the end.
        if (Long.compareUnsigned(sector, capacitySectors) > 0 || sectors > capacitySectors - sector) {
            throw ioerr("sectors " + Long.toUnsignedString(sector) + "+" + sectors + " outside the disk of " + capacitySectors);
        }
        return sector << SECTOR_SHIFT;
    }
}
