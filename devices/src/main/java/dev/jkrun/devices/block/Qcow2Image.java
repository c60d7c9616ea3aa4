package dev.jkrun.devices.block;

import dev.jkrun.libc.FileDescriptor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * A qcow2 image (versions 2 and 3; docs/interop/qcow2.txt in QEMU). Reads follow the active L1/L2 tables:
 * unallocated clusters read from the backing file (when one is allowed) or as zeros, zero clusters as zeros,
 * compressed clusters are inflated (raw deflate). Writes allocate data clusters and L2 tables from the lowest
 * cluster whose refcount is 0 (as QEMU does), else at the end of the file, except that a write of a MiB or more
 * from a MiB-aligned guest offset starts at the lowest free MiB-aligned block ({@link #RUN_ALIGN}); refcount blocks
 * and tables go at the end. Each is counted in the refcount table before anything points at it, so that
 * {@code qemu-img check} finds no errors or leaks. A partial write to a compressed, zero or backing-file cluster
 * copies the rest of the cluster first. Discarded and copied-over clusters drop to refcount 0 and are allocated
 * again, so write/discard cycles (a guest's fstrim) do not grow the file.
 *
 * <p>Not supported: encryption, external data files, extended L2 entries, zstd compression, writing to images with
 * internal snapshots (shared clusters) or a dirty/corrupt flag.
 */
public final class Qcow2Image implements DiskImage {
    static final int MAGIC = 0x514649fb; // "QFI\xfb"
    /** L1/L2 entry bit 63: refcount is exactly 1, the cluster may be written in place. */
    static final long OFLAG_COPIED = 1L << 63;
    /** L2 entry bit 62: compressed cluster descriptor. */
    static final long OFLAG_COMPRESSED = 1L << 62;
    /** L2 entry bit 0 (version 3): the cluster reads as zeros. */
    static final long OFLAG_ZERO = 1L;
    /** Bits 9-55 of standard L1/L2 entries. */
    static final long OFFSET_MASK = 0x00ff_ffff_ffff_fe00L;
    /** Bits 9-63 of refcount table entries. */
    static final long REFT_OFFSET_MASK = 0xffff_ffff_ffff_fe00L;
    static final long INCOMPAT_DIRTY = 1, INCOMPAT_CORRUPT = 2, INCOMPAT_DATA_FILE = 4, INCOMPAT_COMPRESSION = 8,
            INCOMPAT_EXTL2 = 16;
    static final int EXT_END = 0, EXT_BACKING_FORMAT = 0xe2792aca;
    /** 32 MiB of L1 table: with 64 KiB clusters that maps 2 PiB. */
    private static final int MAX_L1_ENTRIES = 4 << 20;
    private static final long MAX_OFFSET = 1L << 56;
    private static final int MAX_BACKING_DEPTH = 16;
    private static final int L2_CACHE_TABLES = 32;
    private static final int REFCOUNT_CACHE_BLOCKS = 4;
    /**
     * A write of at least this many bytes from a guest offset aligned to it starts its new clusters at a host offset
     * aligned the same way (while such a block is free): the host's page cache holds file data in folios aligned in
     * the file (ext4's large folios), so data at the guest's alignment is read back in large folios, as a raw image's
     * is. Without it, data written after the metadata's first clusters sits a few clusters past each MiB.
     */
    static final int RUN_ALIGN = 1 << 20;
    /**
     * A run is aligned past the end of the file (skipping clusters that stay free for later single allocations) only
     * while fewer than this many aligned blocks' worth of clusters are free in the file, so the file never holds more
     * than about that much free space beyond what lowest-first allocation leaves (a guest that frees clusters here
     * and there cannot make the file grow past its disk's size).
     */
    private static final int ALIGN_SLACK_BLOCKS = 4;
    /** The most refcounts one search for a free aligned block reads; the next search goes on from there. */
    private static final int ALIGN_SCAN_BUDGET = 4096;

    private final Path path;
    private final FileChannel ch;
    /** The same file as {@link #ch}, for scatter/gather I/O of data runs; null when it could not be opened. */
    private final FileDescriptor fd;
    private final boolean readOnly;
    private final int version;
    private final int clusterBits;
    private final int clusterSize;
    private final int l2Bits;
    private final long size;
    private final long l1Offset;
    private final long[] l1;
    private long refcountTableOffset;
    private long[] refcountTable;
    private final int refcountBits;
    private final DiskImage backing;
    private final Syncer syncer = new Syncer();
    private final Map<Long, long[]> l2Cache = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Long, long[]> e) { return size() > L2_CACHE_TABLES; }
    };
    /** Refcount blocks by host offset, written through: the free-cluster search reads many entries. */
    private final Map<Long, byte[]> refcountCache = new LinkedHashMap<>(8, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Long, byte[]> e) { return size() > REFCOUNT_CACHE_BLOCKS; }
    };
    /** Host offset past every cluster in use: the file's end, rounded up to a cluster, or past the last allocation. */
    private long nextFree;
    /** No cluster below this index has refcount 0 (QEMU's free_cluster_index): the free search starts here. */
    private long freeHint;
    /** No {@link #RUN_ALIGN}-aligned block of free clusters starts below this cluster index. */
    private long alignedHint;
    /** Clusters below {@link #nextFree} with refcount 0; -1 until first needed (a run to align), then kept. */
    private long freeInFile = -1;
    /** A cluster dropped to refcount 0 since the last fdatasync (see {@link #allocateCluster}). */
    private boolean freedSinceSync;
    private long cachedCompressedHost = -1;
    private final byte[] cachedCompressed;
    private boolean closed;

    public static Qcow2Image open(Path path, boolean readOnly, boolean allowBackingFiles) throws IOException {
        return open(path, readOnly, allowBackingFiles, 0);
    }

    static Qcow2Image open(Path path, boolean readOnly, boolean allowBacking, int depth) throws IOException {
        return open(path, ImageFiles.openSame(path, !readOnly), readOnly, allowBacking, depth);
    }

    /** The image on {@code f} (an open file of {@code path}, closed if this fails), {@code path} naming it. */
    static Qcow2Image open(Path path, ImageFiles.Opened f, boolean readOnly, boolean allowBacking, int depth)
            throws IOException {
        try {
            return new Qcow2Image(path, f.channel(), f.fd(), readOnly, allowBacking, depth);
        } catch (IOException | RuntimeException e) {
            f.closeAfter(e);
            throw e;
        }
    }

    private DiskImageException bad(String problem) { return DiskImageException.of(path, ImageFormat.QCOW2, problem); }

    private Qcow2Image(Path path, FileChannel ch, FileDescriptor fd, boolean readOnly, boolean allowBacking, int depth)
            throws IOException {
        this.path = path;
        this.ch = ch;
        this.fd = fd;
        this.readOnly = readOnly;
        long fileSize = ch.size();
        ByteBuffer h = ByteBuffer.allocate(112);
        RawImage.readFully(ch, 0, h);
        h.flip(); // big-endian, the qcow2 byte order
        if (fileSize < 72 || h.getInt(0) != MAGIC) {
            throw bad("not a qcow2 image (bad magic)");
        }
        version = h.getInt(4);
        if (version != 2 && version != 3) {
            throw bad("unsupported qcow2 version " + version);
        }
        long backingOffset = h.getLong(8);
        int backingSize = h.getInt(16);
        clusterBits = h.getInt(20);
        if (clusterBits < 9 || clusterBits > 21) {
            throw bad("cluster_bits " + clusterBits + " out of range 9..21");
        }
        clusterSize = 1 << clusterBits;
        l2Bits = clusterBits - 3;
        size = h.getLong(24);
        if (size < 0 || size > (1L << 56)) {
            throw bad("virtual size " + size + " out of range");
        }
        if (h.getInt(32) != 0) {
            throw bad("encrypted images are not supported");
        }
        int l1Size = h.getInt(36);
        l1Offset = h.getLong(40);
        refcountTableOffset = h.getLong(48);
        int refcountTableClusters = h.getInt(56);
        int snapshots = h.getInt(60);
        int headerLength = 72;
        int refcountOrder = 4;
        if (version == 3) {
            long incompat = h.getLong(72);
            headerLength = h.getInt(100);
            refcountOrder = h.getInt(96);
            if (headerLength < 104 || headerLength > clusterSize) {
                throw bad("header_length " + headerLength + " invalid");
            }
            long known = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;
            if ((incompat & ~known) != 0) {
                throw bad("unknown incompatible features 0x" + Long.toHexString(incompat & ~known));
            }
            if ((incompat & INCOMPAT_CORRUPT) != 0) {
                throw bad("image is marked corrupt; repair it with qemu-img check -r all");
            }
            if ((incompat & INCOMPAT_DATA_FILE) != 0) {
                throw bad("external data files are not supported");
            }
            if ((incompat & INCOMPAT_EXTL2) != 0) {
                throw bad("extended L2 entries are not supported");
            }
            if ((incompat & INCOMPAT_COMPRESSION) != 0 && headerLength > 104 && (h.get(104) & 0xff) != 0) {
                throw bad("compression type " + (h.get(104) & 0xff) + " is not supported (only zlib)");
            }
            if ((incompat & INCOMPAT_DIRTY) != 0 && !readOnly) {
                throw bad("image is dirty (refcounts may be wrong); repair it with qemu-img check -r all or open it read-only");
            }
        }
        if (refcountOrder < 0 || refcountOrder > 6) {
            throw bad("refcount_order " + refcountOrder + " out of range");
        }
        refcountBits = 1 << refcountOrder;
        if (!readOnly && refcountBits < 8) {
            throw bad("refcount widths below 8 bits are supported read-only only");
        }
        if (!readOnly && snapshots != 0) {
            throw bad("images with internal snapshots are supported read-only only");
        }
        long needL1 = ceilDiv(ceilDiv(size, clusterSize), 1L << l2Bits);
        if (l1Size < needL1 || l1Size > MAX_L1_ENTRIES) {
            throw bad("l1_size " + l1Size + " does not fit the virtual size " + size);
        }
        if (l1Offset <= 0 || l1Offset >= MAX_OFFSET || refcountTableOffset <= 0 || refcountTableOffset >= MAX_OFFSET
                || backingOffset < 0 || backingOffset >= clusterSize && backingOffset != 0) {
            throw bad("header offsets out of range (corrupt image)");
        }
        if ((l1Offset & (clusterSize - 1)) != 0 || (refcountTableOffset & (clusterSize - 1)) != 0) {
            throw bad("L1 or refcount table not cluster-aligned");
        }
        if (refcountTableClusters <= 0 || refcountTableClusters > (8 << 20) / clusterSize) {
            throw bad("refcount_table_clusters " + refcountTableClusters + " out of range");
        }
        // qcow2.txt: l1_table_offset and refcount_table_offset are "offset[s] into the image file": tables running
        // past the file's end are corrupt, and reading them would let a tiny file claim tens of MiB of heap.
        if (8L * l1Size > fileSize - l1Offset) {
            throw bad("L1 table (" + l1Size + " entries at 0x" + Long.toHexString(l1Offset) + ") runs past the end of the file");
        }
        if ((long) refcountTableClusters * clusterSize > fileSize - refcountTableOffset) {
            throw bad("refcount table (" + refcountTableClusters + " clusters at 0x" + Long.toHexString(refcountTableOffset)
                    + ") runs past the end of the file");
        }
        l1 = readTable(l1Offset, l1Size);
        refcountTable = readTable(refcountTableOffset, refcountTableClusters * (clusterSize / 8));
        nextFree = ceilDiv(fileSize, clusterSize) * clusterSize;
        cachedCompressed = new byte[clusterSize];

        String backingFormat = null;
        long ext = headerLength;
        while (ext + 8 <= clusterSize) {
            ByteBuffer eh = ByteBuffer.allocate(8);
            RawImage.readFully(ch, ext, eh);
            int type = eh.getInt(0);
            long len = Integer.toUnsignedLong(eh.getInt(4));
            if (type == EXT_END) {
                break;
            }
            if (ext + 8 + len > clusterSize) {
                throw bad("header extension 0x" + Integer.toHexString(type) + " runs past the first cluster");
            }
            if (type == EXT_BACKING_FORMAT) {
                ByteBuffer s = ByteBuffer.allocate((int) len);
                RawImage.readFully(ch, ext + 8, s);
                backingFormat = new String(s.array(), StandardCharsets.UTF_8);
            }
            ext += 8 + ((len + 7) & ~7L);
        }

        DiskImage b = null;
        if (backingOffset != 0) {
            if (backingSize <= 0 || backingSize > 1023 || backingOffset + backingSize > clusterSize) {
                throw bad("backing file name invalid (offset " + backingOffset + ", size " + backingSize + ")");
            }
            ByteBuffer s = ByteBuffer.allocate(backingSize);
            RawImage.readFully(ch, backingOffset, s);
            String name = new String(s.array(), StandardCharsets.UTF_8);
            if (!allowBacking) {
                throw bad("backing file not allowed (image refers to '" + name + "'); enable backing files to use it");
            }
            if (depth >= MAX_BACKING_DEPTH) {
                throw bad("backing chain deeper than " + MAX_BACKING_DEPTH);
            }
            if (backingFormat == null) {
                throw bad("backing file '" + name + "' has no recorded format; formats are never probed (qemu-img rebase -F)");
            }
            ImageFormat fmt = switch (backingFormat) {
                case "raw" -> ImageFormat.RAW;
                case "qcow2" -> ImageFormat.QCOW2;
                case "vmdk" -> ImageFormat.VMDK;
                default -> throw bad("backing file format '" + backingFormat + "' is not supported");
            };
            Path bp = path.toAbsolutePath().getParent().resolve(name);
            // Even allowed, a name from an image never opens a FIFO (open(2) would block) or a device.
            ImageFiles.Opened bf = ImageFiles.openBacking(path, ImageFormat.QCOW2, "backing file '" + name + "'", bp);
            b = switch (fmt) {
                case QCOW2 -> open(bp, bf, true, true, depth + 1);
                case RAW -> RawImage.open(bp, bf, true);
                case VMDK -> VmdkImage.open(bp, bf, true, true);
            };
        }
        backing = b;
    }

    private static long ceilDiv(long a, long b) { return (a + b - 1) / b; }

    private long[] readTable(long offset, int entries) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(entries * 8);
        RawImage.readFully(ch, offset, buf);
        buf.flip();
        long[] t = new long[entries];
        buf.asLongBuffer().get(t);
        return t;
    }

    public Path path() { return path; }

    public int clusterSize() { return clusterSize; }

    /** The backing image, if the image has one and backing files were allowed. */
    public DiskImage backing() { return backing; }

    @Override
    public long capacityBytes() { return size; }

    @Override
    public boolean readOnly() { return readOnly; }

    // ---- lookup -------------------------------------------------------------------------------------------------

    private long[] l2Table(long l2Offset) throws IOException {
        long[] t = l2Cache.get(l2Offset);
        if (t == null) {
            if ((l2Offset & (clusterSize - 1)) != 0) {
                throw bad("L2 table at 0x" + Long.toHexString(l2Offset) + " not cluster-aligned (corrupt image)");
            }
            t = readTable(l2Offset, 1 << l2Bits);
            l2Cache.put(l2Offset, t);
        }
        return t;
    }

    private int l1Index(long vOff) { return (int) (vOff >>> (clusterBits + l2Bits)); }

    private int l2Index(long vOff) { return (int) ((vOff >>> clusterBits) & ((1 << l2Bits) - 1)); }

    /** The L2 entry for the cluster holding {@code vOff}; 0 when its L2 table is not allocated. */
    private long l2Entry(long vOff) throws IOException {
        long l2Off = l1[l1Index(vOff)] & OFFSET_MASK;
        return l2Off == 0 ? 0 : l2Table(l2Off)[l2Index(vOff)];
    }

    private boolean isCompressed(long e) { return (e & OFLAG_COMPRESSED) != 0; }

    private boolean isZero(long e) { return version >= 3 && !isCompressed(e) && (e & OFLAG_ZERO) != 0; }

    private int compressedShift() { return 62 - (clusterBits - 8); }

    private long compressedHost(long e) { return e & ((1L << compressedShift()) - 1); }

    /** Bytes from the 512-byte sector holding the compressed data's start to the end of its last sector. */
    private long compressedSpan(long e) {
        long sectors = ((e & ~OFLAG_COMPRESSED & ~OFLAG_COPIED) >>> compressedShift()) + 1;
        return sectors * 512;
    }

    // ---- read ---------------------------------------------------------------------------------------------------

    @Override
    public int read(long offset, ByteBuffer dst) throws IOException {
        return (int) read(offset, new ByteBuffer[] {dst});
    }

    /**
     * Reads cluster by cluster, except that a run of data clusters stored one after another in the file (how
     * qemu-img and sequential writes lay them out) is one read of the whole run: a 1 MiB request over 64 KiB
     * clusters is one pread, not sixteen, and one preadv when the request comes in 4 KiB guest pages, not 256.
     */
    @Override
    public synchronized long read(long offset, ByteBuffer[] dsts) throws IOException {
        ensureOpen();
        long len = Segments.remaining(dsts);
        checkRange(offset, len);
        Segments segs = new Segments(dsts);
        long done = 0;
        while (done < len) {
            long v = offset + done;
            long n = Math.min(clusterSize - (v & (clusterSize - 1)), len - done);
            long e = l2Entry(v);
            if (isPlainData(e)) {
                long host = (e & OFFSET_MASK) + (v & (clusterSize - 1));
                while (done + n < len) { // v + n is the start of the next cluster
                    long next = l2Entry(v + n);
                    if (!isPlainData(next) || (next & OFFSET_MASK) != host + n) {
                        break;
                    }
                    n += Math.min(clusterSize, len - done - n);
                }
                RawImage.readFully(ch, fd, host, segs.take(n));
            } else {
                long at = v;
                for (ByteBuffer part : segs.take(n)) {
                    int k = part.remaining();
                    if (k > 0) {
                        readPiece(at, e, part);
                        at += k;
                    }
                }
            }
            done += n;
        }
        return len;
    }

    /** An L2 entry naming a data cluster in this file: not compressed, not reading as zeros, allocated. */
    private boolean isPlainData(long e) { return !isCompressed(e) && !isZero(e) && (e & OFFSET_MASK) != 0; }

    /** Fills {@code part} (within one cluster) with the contents at {@code v} described by L2 entry {@code e}. */
    private void readPiece(long v, long e, ByteBuffer part) throws IOException {
        int in = (int) (v & (clusterSize - 1));
        if (isCompressed(e)) {
            inflate(e);
            part.put(cachedCompressed, in, part.remaining());
        } else if (isZero(e)) {
            RawImage.zero(part);
        } else if ((e & OFFSET_MASK) != 0) {
            RawImage.readFully(ch, (e & OFFSET_MASK) + in, part);
        } else if (backing != null) {
            readBacking(v, part);
        } else {
            RawImage.zero(part);
        }
    }

    private void readBacking(long v, ByteBuffer part) throws IOException {
        long cap = backing.capacityBytes();
        if (v < cap) {
            ByteBuffer b = part.duplicate();
            b.limit((int) Math.min(b.limit(), b.position() + (cap - v)));
            backing.read(v, b);
            part.position(b.position());
        }
        RawImage.zero(part);
    }

    private void inflate(long e) throws IOException {
        long host = compressedHost(e);
        if (host == cachedCompressedHost) {
            return;
        }
        cachedCompressedHost = -1;
        long start = host & ~511L;
        int span = (int) Math.min(compressedSpan(e) - (host - start), 2L * clusterSize + 512);
        ByteBuffer src = ByteBuffer.allocate(span);
        RawImage.readFully(ch, host, src);
        Inflater inf = new Inflater(true);
        try {
            inf.setInput(src.array(), 0, span);
            int got = 0;
            while (got < clusterSize) {
                int n = inf.inflate(cachedCompressed, got, clusterSize - got);
                if (n == 0 && (inf.finished() || inf.needsInput() || inf.needsDictionary())) {
                    break;
                }
                got += n;
            }
            if (got < clusterSize) {
                throw bad("compressed cluster at 0x" + Long.toHexString(host) + " inflates to " + got + " bytes, not " + clusterSize);
            }
        } catch (DataFormatException x) {
            throw new DiskImageException(path + ": qcow2: compressed cluster at 0x" + Long.toHexString(host) + " is corrupt", x);
        } finally {
            inf.end();
        }
        cachedCompressedHost = host;
    }

    // ---- write --------------------------------------------------------------------------------------------------

    @Override
    public int write(long offset, ByteBuffer src) throws IOException {
        return (int) write(offset, new ByteBuffer[] {src});
    }

    /**
     * Writes cluster by cluster, except that whole clusters which land one after another in the file are one write
     * straight from {@code srcs}: clusters already allocated there (written in place), or new ones the allocator
     * hands out consecutively (a sequential write past the data, as a guest's first write of a file is). A 1 MiB
     * request over 64 KiB clusters is then one pwrite (one pwritev when it comes in guest pages), not sixteen each
     * through a copy, and the page cache keeps its data in large folios, which later reads copy from faster.
     */
    @Override
    public synchronized long write(long offset, ByteBuffer[] srcs) throws IOException {
        ensureOpen();
        checkWritable();
        long len = Segments.remaining(srcs);
        checkRange(offset, len);
        Segments segs = new Segments(srcs);
        long done = 0;
        try {
            while (done < len) {
                long v = offset + done;
                int in = (int) (v & (clusterSize - 1));
                int n = (int) Math.min(clusterSize - in, len - done);
                long run = in == 0 && n == clusterSize ? writeWholeClusters(v, segs, len - done) : 0;
                if (run == 0) {
                    ByteBuffer[] parts = segs.take(n);
                    writePiece(v, parts.length == 1 ? parts[0] : gather(parts, n));
                    run = n;
                }
                done += run;
            }
        } catch (IOException | RuntimeException e) {
            freeInFile = -1; // an allocation may have stopped half-way: counted again when next needed
            throw e;
        }
        return len;
    }

    /** The bytes of {@code parts} (a piece of one cluster spread over guest buffers) in one heap buffer. */
    private static ByteBuffer gather(ByteBuffer[] parts, int n) {
        ByteBuffer all = ByteBuffer.allocate(n);
        for (ByteBuffer p : parts) {
            all.put(p);
        }
        return all.flip();
    }

    /**
     * Writes the whole clusters from guest offset {@code v} (cluster-aligned; {@code room} bytes of {@code segs} are
     * left, at least one cluster) that form one run in the file, straight from {@code segs}, and returns the bytes
     * written; 0 when the first is a preallocated zero cluster, which {@link #writePiece} writes. A run is either
     * clusters written in place (this image's own, plain data) at consecutive file offsets, or clusters that each
     * need a new one (never written, compressed or shared) while the allocator's next free cluster is the one after
     * the last: each is allocated only once it is known to continue the run. As for one cluster, the data is written
     * before the L2 entries that point at it, and an old entry's references are dropped after.
     */
    private long writeWholeClusters(long v, Segments segs, long room) throws IOException {
        long max = room >>> clusterBits;
        long[] l2 = ensureL2(v);
        long e = l2[l2Index(v)];
        boolean inPlace = writtenInPlace(e);
        if (inPlace && isZero(e)) {
            return 0;
        }
        long first = inPlace ? e & OFFSET_MASK : allocateRunStart(v, room);
        int count = 1;
        try {
            while (count < max) {
                long vi = v + ((long) count << clusterBits);
                long hostI = first + ((long) count << clusterBits);
                long l1e = l1[l1Index(vi)];
                if ((l1e & OFFSET_MASK) == 0 || (l1e & OFLAG_COPIED) == 0) {
                    break; // its L2 table is to be allocated (in the way of the run) or is shared: writePiece's case
                }
                long ei = l2Table(l1e & OFFSET_MASK)[l2Index(vi)];
                if (inPlace) {
                    if (!writtenInPlace(ei) || isZero(ei) || (ei & OFFSET_MASK) != hostI) {
                        break;
                    }
                } else {
                    if (writtenInPlace(ei) || !isFree(hostI >>> clusterBits)) {
                        break;
                    }
                    allocate(hostI >>> clusterBits);
                }
                count++;
            }
            RawImage.writeFully(ch, fd, first, segs.take((long) count << clusterBits));
        } catch (IOException | RuntimeException x) {
            if (!inPlace) {
                unallocate(first, count, x);
            }
            throw x;
        }
        if (!inPlace) {
            // Each old entry is read again here rather than kept from the scan: nothing since has written an L2
            // table (allocation touches refcounts only), and a table evicted from the cache reads back the same.
            for (int i = 0; i < count; i++) {
                long vi = v + ((long) i << clusterBits);
                long[] t = l2Table(l1[l1Index(vi)] & OFFSET_MASK);
                int idx = l2Index(vi);
                long old = t[idx];
                setL2(vi, t, idx, (first + ((long) i << clusterBits)) | OFLAG_COPIED);
                release(old);
            }
        }
        return (long) count << clusterBits;
    }

    /**
     * Gives back {@code count} clusters from {@code first} that a failed run had allocated and not yet linked (no L2
     * entry names them, so no sync is needed before they are used again); a failure here leaves them leaked, as
     * qemu-img check reports and repairs, and is added to {@code cause}.
     */
    private void unallocate(long first, int count, Exception cause) {
        try {
            for (int i = 0; i < count; i++) {
                long c = (first >>> clusterBits) + i;
                if (getRefcount(c) == 1) {
                    setRefcount(c, 0);
                    freed(c);
                }
            }
        } catch (IOException | RuntimeException y) {
            cause.addSuppressed(y);
        }
    }

    /** A cluster of this image alone, not compressed: a write goes where it is (when zero-flagged: all of it). */
    private boolean writtenInPlace(long e) { return !isCompressed(e) && (e & OFFSET_MASK) != 0 && (e & OFLAG_COPIED) != 0; }

    /** Writes {@code part} (within one cluster) at {@code v}. */
    private void writePiece(long v, ByteBuffer part) throws IOException {
        int in = (int) (v & (clusterSize - 1));
        int n = part.remaining();
        long[] l2 = ensureL2(v);
        int idx = l2Index(v);
        long e = l2[idx];
        long host = e & OFFSET_MASK;
        boolean inPlace = writtenInPlace(e);
        if (inPlace && !isZero(e)) {
            RawImage.writeFully(ch, host + in, part);
            return;
        }
        // Build the whole new cluster: the old contents (unless fully overwritten), then the new bytes.
        ByteBuffer cluster = ByteBuffer.allocate(clusterSize);
        if (n < clusterSize) {
            long clusterStart = v - in;
            if (!isZero(e)) {
                readPiece(clusterStart, e, cluster.duplicate().limit(clusterSize));
            }
        }
        cluster.position(in);
        cluster.put(part.duplicate());
        cluster.clear();
        long target = inPlace ? host : allocateCluster();
        RawImage.writeFully(ch, target, cluster);
        setL2(v, l2, idx, target | OFLAG_COPIED);
        if (!inPlace) {
            release(e);
        }
    }

    /** Drops the references an old L2 entry held (a compressed cluster's sectors, or a shared data cluster). */
    private void release(long e) throws IOException {
        if (isCompressed(e)) {
            long start = compressedHost(e) & ~511L;
            long end = start + compressedSpan(e);
            for (long c = start >>> clusterBits; c <= (end - 1) >>> clusterBits; c++) {
                decrement(c);
            }
            if (compressedHost(e) == cachedCompressedHost) {
                cachedCompressedHost = -1;
            }
        } else if ((e & OFFSET_MASK) != 0) {
            decrement((e & OFFSET_MASK) >>> clusterBits);
        }
    }

    private void decrement(long cluster) throws IOException {
        long rc = getRefcount(cluster);
        if (rc == 0) {
            throw bad("refcount of cluster " + cluster + " would go below 0 (corrupt image)");
        }
        setRefcount(cluster, rc - 1);
        if (rc == 1) {
            freed(cluster);
            freedSinceSync = true;
        }
    }

    private void setL2(long v, long[] l2, int idx, long entry) throws IOException {
        l2[idx] = entry;
        long l2Off = l1[l1Index(v)] & OFFSET_MASK;
        writeLong(l2Off + 8L * idx, entry);
    }

    /** The L2 table for {@code v}, allocated (zeroed, counted, linked from L1) when missing. */
    private long[] ensureL2(long v) throws IOException {
        int i = l1Index(v);
        long l1e = l1[i];
        long l2Off = l1e & OFFSET_MASK;
        if (l2Off != 0) {
            if ((l1e & OFLAG_COPIED) == 0) {
                throw bad("L2 table at 0x" + Long.toHexString(l2Off) + " is shared (snapshots); writing it is not supported");
            }
            return l2Table(l2Off);
        }
        long off = allocateCluster();
        RawImage.writeFully(ch, off, ByteBuffer.allocate(clusterSize));
        long[] t = new long[1 << l2Bits];
        l2Cache.put(off, t);
        l1[i] = off | OFLAG_COPIED;
        writeLong(l1Offset + 8L * i, l1[i]);
        return t;
    }

    /**
     * A cluster with refcount 0 (the lowest from {@link #freeHint}, else the one at the end of the file), given
     * refcount 1; the caller writes all of it. A cluster freed since the last fdatasync is reused only after one:
     * the L2 entry that let it go must be on disk before new data lands in it, or a crash could leave the old guest
     * offset reading another offset's data (without reuse, the file's end was always a never-referenced cluster).
     */
    private long allocateCluster() throws IOException {
        return allocate(findFreeCluster());
    }

    /** {@link #allocateCluster} for cluster {@code c}, which is free ({@link #isFree}). */
    private long allocate(long c) throws IOException {
        checkRoom(c << clusterBits, clusterSize);
        long end = nextFree >>> clusterBits;
        if (c >= end) {
            nextFree = (c + 1) << clusterBits;
            if (freeInFile >= 0) {
                freeInFile += c - end; // the clusters skipped to align a run
            }
        } else {
            if (freeInFile > 0) {
                freeInFile--;
            }
            if (freedSinceSync) {
                ch.force(false);
                freedSinceSync = false;
            }
        }
        if (c == freeHint) {
            freeHint = c + 1;
        }
        if (c >= alignedHint && c < alignedHint + (RUN_ALIGN >>> clusterBits)) {
            alignedHint = (c | ((RUN_ALIGN >>> clusterBits) - 1)) + 1; // its block is no longer all free
        }
        setRefcount(c, 1);
        return c << clusterBits;
    }

    /**
     * Throws unless {@code bytes} from host offset {@code at} fit below 2^56, qcow2's limit: the bits above an entry's
     * offset are its flags (bit 62: compressed), so a cluster there could not be named (a huge sparse image file).
     */
    private void checkRoom(long at, long bytes) throws DiskImageException {
        if (at < 0 || at > MAX_OFFSET - bytes) {
            throw bad("no room for a cluster at 0x" + Long.toHexString(at) + ": host offsets end at 2^56");
        }
    }

    /** Cluster {@code c} dropped to refcount 0: the searches look from it (or its aligned block) again. */
    private void freed(long c) {
        freeHint = Math.min(freeHint, c);
        alignedHint = Math.min(alignedHint, c & -(long) (RUN_ALIGN >>> clusterBits));
        if (freeInFile >= 0) {
            freeInFile++;
        }
    }

    /**
     * The lowest cluster at or above {@link #freeHint} with refcount 0 that holds no fixed metadata; the hint moves
     * up to it, as every cluster below is in use.
     */
    private long findFreeCluster() throws IOException {
        long end = nextFree >>> clusterBits;
        long c = freeHint;
        while (c < end && (fixedMetadata(c) || getRefcount(c) != 0)) {
            c++;
        }
        freeHint = c;
        return c;
    }

    /** Past every cluster in use, or counted 0 and holding no fixed metadata. */
    private boolean isFree(long c) throws IOException {
        return c >= nextFree >>> clusterBits || !fixedMetadata(c) && getRefcount(c) == 0;
    }

    /**
     * The first new cluster for a run of whole clusters from guest offset {@code v} ({@code room} bytes to write).
     * A write of at least {@link #RUN_ALIGN} bytes from an offset aligned to it takes the lowest free block aligned
     * the same way in the file, or one past its end while few clusters are free in the file
     * ({@link #ALIGN_SLACK_BLOCKS}); anything else, and clusters too small for an L2 table to cover the block, the
     * lowest free cluster. Clusters skipped at the end stay free for what is allocated one by one (L2 tables, pieces).
     */
    private long allocateRunStart(long v, long room) throws IOException {
        int k = RUN_ALIGN >>> clusterBits;
        if (k <= 1 || clusterBits + l2Bits < 20 || (v & (RUN_ALIGN - 1)) != 0 || room < RUN_ALIGN) {
            return allocateCluster();
        }
        // The block's refcount blocks are made before it is taken: one made while counting it would go at the end
        // of the file, inside the block, and break the run. Made here, they may take the block found: look again.
        for (int tries = 0; tries < 4; tries++) {
            long free = freeClusters();
            long b = free >= k ? findFreeBlock(k) : -1;
            if (b < 0) {
                if (free >= (long) ALIGN_SLACK_BLOCKS * k) {
                    return allocateCluster();
                }
                b = ((nextFree >>> clusterBits) + k - 1) & -(long) k;
            }
            long perBlock = refcountsPerBlock();
            boolean made = false;
            for (long t = b / perBlock; t <= (b + k - 1) / perBlock; t++) {
                made |= t >= refcountTable.length || refcountBlock(t) == 0;
                ensureRefcountBlock(t);
            }
            if (!made) {
                return allocate(b);
            }
        }
        return allocateCluster();
    }

    /**
     * The lowest block of {@code k} free clusters aligned to {@code k} that starts in the file (its tail may lie past
     * the end), or -1: none, or none within {@link #ALIGN_SCAN_BUDGET} refcounts, after which the next search goes on
     * from where this one stopped.
     */
    private long findFreeBlock(int k) throws IOException {
        long end = nextFree >>> clusterBits;
        long b = Math.max(alignedHint, freeHint & -(long) k);
        int budget = ALIGN_SCAN_BUDGET;
        scan:
        for (; b < end; b += k) {
            for (long c = b; c < b + k && c < end; c++) {
                if (--budget < 0) {
                    alignedHint = b;
                    return -1;
                }
                if (fixedMetadata(c) || getRefcount(c) != 0) {
                    continue scan;
                }
            }
            alignedHint = b;
            return b;
        }
        alignedHint = b;
        return -1;
    }

    /** {@link #freeInFile}, counted from the refcount blocks the first time. */
    private long freeClusters() throws IOException {
        if (freeInFile < 0) {
            long end = nextFree >>> clusterBits, per = refcountsPerBlock(), n = 0;
            for (long t = 0; t * per < end; t++) {
                long lo = t * per, hi = Math.min(end, lo + per);
                long block = t < refcountTable.length ? refcountBlock(t) : 0;
                if (block == 0) {
                    n += hi - lo;
                    continue;
                }
                byte[] rb = refcountBlockBytes(block);
                for (long c = lo; c < hi; c++) {
                    if (refcountIn(rb, c) == 0) {
                        n++;
                    }
                }
            }
            freeInFile = n;
        }
        return freeInFile;
    }

    /**
     * The header, L1 table and refcount table: counted in any image qemu-img check passes, but a corrupt refcount
     * of 0 must not make a data write land on them.
     */
    private boolean fixedMetadata(long c) {
        return c == 0 || within(c, l1Offset, 8L * l1.length) || within(c, refcountTableOffset, 8L * refcountTable.length);
    }

    private boolean within(long cluster, long offset, long bytes) {
        return bytes > 0 && cluster >= offset >>> clusterBits && cluster <= (offset + bytes - 1) >>> clusterBits;
    }

    private long refcountBlock(long t) throws DiskImageException {
        long block = refcountTable[(int) t] & REFT_OFFSET_MASK;
        if (block < 0 || block >= MAX_OFFSET || (block & (clusterSize - 1)) != 0) {
            throw bad("refcount block " + t + " at 0x" + Long.toHexString(block) + " is invalid (corrupt image)");
        }
        return block;
    }

    private int refcountsPerBlock() { return clusterSize * 8 / refcountBits; }

    private long getRefcount(long cluster) throws IOException {
        long t = cluster / refcountsPerBlock();
        if (t >= refcountTable.length) {
            return 0;
        }
        long block = refcountBlock(t);
        if (block == 0) {
            return 0;
        }
        return refcountIn(refcountBlockBytes(block), cluster);
    }

    /** {@code cluster}'s refcount in its refcount block {@code rb} (refcounts of 8 bits or more: writable images). */
    private long refcountIn(byte[] rb, long cluster) {
        int bytes = refcountBits / 8;
        int at = (int) (cluster % refcountsPerBlock()) * bytes;
        long v = 0;
        for (int k = 0; k < bytes; k++) {
            v = v << 8 | (rb[at + k] & 0xff);
        }
        return v;
    }

    private byte[] refcountBlockBytes(long block) throws IOException {
        byte[] rb = refcountCache.get(block);
        if (rb == null) {
            ByteBuffer buf = ByteBuffer.allocate(clusterSize);
            RawImage.readFully(ch, block, buf);
            rb = buf.array();
            refcountCache.put(block, rb);
        }
        return rb;
    }

    /** Sets a refcount, allocating the refcount block first when missing (which counts itself). */
    private void setRefcount(long cluster, long value) throws IOException {
        long block = ensureRefcountBlock(cluster / refcountsPerBlock());
        byte[] rb = refcountBlockBytes(block);
        int bytes = refcountBits / 8;
        int at = (int) (cluster % refcountsPerBlock()) * bytes;
        for (int k = bytes - 1; k >= 0; k--) {
            rb[at + k] = (byte) (value >>> (8 * (bytes - 1 - k)));
        }
        RawImage.writeFully(ch, block + at, ByteBuffer.wrap(rb, at, bytes));
    }

    /** Refcount block {@code t}'s offset, the block made first (at the end of the file, counting itself) if missing. */
    private long ensureRefcountBlock(long t) throws IOException {
        if (t >= refcountTable.length) {
            growRefcountTable(t);
        }
        long block = refcountBlock(t);
        if (block == 0) {
            checkRoom(nextFree, clusterSize);
            block = nextFree;
            nextFree += clusterSize;
            RawImage.writeFully(ch, block, ByteBuffer.allocate(clusterSize));
            refcountCache.put(block, new byte[clusterSize]);
            refcountTable[(int) t] = block;
            writeLong(refcountTableOffset + 8L * t, block);
            setRefcount(block >>> clusterBits, 1);
        }
        return block;
    }

    /**
     * Moves the refcount table to a bigger copy at the end of the file that has room for entry {@code need}: the
     * copy is written, the header switched to it, its clusters counted, then the old table's clusters freed.
     */
    private void growRefcountTable(long need) throws IOException {
        long entriesPerCluster = clusterSize / 8;
        long want = Math.max(need + 1 + entriesPerCluster, (long) refcountTable.length * 2);
        long clusters = ceilDiv(want, entriesPerCluster);
        if (clusters > (8L << 20) / clusterSize) {
            throw bad("refcount table would exceed its size limit at entry " + need);
        }
        long[] old = refcountTable;
        long oldOffset = refcountTableOffset;
        long oldClusters = ceilDiv(old.length, entriesPerCluster);
        long[] table = Arrays.copyOf(old, (int) (clusters * entriesPerCluster));
        checkRoom(nextFree, clusters * clusterSize);
        long off = nextFree;
        nextFree += clusters * clusterSize;
        ByteBuffer buf = ByteBuffer.allocate(table.length * 8);
        buf.asLongBuffer().put(table);
        RawImage.writeFully(ch, off, buf);
        ByteBuffer hdr = ByteBuffer.allocate(12).putLong(0, off).putInt(8, (int) clusters);
        RawImage.writeFully(ch, 48, hdr); // refcount_table_offset, refcount_table_clusters
        refcountTable = table;
        refcountTableOffset = off;
        for (long c = 0; c < clusters; c++) {
            setRefcount((off >>> clusterBits) + c, 1);
        }
        for (long c = 0; c < oldClusters; c++) {
            decrement((oldOffset >>> clusterBits) + c);
        }
    }

    private void writeLong(long at, long value) throws IOException {
        RawImage.writeFully(ch, at, ByteBuffer.allocate(8).putLong(0, value));
    }

    // ---- zeroes, discard, flush ---------------------------------------------------------------------------------

    @Override
    public synchronized void writeZeroes(long offset, long length) throws IOException {
        ensureOpen();
        checkWritable();
        checkRange(offset, length);
        long done = 0;
        try {
            while (done < length) {
                long v = offset + done;
                int in = (int) (v & (clusterSize - 1));
                int n = (int) Math.min(clusterSize - in, length - done);
                zeroPiece(v, n);
                done += n;
            }
        } catch (IOException | RuntimeException e) {
            freeInFile = -1; // as in write
            throw e;
        }
    }

    private void zeroPiece(long v, int n) throws IOException {
        long e = l2Entry(v);
        boolean holdsNothing = (e & OFFSET_MASK) == 0 && !isCompressed(e);
        if (holdsNothing && (isZero(e) || backing == null)) {
            return; // reads as zeros already
        }
        // A whole cluster is unlinked and freed. qcow2.txt: bit 0 of a version 3 L2 entry means "the cluster reads
        // as all zeros"; an unallocated one reads from the backing file, or as zeros when there is none.
        if (n == clusterSize && (version >= 3 || backing == null)) {
            long[] l2 = ensureL2(v);
            int idx = l2Index(v);
            long old = l2[idx];
            setL2(v, l2, idx, version >= 3 ? OFLAG_ZERO : 0);
            release(old);
            return;
        }
        if (isZero(e)) {
            return; // part of a preallocated zero cluster
        }
        writePiece(v, ByteBuffer.allocate(n));
    }

    /** Discarded ranges read as zeros afterwards (the same as {@link #writeZeroes}); whole clusters are freed. */
    @Override
    public void discard(long offset, long length) throws IOException { writeZeroes(offset, length); }

    @Override
    public synchronized void flush(SyncMode mode) throws IOException {
        ensureOpen();
        if (!readOnly && syncer.flush(ch, mode)) {
            freedSinceSync = false;
        }
    }

    private void checkWritable() throws DiskImageException {
        if (readOnly) {
            throw bad("image is read-only");
        }
    }

    private void ensureOpen() throws DiskImageException {
        if (closed) {
            throw bad("image is closed");
        }
    }

    @Override
    public synchronized void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        try (FileChannel c = ch; FileDescriptor d = fd; DiskImage b = backing) {
            // each closed, in reverse order, whatever the others throw
        }
    }

    @Override
    public String toString() { return "qcow2:" + path; }
}
