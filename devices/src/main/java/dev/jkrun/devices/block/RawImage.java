package dev.jkrun.devices.block;

import dev.jkrun.libc.Errno;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.PosixFs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A raw image: the file is the disk, byte for byte, through positional FileChannel I/O. A writable image also holds
 * a native descriptor of the same file for {@code fallocate(2)}: DISCARD punches a hole, WRITE_ZEROES zeroes a
 * range in the file system's metadata.
 *
 * <p>With direct I/O (libkrun's {@code direct_io}) reads and writes bypass the host page cache through an O_DIRECT
 * descriptor ({@link DirectFile}); only a file tail shorter than one aligned block, which O_DIRECT cannot address,
 * still goes through the channel.
 */
public final class RawImage implements DiskImage {
    /** linux/falloc.h */
    static final int FALLOC_FL_KEEP_SIZE = 0x01, FALLOC_FL_PUNCH_HOLE = 0x02, FALLOC_FL_ZERO_RANGE = 0x10;

    private final Path path;
    /** Buffered I/O; with direct I/O only the unaligned tail and fdatasync. */
    private final FileChannel ch;
    /**
     * The same file as {@link #ch}, for fallocate and scatter/gather I/O; null when it could not be opened (and,
     * with direct I/O, when read-only).
     */
    private final InFlightDescriptor fd;
    /** The same file opened with O_DIRECT; null without direct I/O. */
    private final DirectFile direct;
    private final boolean readOnly;
    private final long capacity;
    /** Bytes below this go through {@link #direct}: the capacity rounded down to its alignment (0 without). */
    private final long directEnd;
    private final Syncer syncer = new Syncer();
    /** The file system refused FALLOC_FL_PUNCH_HOLE once: discard is a no-op from then on. */
    private volatile boolean punchUnsupported;
    /** The file system refused FALLOC_FL_ZERO_RANGE once: WRITE_ZEROES writes zeros from then on (tests set it). */
    volatile boolean zeroRangeUnsupported;

    private RawImage(Path path, FileChannel ch, FileDescriptor fd, DirectFile direct, boolean readOnly) throws IOException {
        this.path = path;
        this.ch = ch;
        this.fd = fd == null ? null : new InFlightDescriptor(fd);
        this.direct = direct;
        this.readOnly = readOnly;
        this.capacity = ch.size();
        this.directEnd = direct == null ? 0 : capacity & -direct.alignment();
    }

    /** {@link #open(Path, boolean, boolean)} through the page cache. */
    public static RawImage open(Path path, boolean readOnly) throws IOException {
        return open(path, readOnly, false);
    }

    /**
     * Opens {@code path}; read-only opens the file with O_RDONLY. The channel and the descriptor name the same inode
     * ({@link ImageFiles#openSame}).
     *
     * @param directIo bypass the host page cache (O_DIRECT); a file system without O_DIRECT (tmpfs before Linux
     *     6.6, ramfs, procfs, some FUSE file systems) fails the open with {@link DirectIoUnsupportedException}
     */
    public static RawImage open(Path path, boolean readOnly, boolean directIo) throws IOException {
        if (directIo) {
            return openDirect(path, readOnly);
        }
        return open(path, ImageFiles.openSame(path, !readOnly), readOnly);
    }

    /** The image on {@code f} (an open file of {@code path}, closed if this fails), {@code path} naming it. */
    static RawImage open(Path path, ImageFiles.Opened f, boolean readOnly) throws IOException {
        try {
            return new RawImage(path, f.channel(), f.fd(), null, readOnly);
        } catch (IOException | RuntimeException e) {
            f.closeAfter(e);
            throw e;
        }
    }

    /**
     * The O_DIRECT descriptor is opened from the path, and everything else reopens its inode through
     * {@code /proc/self/fd}. The open itself is the check: O_DIRECT on a file system without it is EINVAL.
     */
    private static RawImage openDirect(Path path, boolean readOnly) throws IOException {
        int access = readOnly ? PosixFs.O_RDONLY : PosixFs.O_RDWR;
        FileDescriptor dfd;
        try {
            dfd = PosixFs.openat(null, PosixFs.bytes(path.toString()), access | PosixFs.O_DIRECT, 0);
        } catch (NativeCallException e) {
            if (e.errno() == Errno.EINVAL) {
                throw new DirectIoUnsupportedException(path);
            }
            throw DiskImageException.of(path, ImageFormat.RAW, "cannot open for direct I/O: " + e.getMessage());
        }
        FileDescriptor fd = null;
        FileChannel ch = null;
        try {
            Path same = Path.of("/proc/self/fd/" + dfd.raw());
            if (!readOnly) {
                fd = PosixFs.openat(null, PosixFs.bytes(same.toString()), access, 0);
            }
            ch = readOnly ? FileChannel.open(same, StandardOpenOption.READ)
                    : FileChannel.open(same, StandardOpenOption.READ, StandardOpenOption.WRITE);
            DirectFile direct = new DirectFile(path, dfd, DirectFile.alignmentOf(path, dfd));
            return new RawImage(path, ch, fd, direct, readOnly);
        } catch (IOException | RuntimeException e) {
            if (ch != null) {
                ch.close();
            }
            if (fd != null) {
                fd.close();
            }
            dfd.close();
            if (e instanceof NativeCallException n) {
                throw DiskImageException.of(path, ImageFormat.RAW, "cannot open for direct I/O: " + n.getMessage());
            }
            throw e;
        }
    }

    public Path path() { return path; }

    @Override
    public long capacityBytes() { return capacity; }

    @Override
    public int read(long offset, ByteBuffer dst) throws IOException {
        return (int) read(offset, new ByteBuffer[] {dst});
    }

    @Override
    public long read(long offset, ByteBuffer[] dsts) throws IOException {
        long length = Segments.remaining(dsts);
        checkRange(offset, length);
        long viaDirect = directPart(offset, length);
        if (viaDirect > 0) {
            direct.read(offset, viaDirect, dsts);
        }
        return viaDirect + buffered(offset + viaDirect, dsts, false);
    }

    /** The part of a request past direct I/O, through the page cache: several buffers with the descriptor. */
    private long buffered(long offset, ByteBuffer[] bufs, boolean write) throws IOException {
        FileDescriptor d = bufs.length > 1 && fd != null ? fd.acquire() : null;
        try {
            return transfer(ch, d, offset, bufs, write);
        } finally {
            if (d != null) {
                fd.release();
            }
        }
    }

    /**
     * Fills {@code dsts} in turn from {@code offset} (zeros past EOF), moving their positions; returns the bytes
     * placed. Several direct buffers (a request's guest segments) go in one preadv where there is a descriptor of
     * the file, instead of one pread each: 256 calls for a 1 MiB request in 4 KiB pages.
     */
    static long readFully(FileChannel ch, FileDescriptor fd, long offset, ByteBuffer[] dsts) throws IOException {
        return transfer(ch, fd, offset, dsts, false);
    }

    /** Writes all of {@code srcs} in turn from {@code offset}, moving their positions, as {@link #readFully} reads. */
    static long writeFully(FileChannel ch, FileDescriptor fd, long offset, ByteBuffer[] srcs) throws IOException {
        return transfer(ch, fd, offset, srcs, true);
    }

    private static long transfer(FileChannel ch, FileDescriptor fd, long offset, ByteBuffer[] bufs, boolean write)
            throws IOException {
        long want = Segments.remaining(bufs);
        long done = 0;
        if (fd == null || bufs.length < 2 || !allDirect(bufs)) {
            for (ByteBuffer b : bufs) {
                if (b.hasRemaining()) {
                    done += write ? writeFully(ch, offset + done, b) : readFully(ch, offset + done, b);
                }
            }
            return done;
        }
        String call = write ? "pwritev" : "preadv";
        try {
            while (done < want) {
                long n = write ? PosixFs.pwritev(fd, bufs, offset + done) : PosixFs.preadv(fd, bufs, offset + done);
                if (n <= 0 && write) {
                    throw new IOException(call + " at " + (offset + done) + " wrote nothing");
                }
                if (n <= 0) {
                    break; // EOF: the file shrank under the image
                }
                done += n;
            }
        } catch (NativeCallException e) {
            throw new IOException(call + " at " + (offset + done) + ": " + e.getMessage(), e);
        }
        if (!write) {
            for (ByteBuffer b : bufs) {
                zero(b);
            }
        }
        return want;
    }

    private static boolean allDirect(ByteBuffer[] bufs) {
        for (ByteBuffer b : bufs) {
            if (!b.isDirect()) {
                return false;
            }
        }
        return true;
    }

    private static final byte[] ZEROS = new byte[4096];

    /** Fills the rest of {@code b} with zeros. */
    static void zero(ByteBuffer b) {
        while (b.hasRemaining()) {
            b.put(ZEROS, 0, Math.min(ZEROS.length, b.remaining()));
        }
    }

    /** Reads until {@code dst} is full or EOF; zero-fills past EOF. Returns the bytes placed in dst. */
    static int readFully(FileChannel ch, long offset, ByteBuffer dst) throws IOException {
        int start = dst.position();
        while (dst.hasRemaining()) {
            int n = ch.read(dst, offset + dst.position() - start);
            if (n < 0) {
                zero(dst);
                break;
            }
        }
        return dst.position() - start;
    }

    static int writeFully(FileChannel ch, long offset, ByteBuffer src) throws IOException {
        int start = src.position();
        while (src.hasRemaining()) {
            ch.write(src, offset + src.position() - start);
        }
        return src.position() - start;
    }

    @Override
    public int write(long offset, ByteBuffer src) throws IOException {
        return (int) write(offset, new ByteBuffer[] {src});
    }

    @Override
    public long write(long offset, ByteBuffer[] srcs) throws IOException {
        checkWritable();
        long length = Segments.remaining(srcs);
        checkRange(offset, length);
        long viaDirect = directPart(offset, length);
        if (viaDirect > 0) {
            direct.write(offset, viaDirect, srcs);
        }
        return viaDirect + buffered(offset + viaDirect, srcs, true);
    }

    /** How much of {@code [offset, offset+length)} lies below {@link #directEnd}. */
    private long directPart(long offset, long length) {
        return Math.max(0, Math.min(length, directEnd - offset));
    }

    private void checkWritable() throws DiskImageException {
        if (readOnly) {
            throw DiskImageException.of(path, ImageFormat.RAW, "image is read-only");
        }
    }

    @Override
    public void flush(SyncMode mode) throws IOException {
        if (!readOnly) {
            syncer.flush(ch, mode);
        }
    }

    /**
     * Punches a hole ({@code FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE}): the range reads as zeros afterwards and
     * its blocks go back to the host file system (partial blocks at the ends are zeroed in place). On a file system
     * without hole punching the discard is a no-op, which the virtio spec allows.
     */
    @Override
    public void discard(long offset, long length) throws IOException {
        checkWritable();
        checkRange(offset, length);
        FileDescriptor d = length == 0 || fd == null || punchUnsupported ? null : fd.acquire();
        if (d == null) {
            return;
        }
        try {
            PosixFs.fallocate(d, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
        } catch (NativeCallException e) {
            if (e.errno() == Errno.ENOTSUP || e.errno() == Errno.ENOSYS) {
                punchUnsupported = true;
                return;
            }
            throw new DiskImageException(path + ": discard of " + offset + "+" + length + ": " + e.getMessage(), e);
        } finally {
            fd.release();
        }
    }

    /**
     * {@code FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE}: the file system marks the range as zeros (unwritten
     * extents) instead of taking the data itself; the file keeps its length. Where the file system has no
     * ZERO_RANGE (tmpfs, older or network file systems), zero chunks are written through {@link #write}, on the
     * aligned path under direct I/O.
     */
    @Override
    public void writeZeroes(long offset, long length) throws IOException {
        checkWritable();
        checkRange(offset, length);
        if (length == 0) {
            return;
        }
        FileDescriptor d = fd != null && !zeroRangeUnsupported ? fd.acquire() : null;
        if (d != null) {
            try {
                PosixFs.fallocate(d, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, length);
                return;
            } catch (NativeCallException e) {
                if (e.errno() != Errno.ENOTSUP && e.errno() != Errno.ENOSYS) {
                    throw new DiskImageException(path + ": write zeroes " + offset + "+" + length + ": " + e.getMessage(), e);
                }
                zeroRangeUnsupported = true;
            } finally {
                fd.release();
            }
        }
        DiskImage.writeZeroChunks(this, offset, length);
    }

    @Override
    public boolean readOnly() { return readOnly; }

    /** Whether reads and writes bypass the host page cache. */
    public boolean directIo() { return direct != null; }

    @Override
    public int physicalBlockSize() { return direct == null ? 512 : direct.alignment(); }

    @Override
    public void close() throws IOException {
        try (FileChannel c = ch; InFlightDescriptor d = fd; DirectFile x = direct) {
            // each closed, in reverse order, whatever the others throw
        }
    }

    @Override
    public String toString() { return (direct == null ? "raw:" : "raw+direct:") + path; }
}
