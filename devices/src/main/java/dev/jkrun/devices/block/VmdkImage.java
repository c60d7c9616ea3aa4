package dev.jkrun.devices.block;

import dev.jkrun.libc.FileDescriptor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A VMDK disk described by a text descriptor file (createType monolithicFlat, vmfs or twoGbMaxExtentFlat) with
 * FLAT and ZERO extents only, as libkrun's imago supports. FLAT extents are plain files at a sector offset; ZERO
 * extents read as zeros and cannot be written. Sparse (hosted "KDMV") and stream-optimized VMDKs are refused.
 *
 * <p>The descriptor is image data: the extent files it names are regular files in its own directory, by plain name
 * and not through a symlink, unless the user allowed the image to name files elsewhere (the same opt-in as qcow2
 * backing files); FIFOs, devices, directories and files shorter than their extent are refused either way.
 */
public final class VmdkImage implements DiskImage {
    /** Bigger than this is not a descriptor file. */
    private static final long MAX_DESCRIPTOR = 64 * 1024;
    private static final Pattern EXTENT = Pattern.compile(
            "^(RW|RDONLY|NOACCESS)\\s+(\\d+)\\s+(FLAT|ZERO|SPARSE|VMFS|VMFSSPARSE|VMFSRDM|VMFSRAW)(?:\\s+\"([^\"]*)\"(?:\\s+(\\d+))?)?\\s*$");

    private record Extent(long start, long length, boolean zero, boolean writable, FileChannel file, long fileOffset) {}

    private final Path path;
    private final boolean readOnly;
    private final List<Extent> extents;
    private final long capacity;
    private final Syncer syncer = new Syncer();

    private VmdkImage(Path path, boolean readOnly, List<Extent> extents, long capacity) {
        this.path = path;
        this.readOnly = readOnly;
        this.extents = extents;
        this.capacity = capacity;
    }

    /** {@link #open(Path, boolean, boolean)} with extents in the descriptor's directory only. */
    public static VmdkImage open(Path path, boolean readOnly) throws IOException {
        return open(path, readOnly, false);
    }

    /**
     * @param allowOutside whether extents may be any path (absolute, through "..", through symlinks); false: plain
     *     names of regular files in the descriptor's directory, symlinks not followed
     */
    public static VmdkImage open(Path path, boolean readOnly, boolean allowOutside) throws IOException {
        return open(path, new ImageFiles.Opened(FileChannel.open(path, StandardOpenOption.READ), null), readOnly,
                allowOutside);
    }

    /**
     * The image whose descriptor file is open on {@code f} (closed here once read), {@code path} naming it: its
     * extents' names resolve in {@code path}'s directory.
     */
    static VmdkImage open(Path path, ImageFiles.Opened f, boolean readOnly, boolean allowOutside) throws IOException {
        byte[] head;
        long size;
        try (FileChannel ch = f.channel(); FileDescriptor d = f.fd()) {
            size = ch.size();
            head = new byte[(int) Math.min(size, MAX_DESCRIPTOR)];
            RawImage.readFully(ch, 0, ByteBuffer.wrap(head));
        }
        if (head.length >= 4 && head[0] == 'K' && head[1] == 'D' && head[2] == 'M' && head[3] == 'V') {
            throw DiskImageException.of(path, ImageFormat.VMDK, "sparse (KDMV) VMDK is not supported; only flat extents");
        }
        String text = new String(head, StandardCharsets.ISO_8859_1);
        if (size > MAX_DESCRIPTOR || !text.startsWith("# Disk DescriptorFile")) {
            throw DiskImageException.of(path, ImageFormat.VMDK, "not a VMDK descriptor file (no '# Disk DescriptorFile' header)");
        }
        List<Extent> extents = new ArrayList<>();
        List<FileChannel> opened = new ArrayList<>();
        long pos = 0;
        try {
            for (String raw : text.split("\r?\n")) {
                String line = raw.trim();
                if (line.startsWith("createType")) {
                    String t = line.replaceAll(".*=\\s*\"?([^\"]*)\"?", "$1");
                    if (!t.equals("monolithicFlat") && !t.equals("vmfs") && !t.equals("twoGbMaxExtentFlat")) {
                        throw DiskImageException.of(path, ImageFormat.VMDK, "createType " + t + " is not supported; only flat extents");
                    }
                }
                Matcher m = EXTENT.matcher(line);
                if (!m.matches()) {
                    continue;
                }
                long sectors = Long.parseLong(m.group(2));
                if (sectors > Long.MAX_VALUE / 512 - pos / 512) {
                    throw DiskImageException.of(path, ImageFormat.VMDK, "extent too large: " + line);
                }
                long len = sectors * 512;
                switch (m.group(3)) {
                    case "ZERO" -> extents.add(new Extent(pos, len, true, false, null, 0));
                    case "FLAT", "VMFS" -> {
                        if (m.group(4) == null) {
                            throw DiskImageException.of(path, ImageFormat.VMDK, "flat extent without a file: " + line);
                        }
                        String name = m.group(4);
                        // VMware Virtual Disk Format 5.0, extent descriptions: "Offset - the offset value is
                        // specified only for flat extents and corresponds to the offset in the file or device where
                        // the guest operating system's data is located" (in sectors). The extent must lie in its file.
                        long offSectors = m.group(5) == null ? 0 : Long.parseLong(m.group(5));
                        if (offSectors > (Long.MAX_VALUE - len) / 512) {
                            throw DiskImageException.of(path, ImageFormat.VMDK, "extent '" + name + "' offset too large: " + line);
                        }
                        long off = offSectors * 512;
                        boolean rw = !readOnly && m.group(1).equals("RW");
                        FileChannel ch = ImageFiles.open(path, ImageFormat.VMDK, "extent '" + name + "'", name, rw,
                                allowOutside, off + len);
                        opened.add(ch);
                        extents.add(new Extent(pos, len, false, rw, ch, off));
                    }
                    default -> throw DiskImageException.of(path, ImageFormat.VMDK,
                            "extent type " + m.group(3) + " is not supported; only FLAT and ZERO");
                }
                pos += len;
            }
            if (extents.isEmpty()) {
                throw DiskImageException.of(path, ImageFormat.VMDK, "descriptor has no extents");
            }
        } catch (IOException | RuntimeException e) {
            for (FileChannel ch : opened) {
                ch.close();
            }
            if (e instanceof NumberFormatException) {
                throw DiskImageException.of(path, ImageFormat.VMDK, "bad number in descriptor: " + e.getMessage());
            }
            throw e;
        }
        return new VmdkImage(path, readOnly, List.copyOf(extents), pos);
    }

