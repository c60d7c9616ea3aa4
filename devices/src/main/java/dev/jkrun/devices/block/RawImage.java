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
 * a native descriptor of the same file for {@code fallocate(2)}: DISCARD punches a hole.
 */
public final class RawImage implements DiskImage {
    /** linux/falloc.h */
    static final int FALLOC_FL_KEEP_SIZE = 0x01, FALLOC_FL_PUNCH_HOLE = 0x02;

    private final Path path;
    private final FileChannel ch;
    /** The same file as {@link #ch}, for fallocate; null when read-only or when it could not be opened. */
    private final FileDescriptor fd;
    private final boolean readOnly;
    private final long capacity;
    private final Syncer syncer = new Syncer();
    /** The file system refused FALLOC_FL_PUNCH_HOLE once: discard is a no-op from then on. */
    private volatile boolean punchUnsupported;

    private RawImage(Path path, FileChannel ch, FileDescriptor fd, boolean readOnly) throws IOException {
        this.path = path;
        this.ch = ch;
        this.fd = fd;
        this.readOnly = readOnly;
        this.capacity = ch.size();
    }

    /**
     * Opens {@code path}; read-only opens the file with O_RDONLY. A writable image is opened with open(2) first and
     * the channel reopens that very inode through {@code /proc/self/fd}, so both always name the same file (a
     * second open of the path could meet a file renamed in between).
     */
    public static RawImage open(Path path, boolean readOnly) throws IOException {
        if (readOnly) {
            return new RawImage(path, FileChannel.open(path, StandardOpenOption.READ), null, true);
        }
        FileDescriptor fd = null;
        FileChannel ch;
        try {
            fd = PosixFs.openat(null, PosixFs.bytes(path.toString()), PosixFs.O_RDWR, 0);
            ch = FileChannel.open(Path.of("/proc/self/fd/" + fd.raw()), StandardOpenOption.READ, StandardOpenOption.WRITE);
        } catch (NativeCallException | IOException e) {
            // No descriptor (no /proc, or open(2) refused): the channel alone reports the problem in Java's terms,
            // and discard stays a hint without effect.
            if (fd != null) {
                fd.close();
            }
            fd = null;
            ch = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
        }
        try {
            return new RawImage(path, ch, fd, false);
        } catch (IOException | RuntimeException e) {
            ch.close();
            if (fd != null) {
                fd.close();
            }
            throw e;
        }
    }

    public Path path() { return path; }

    @Override
    public long capacityBytes() { return capacity; }

    @Override
    public int read(long offset, ByteBuffer dst) throws IOException {
        checkRange(offset, dst.remaining());
        return readFully(ch, offset, dst);
    }

    /** Reads until {@code dst} is full or EOF; zero-fills past EOF. Returns the bytes placed in dst. */
    static int readFully(FileChannel ch, long offset, ByteBuffer dst) throws IOException {
        int start = dst.position();
        while (dst.hasRemaining()) {
            int n = ch.read(dst, offset + dst.position() - start);
            if (n < 0) {
                while (dst.hasRemaining()) {
                    dst.put((byte) 0);
                }
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
        checkWritable();
        checkRange(offset, src.remaining());
        return writeFully(ch, offset, src);
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
        if (length == 0 || fd == null || punchUnsupported) {
            return;
        }
        try {
            PosixFs.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
        } catch (NativeCallException e) {
            if (e.errno() == Errno.ENOTSUP || e.errno() == Errno.ENOSYS) {
                punchUnsupported = true;
                return;
            }
            throw new DiskImageException(path + ": discard of " + offset + "+" + length + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void writeZeroes(long offset, long length) throws IOException {
        checkWritable();
        DiskImage.writeZeroChunks(this, offset, length);
    }

    @Override
    public boolean readOnly() { return readOnly; }

    @Override
    public void close() throws IOException {
        try {
            ch.close();
        } finally {
            if (fd != null) {
                fd.close();
            }
        }
    }

    @Override
    public String toString() { return "raw:" + path; }
}
