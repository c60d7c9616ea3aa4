package dev.jkrun.devices.block;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** A raw image: the file is the disk, byte for byte, through positional FileChannel I/O. */
public final class RawImage implements DiskImage {
    private final Path path;
    private final FileChannel ch;
    private final boolean readOnly;
    private final long capacity;
    private final Syncer syncer = new Syncer();

    private RawImage(Path path, FileChannel ch, boolean readOnly) throws IOException {
        this.path = path;
        this.ch = ch;
        this.readOnly = readOnly;
        this.capacity = ch.size();
    }

    /** Opens {@code path}; read-only opens the file with O_RDONLY. */
    public static RawImage open(Path path, boolean readOnly) throws IOException {
        FileChannel ch = readOnly ? FileChannel.open(path, StandardOpenOption.READ)
                : FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
        return new RawImage(path, ch, readOnly);
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

    /** A hint only: raw images keep their data (punching holes needs fallocate, not reachable from Java). */
    @Override
    public void discard(long offset, long length) throws IOException {
        checkWritable();
        checkRange(offset, length);
    }

    @Override
    public void writeZeroes(long offset, long length) throws IOException {
        checkWritable();
        DiskImage.writeZeroChunks(this, offset, length);
    }

    @Override
    public boolean readOnly() { return readOnly; }

    @Override
    public void close() throws IOException { ch.close(); }

    @Override
    public String toString() { return "raw:" + path; }
}