    @Override
    public long capacityBytes() { return capacity; }

    private interface Op {
        void apply(Extent e, long within, int len, int bufPos) throws IOException;
    }

    private void forEach(long offset, int length, Op op) throws IOException {
        int done = 0;
        for (Extent e : extents) {
            if (done == length) {
                break;
            }
            long cur = offset + done;
            if (cur >= e.start() + e.length() || cur < e.start()) {
                continue;
            }
            int n = (int) Math.min(length - done, e.start() + e.length() - cur);
            op.apply(e, cur - e.start(), n, done);
            done += n;
        }
    }

    @Override
    public int read(long offset, ByteBuffer dst) throws IOException {
        int len = dst.remaining();
        checkRange(offset, len);
        int base = dst.position();
        forEach(offset, len, (e, within, n, at) -> {
            ByteBuffer part = dst.duplicate();
            part.position(base + at).limit(base + at + n);
            if (e.zero()) {
                while (part.hasRemaining()) {
                    part.put((byte) 0);
                }
            } else {
                RawImage.readFully(e.file(), e.fileOffset() + within, part);
            }
        });
        dst.position(base + len);
        return len;
    }

    @Override
    public int write(long offset, ByteBuffer src) throws IOException {
        checkWritable();
        int len = src.remaining();
        checkRange(offset, len);
        forEach(offset, len, (e, within, n, at) -> {
            if (!e.writable()) {
                throw DiskImageException.of(path, ImageFormat.VMDK, "write to a read-only or ZERO extent at " + (e.start() + within));
            }
        });
        int base = src.position();
        forEach(offset, len, (e, within, n, at) -> {
            ByteBuffer part = src.duplicate();
            part.position(base + at).limit(base + at + n);
            RawImage.writeFully(e.file(), e.fileOffset() + within, part);
        });
        src.position(base + len);
        return len;
    }

    private void checkWritable() throws DiskImageException {
        if (readOnly) {
            throw DiskImageException.of(path, ImageFormat.VMDK, "image is read-only");
        }
    }

    @Override
    public void flush(SyncMode mode) throws IOException {
        for (Extent e : extents) {
            if (e.writable()) {
                syncer.flush(e.file(), mode);
            }
        }
    }

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
    public void close() throws IOException {
        IOException first = null;
        for (Extent e : extents) {
            if (e.file() != null) {
                try {
                    e.file().close();
                } catch (IOException x) {
                    first = first == null ? x : first;
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }

    @Override
    public String toString() { return "vmdk:" + path; }
}
