package dev.jkrun.devices.block;

import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.PosixFs;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.concurrent.locks.ReentrantLock;

/**
 * O_DIRECT I/O on one file, for byte ranges of any offset and length. O_DIRECT wants the file offset, the length
 * and the memory address aligned to the file system's block size, while guest buffers lie anywhere in guest memory
 * and virtio-blk requests are only 512-byte granular: every transfer goes through one aligned bounce buffer, and a
 * range whose ends are not aligned reads the partial blocks at its ends first (read-modify-write).
 *
 * <p>Callers keep ranges below the file's last aligned block boundary (the remainder has no aligned block to
 * transfer). One lock serializes all transfers: the bounce buffer is shared, and a read-modify-write of a block
 * must not interleave with another write to it.
 */
final class DirectFile implements AutoCloseable {
    /** The bounce buffer: the most one pread/pwrite moves. */
    static final int BOUNCE_BYTES = 1 << 20;
    /** Larger alignments are refused rather than guessed at (no local file system needs them). */
    static final int MAX_ALIGNMENT = 64 << 10;
    private static final byte[] ZEROS = new byte[4096];

    private final Path path;
    private final FileDescriptor fd;
    private final int align;
    private final ByteBuffer bounce;
    private final ReentrantLock lock = new ReentrantLock();

    /**
     * @param fd opened with O_DIRECT; owned from now on
     * @param align the alignment the file system demands: a power of two in [512, {@link #MAX_ALIGNMENT}]
     */
    DirectFile(Path path, FileDescriptor fd, int align) {
        if (Integer.bitCount(align) != 1 || align < 512 || align > MAX_ALIGNMENT) {
            throw new IllegalArgumentException("alignment " + align);
        }
        this.path = path;
        this.fd = fd;
        this.align = align;
        // allocateDirect gives no alignment guarantee: over-allocate and take the aligned part.
        this.bounce = ByteBuffer.allocateDirect(BOUNCE_BYTES + align).alignedSlice(align).limit(BOUNCE_BYTES).slice();
    }

    /**
     * The alignment O_DIRECT needs on {@code fd}'s file system: its fragment size ({@code f_frsize}, what the JDK
     * itself enforces for {@code ExtendedOpenOption.DIRECT}), at least 512. Conservative: a device may accept less.
     */
    static int alignmentOf(Path path, FileDescriptor fd) throws DiskImageException {
        long frsize;
        try {
            frsize = PosixFs.fstatvfs(fd).frsize();
        } catch (NativeCallException e) {
            throw DiskImageException.of(path, ImageFormat.RAW, "direct I/O: " + e.getMessage());
        }
        long a = Math.max(512, frsize);
        if (Long.bitCount(a) != 1 || a > MAX_ALIGNMENT) {
            throw DiskImageException.of(path, ImageFormat.RAW, "direct I/O: the file system's block size " + frsize
                    + " is not a power of two up to " + MAX_ALIGNMENT);
        }
        return (int) a;
    }

    int alignment() { return align; }

    private long down(long x) { return x & -align; }

    private long up(long x) { return (x + align - 1) & -align; }

    /**
     * Reads {@code length} bytes at {@code offset} into {@code dsts} in turn (advancing their positions); bytes
     * past the end of the file read as zeros.
     */
    void read(long offset, long length, ByteBuffer[] dsts) throws DiskImageException {
        lock.lock();
        try {
            long pos = offset;
            long end = offset + length;
            while (pos < end) {
                long start = down(pos);
                long stop = Math.min(up(end), start + BOUNCE_BYTES);
                fill(start, 0, (int) (stop - start));
                int k = (int) (Math.min(end, stop) - pos);
                scatter(bounce, (int) (pos - start), k, dsts);
                pos += k;
            }
        } finally {
            lock.unlock();
        }
    }

