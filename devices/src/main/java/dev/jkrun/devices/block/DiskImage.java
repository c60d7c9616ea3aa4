package dev.jkrun.devices.block;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * A virtual disk as the block device sees it: a byte array of {@link #capacityBytes()} bytes with positional I/O,
 * whatever the file format underneath. Implementations are thread-safe.
 */
public interface DiskImage extends AutoCloseable {
    /** The guest-visible size in bytes. */
    long capacityBytes();

    /**
     * Reads {@code dst.remaining()} bytes at {@code offset} (zeros where nothing was ever written); returns the
     * count read, which is all of them unless the range passes the end of the disk.
     */
    int read(long offset, ByteBuffer dst) throws IOException;

    /** Writes all of {@code src} at {@code offset}; returns the count. Throws DiskImageException when read-only. */
    int write(long offset, ByteBuffer src) throws IOException;

    /**
     * Scatter read: fills {@code dsts} in turn from {@code offset} on, as one request (a virtio-blk IN spread over
     * several guest buffers); returns the count. An image that gains from seeing the whole request at once overrides
     * this: raw and qcow2 images move a run of the file to or from all its buffers in one preadv/pwritev (a Linux
     * guest's 1 MiB request comes as 256 page-sized buffers), direct I/O in one aligned transfer.
     */
    default long read(long offset, ByteBuffer[] dsts) throws IOException {
        long done = 0;
        for (ByteBuffer d : dsts) {
            int want = d.remaining();
            int n = read(offset + done, d);
            done += n;
            if (n < want) {
                break;
            }
        }
        return done;
    }

    /** Gather write: all of {@code srcs} in turn from {@code offset} on, as one request; returns the count. */
    default long write(long offset, ByteBuffer[] srcs) throws IOException {
        long done = 0;
        for (ByteBuffer s : srcs) {
            done += write(offset + done, s);
        }
        return done;
    }

    /** Makes earlier writes durable as far as {@code mode} asks. */
    void flush(SyncMode mode) throws IOException;

    /** The guest no longer needs the range; its contents are unspecified afterwards (may be a no-op). */
    void discard(long offset, long length) throws IOException;

    /** The range reads as zeros afterwards. */
    void writeZeroes(long offset, long length) throws IOException;

    boolean readOnly();

    /**
     * The host's I/O granularity in bytes (a power of two, at least 512): requests whose offset and length are
     * multiples of it are served without a read-modify-write. A direct-I/O image returns its O_DIRECT alignment;
     * the guest still addresses 512-byte sectors, and virtio-blk passes this on as the physical block size.
     */
    default int physicalBlockSize() { return 512; }

    /** Releases the files. Idempotent. */
    @Override
    void close() throws IOException;

    /** WRITE_ZEROES for formats with no cheaper way: writes zero-filled chunks of at most 1 MiB through {@link #write}. */
    static void writeZeroChunks(DiskImage image, long offset, long length) throws IOException {
        image.checkRange(offset, length);
        ByteBuffer zeros = ByteBuffer.allocate((int) Math.min(1 << 20, Math.max(length, 1)));
        long done = 0;
        while (done < length) {
            zeros.clear().limit((int) Math.min(zeros.capacity(), length - done));
            done += image.write(offset + done, zeros);
        }
    }

    /** Throws unless {@code [offset, offset+length)} lies within the disk. */
    default void checkRange(long offset, long length) throws DiskImageException {
        if (offset < 0 || length < 0 || offset > capacityBytes() || length > capacityBytes() - offset) {
            throw new DiskImageException("range " + offset + "+" + length + " outside the disk of " + capacityBytes() + " bytes");
        }
    }
}
