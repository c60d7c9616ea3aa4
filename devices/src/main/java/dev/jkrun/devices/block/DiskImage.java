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

    /** Makes earlier writes durable as far as {@code mode} asks. */
    void flush(SyncMode mode) throws IOException;

    /** The guest no longer needs the range; its contents are unspecified afterwards (may be a no-op). */
    void discard(long offset, long length) throws IOException;

    /** The range reads as zeros afterwards. */
    void writeZeroes(long offset, long length) throws IOException;

    boolean readOnly();

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