    /** Writes {@code length} bytes from {@code srcs} in turn (advancing their positions) at {@code offset}. */
    void write(long offset, long length, ByteBuffer[] srcs) throws DiskImageException {
        lock.lock();
        try {
            long pos = offset;
            long end = offset + length;
            while (pos < end) {
                long start = down(pos);
                long stop = Math.min(up(end), start + BOUNCE_BYTES);
                int n = (int) (stop - start);
                long chunkEnd = Math.min(end, stop);
                // Read-modify-write: the partial blocks at the ends keep the bytes outside the range.
                boolean head = pos > start;
                if (head) {
                    fill(start, 0, align);
                }
                if (chunkEnd < stop && !(head && n == align)) {
                    fill(stop - align, n - align, align);
                }
                gather(srcs, bounce, (int) (pos - start), (int) (chunkEnd - pos));
                store(start, n);
                pos = chunkEnd;
            }
        } finally {
            lock.unlock();
        }
    }

    /** Bounce bytes [from, from+n) := the file at {@code fileOffset} (aligned), zeros past its end. */
    private void fill(long fileOffset, int from, int n) throws DiskImageException {
        int done = 0;
        while (done < n) {
            int got;
            try {
                // A slice starts at its own (aligned) address, whatever jnr makes of buffer positions.
                got = PosixFs.pread(fd, bounce.slice(from + done, n - done), fileOffset + done);
            } catch (NativeCallException e) {
                throw new DiskImageException(path + ": direct read of " + (n - done) + " bytes at " + (fileOffset + done)
                        + ": " + e.getMessage(), e);
            }
            done += got;
            // End of file: nothing more, or a partial block (the next pread would start unaligned).
            if (got == 0 || got % align != 0) {
                zero(from + done, n - done);
                return;
            }
        }
    }

    /** The file at {@code fileOffset} := bounce bytes [0, n); both aligned. */
    private void store(long fileOffset, int n) throws DiskImageException {
        int done = 0;
        while (done < n) {
            int put;
            try {
                put = PosixFs.pwrite(fd, bounce.slice(done, n - done), fileOffset + done);
            } catch (NativeCallException e) {
                throw new DiskImageException(path + ": direct write of " + (n - done) + " bytes at " + (fileOffset + done)
                        + ": " + e.getMessage(), e);
            }
            if (put <= 0 || put % align != 0) {
                throw new DiskImageException(path + ": direct write at " + (fileOffset + done) + " stopped after " + put
                        + " of " + (n - done) + " bytes");
            }
            done += put;
        }
    }

    private void zero(int from, int n) {
        while (n > 0) {
            int k = Math.min(n, ZEROS.length);
            bounce.put(from, ZEROS, 0, k);
            from += k;
            n -= k;
        }
    }

    /** Copies {@code n} bytes from {@code srcs} (advancing them) to {@code into} at {@code index}. */
    static void gather(ByteBuffer[] srcs, ByteBuffer into, int index, int n) {
        for (int i = 0; i < srcs.length && n > 0; i++) {
            ByteBuffer s = srcs[i];
            int k = Math.min(n, s.remaining());
            if (k > 0) {
                into.put(index, s, s.position(), k);
                s.position(s.position() + k);
                index += k;
                n -= k;
            }
        }
        if (n != 0) {
            throw new IllegalArgumentException(n + " bytes more than the buffers hold");
        }
    }

    /** Copies {@code n} bytes of {@code from} at {@code index} into {@code dsts} (advancing them). */
    static void scatter(ByteBuffer from, int index, int n, ByteBuffer[] dsts) {
        for (int i = 0; i < dsts.length && n > 0; i++) {
            ByteBuffer d = dsts[i];
            int k = Math.min(n, d.remaining());
            if (k > 0) {
                d.put(d.position(), from, index, k);
                d.position(d.position() + k);
                index += k;
                n -= k;
            }
        }
        if (n != 0) {
            throw new IllegalArgumentException(n + " bytes more than the buffers take");
        }
    }

    @Override
    public void close() { fd.close(); }
}
