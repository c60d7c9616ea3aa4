package dev.jkrun.devices.block;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.PosixFs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A raw image with direct I/O (O_DIRECT through an aligned bounce buffer) behaves byte for byte like one through the
 * page cache: any 512-byte-granular (or byte-granular) offset and length, requests larger than the bounce buffer,
 * read-modify-write at unaligned ends, scatter/gather over odd buffers, a tail shorter than a block, EOF. Also
 * WRITE_ZEROES through FALLOC_FL_ZERO_RANGE and its fallback, and the refusal on a file system without O_DIRECT.
 */
class RawImageDirectIoTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path tmp;
    /** A directory on a file system with O_DIRECT. */
    Path dir;

    @BeforeEach
    void directDir() throws IOException { dir = DirectIoDirs.supporting(tmp); }

    private static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    private Path image(String name, byte[] contents) throws IOException { return Files.write(dir.resolve(name), contents); }

    private static byte[] read(DiskImage img, long offset, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        assertEquals(n, img.read(offset, b));
        return b.array();
    }

    private static void write(DiskImage img, long offset, byte[] data, byte[] model) throws IOException {
        assertEquals(data.length, img.write(offset, ByteBuffer.wrap(data)));
        System.arraycopy(data, 0, model, (int) offset, data.length);
    }

    @Test
    void opensWithTheFileSystemsAlignment() throws Exception {
        Path f = image("a.raw", new byte[MIB]);
        int expected;
        try (FileDescriptor fd = PosixFs.openat(null, PosixFs.bytes(f.toString()), PosixFs.O_RDONLY, 0)) {
            expected = (int) Math.max(512, PosixFs.fstatvfs(fd).frsize());
        }
        int fds = FileDescriptor.openCount();
        try (RawImage img = RawImage.open(f, false, true)) {
            assertTrue(img.directIo());
            assertEquals(expected, img.physicalBlockSize());
            assertEquals(MIB, img.capacityBytes());
            assertTrue(img.toString().startsWith("raw+direct:"), img.toString());
        }
        assertEquals(fds, FileDescriptor.openCount(), "both descriptors are closed with the image");
        try (RawImage img = RawImage.open(f, false)) {
            assertFalse(img.directIo());
            assertEquals(512, img.physicalBlockSize());
        }
    }

    @Test
    void alignedAndUnalignedReadsAndWritesMatchAModel() throws Exception {
        int size = 4 * MIB;
        byte[] model = random(size, 1);
        Path f = image("rw.raw", model);
        Random r = new Random(2);
        try (DiskImage img = DiskImages.open(f, ImageFormat.RAW, false, false, true)) {
            for (int i = 0; i < 400; i++) {
                // mostly whole sectors as virtio-blk sends them, some 4 KiB-aligned, some at any byte
                int unit = switch (r.nextInt(4)) { case 0 -> 1; case 1 -> 4096; default -> 512; };
                int len = unit * (1 + r.nextInt(Math.max(1, 65536 / unit)));
                long off = (long) unit * r.nextInt((size - len) / unit + 1);
                if (r.nextBoolean()) {
                    byte[] d = random(len, i);
                    ByteBuffer src = switch (r.nextInt(3)) {
                        case 0 -> ByteBuffer.wrap(d);
                        case 1 -> ByteBuffer.allocateDirect(len).put(d).flip();
                        default -> ByteBuffer.wrap(d).asReadOnlyBuffer();
                    };
                    assertEquals(len, img.write(off, src));
                    assertFalse(src.hasRemaining());
                    System.arraycopy(d, 0, model, (int) off, len);
                } else {
                    ByteBuffer dst = r.nextBoolean() ? ByteBuffer.allocate(len) : ByteBuffer.allocateDirect(len);
                    assertEquals(len, img.read(off, dst));
                    byte[] got = new byte[len];
                    dst.flip().get(got);
                    assertArrayEquals(Arrays.copyOfRange(model, (int) off, (int) off + len), got, "read " + off + "+" + len);
                }
            }
            img.flush(SyncMode.FULL);
            DiskImagesTest.assertSameBytes(model, DiskImagesTest.readAll(img));
        }
        DiskImagesTest.assertSameBytes(model, Files.readAllBytes(f));
    }

    @Test
    void largeRequestsCrossBounceChunks() throws Exception {
        int size = 8 * MIB;
        byte[] model = random(size, 3);
        Path f = image("big.raw", model);
        try (DiskImage img = DiskImages.open(f, ImageFormat.RAW, false, false, true)) {
            // unaligned head and tail, three and a bit bounce buffers
            write(img, 512, random(3 * DirectFile.BOUNCE_BYTES + 1536, 4), model);
            // aligned, exactly two bounce buffers
            write(img, 5 * MIB, random(2 * DirectFile.BOUNCE_BYTES, 5), model);
            assertArrayEquals(Arrays.copyOfRange(model, 100, 100 + 7 * MIB), read(img, 100, 7 * MIB));
        }
        DiskImagesTest.assertSameBytes(model, Files.readAllBytes(f));
    }

    @Test
    void readModifyWriteKeepsNeighbouringBytes() throws Exception {
        byte[] model = random(MIB, 6);
        Path f = image("rmw.raw", model);
        try (DiskImage img = DiskImages.open(f, ImageFormat.RAW, false, false, true)) {
            write(img, 4096 + 512, random(512, 7), model);     // one sector inside a block
            write(img, 8192 - 512, random(1024, 8), model);    // two sectors across a block boundary
            write(img, 20_000, new byte[] {42}, model);       // one byte
            write(img, 4096 * 10 - 1, random(4096 + 2, 9), model); // a whole block and one byte either side
        }
        byte[] file = Files.readAllBytes(f);
        DiskImagesTest.assertSameBytes(model, file);
        assertEquals(42, file[20_000]);
    }

    @Test
    void scatterAndGatherSplitAnywhere() throws Exception {
        byte[] model = random(MIB, 10);
        Path f = image("sg.raw", model);
        byte[] d = random(4608, 11);
        try (DiskImage img = DiskImages.open(f, ImageFormat.RAW, false, false, true)) {
            // segments that are not sector-sized, one empty, one direct: one 4608-byte request at 4096
            ByteBuffer[] srcs = {ByteBuffer.wrap(d, 0, 100).slice(), ByteBuffer.wrap(d, 100, 412).slice(), ByteBuffer.allocate(0),
                    ByteBuffer.allocateDirect(3584).put(d, 512, 3584).flip(), ByteBuffer.wrap(d, 4096, 512).slice()};
            assertEquals(4608, img.write(4096, srcs));
            assertTrue(Arrays.stream(srcs).noneMatch(ByteBuffer::hasRemaining), "every source consumed");
            System.arraycopy(d, 0, model, 4096, d.length);
            ByteBuffer[] dsts = {ByteBuffer.allocate(7), ByteBuffer.allocateDirect(4000), ByteBuffer.allocate(601)};
            assertEquals(4608, img.read(4096, dsts));
            byte[] got = new byte[4608];
            ByteBuffer g = ByteBuffer.wrap(got);
            for (ByteBuffer b : dsts) {
                assertFalse(b.hasRemaining());
                g.put(b.flip());
            }
            assertArrayEquals(d, got);
        }
        DiskImagesTest.assertSameBytes(model, Files.readAllBytes(f));
    }

    @Test
    void aTailShorterThanABlockGoesThroughThePageCache() throws Exception {
        // three sectors and 100 bytes past the last whole block: O_DIRECT cannot address them
        int size = MIB + 3 * 512 + 100;
        byte[] model = random(size, 12);
        Path f = image("tail.raw", model);
        try (DiskImage img = DiskImages.open(f, ImageFormat.RAW, false, false, true)) {
            assertEquals(size, img.capacityBytes());
            write(img, MIB - 512, random(2048, 13), model);      // across the boundary
            write(img, size - 10, random(10, 14), model);         // the last bytes
            assertArrayEquals(Arrays.copyOfRange(model, MIB - 4096, size), read(img, MIB - 4096, size - (MIB - 4096)));
            img.writeZeroes(MIB - 1024, 2048);
            Arrays.fill(model, MIB - 1024, MIB + 1024, (byte) 0);
            assertThrows(DiskImageException.class, () -> img.write(size - 10, ByteBuffer.allocate(11)));
        }
        assertEquals(size, Files.size(f), "the image keeps its size");
        DiskImagesTest.assertSameBytes(model, Files.readAllBytes(f));
    }

    @Test
    void readsPastTheEndOfAShrunkFileAreZeros() throws Exception {
        byte[] data = random(MIB, 15);
        Path f = image("shrink.raw", data);
        try (DiskImage img = DiskImages.open(f, ImageFormat.RAW, true, false, true)) {
            try (FileChannel other = FileChannel.open(f, StandardOpenOption.WRITE)) {
                other.truncate(512 * 1024 + 512); // behind the image's back: its capacity stays 1 MiB
            }
            byte[] expected = new byte[8192];
            System.arraycopy(data, 512 * 1024, expected, 0, 512);
            assertArrayEquals(expected, read(img, 512 * 1024, 8192), "a partial block, then zeros");
            assertArrayEquals(new byte[4096], read(img, 768 * 1024, 4096));
            assertArrayEquals(Arrays.copyOfRange(data, 4096, 8192), read(img, 4096, 4096), "still readable before EOF");
        }
    }

    @Test
    void readOnlyDirectImage() throws Exception {
        byte[] data = random(MIB, 16);
        Path f = image("ro.raw", data);
        try (RawImage img = RawImage.open(f, true, true)) {
            assertTrue(img.readOnly() && img.directIo());
            DiskImagesTest.assertSameBytes(data, DiskImagesTest.readAll(img));
            assertArrayEquals(Arrays.copyOfRange(data, 1000, 3000), read(img, 1000, 2000));
            DiskImageException e = assertThrows(DiskImageException.class, () -> img.write(0, ByteBuffer.allocate(512)));
            assertTrue(e.getMessage().contains("read-only"), e.getMessage());
            assertThrows(DiskImageException.class, () -> img.write(0, new ByteBuffer[] {ByteBuffer.allocate(512)}));
            assertThrows(DiskImageException.class, () -> img.writeZeroes(0, 512));
            assertThrows(DiskImageException.class, () -> img.discard(0, 512));
            img.flush(SyncMode.FULL);
        }
        assertArrayEquals(data, Files.readAllBytes(f));
    }

    @Test
    void aFileSystemWithoutODirectIsRefusedAtOpen() throws Exception {
        Path shmImage = null;
        if (DirectIoDirs.shm().isPresent()) {
            shmImage = Files.createTempFile(DirectIoDirs.shm().get(), "jkrun-direct-", ".raw");
            Files.write(shmImage, new byte[65536]);
        }
        try {
            Path f = DirectIoDirs.refusingFile(shmImage == null ? Path.of("/nonexistent") : shmImage);
            int fds = FileDescriptor.openCount();
            for (boolean ro : new boolean[] {true, f.equals(shmImage)}) {
                DirectIoUnsupportedException e = assertThrows(DirectIoUnsupportedException.class,
                        () -> DiskImages.open(f, ImageFormat.RAW, ro, false, true));
                assertTrue(e.getMessage().startsWith(f + ": "), "names the file: " + e.getMessage());
                assertTrue(e.getMessage().contains("direct I/O is not supported by the file system"), e.getMessage());
            }
            assertEquals(fds, FileDescriptor.openCount(), "nothing left open");
            // the same file opens through the page cache
            DiskImages.open(f, ImageFormat.RAW, true, false, false).close();
        } finally {
            if (shmImage != null) {
                Files.deleteIfExists(shmImage);
            }
        }
    }

    @Test
    void directIoIsForRawImagesOnly() throws Exception {
        Path f = image("q.qcow2", new byte[4096]);
        for (ImageFormat format : new ImageFormat[] {ImageFormat.QCOW2, ImageFormat.VMDK}) {
            DiskImageException e = assertThrows(DiskImageException.class, () -> DiskImages.open(f, format, false, false, true));
            assertTrue(e.getMessage().contains("raw images only"), e.getMessage());
        }
    }

    // ---- WRITE_ZEROES ------------------------------------------------------------------------------------------

    /** Zeroes four ranges (aligned, sector-granular, byte-granular, the last sector) and checks the whole file. */
    private static void zeroRanges(RawImage img, byte[] model, Path f) throws IOException {
        long[][] ranges = {{64 * 1024, 128 * 1024}, {4096 + 512, 3 * 512}, {300_001, 7_777}, {model.length - 512, 512}};
        for (long[] r : ranges) {
            img.writeZeroes(r[0], r[1]);
            Arrays.fill(model, (int) r[0], (int) (r[0] + r[1]), (byte) 0);
        }
        img.writeZeroes(100, 0);
        assertThrows(DiskImageException.class, () -> img.writeZeroes(model.length - 512, 1024));
        img.flush(SyncMode.FULL);
        DiskImagesTest.assertSameBytes(model, DiskImagesTest.readAll(img));
        assertEquals(model.length, Files.size(f), "the file keeps its length");
        DiskImagesTest.assertSameBytes(model, Files.readAllBytes(f));
    }

    private static boolean zeroRangeWorks(Path dir) throws IOException {
        Path probe = Files.write(dir.resolve("zero-range.probe"), new byte[8192]);
        try (FileDescriptor fd = PosixFs.openat(null, PosixFs.bytes(probe.toString()), PosixFs.O_RDWR, 0)) {
            PosixFs.fallocate(fd, RawImage.FALLOC_FL_ZERO_RANGE | RawImage.FALLOC_FL_KEEP_SIZE, 0, 4096);
            return true;
        } catch (NativeCallException e) {
            return false;
        } finally {
            Files.delete(probe);
        }
    }

    @ParameterizedTest(name = "direct I/O {0}")
    @ValueSource(booleans = {false, true})
    void writeZeroesUsesZeroRangeForExactlyTheRange(boolean direct) throws Exception {
        if (!zeroRangeWorks(dir)) {
            Assumptions.abort("no FALLOC_FL_ZERO_RANGE on " + dir + " (the fallback has its own test)");
        }
        byte[] model = random(MIB, 17);
        Path f = image("z.raw", model);
        try (RawImage img = RawImage.open(f, false, direct)) {
            zeroRanges(img, model, f);
            assertFalse(img.zeroRangeUnsupported, "ZERO_RANGE was used, not the fallback");
        }
    }

    @ParameterizedTest(name = "direct I/O {0}")
    @ValueSource(booleans = {false, true})
    void writeZeroesFallsBackToWritingZeros(boolean direct) throws Exception {
        // as after a file system's EOPNOTSUPP: chunks of zeros through write(), more than one of them
        byte[] model = random(4 * MIB, 18);
        Path f = image("zf.raw", model);
        try (RawImage img = RawImage.open(f, false, direct)) {
            img.zeroRangeUnsupported = true;
            img.writeZeroes(512, 2 * MIB + 1024);
            Arrays.fill(model, 512, 512 + 2 * MIB + 1024, (byte) 0);
            zeroRanges(img, model, f);
        }
    }

    @Test
    void writeZeroesOnTmpfsFindsNoZeroRangeAndWritesZeros() throws Exception {
        Path shm = DirectIoDirs.shm().orElse(null);
        Assumptions.assumeTrue(shm != null, "no /dev/shm");
        Assumptions.assumeFalse(zeroRangeWorks(shm), "/dev/shm has FALLOC_FL_ZERO_RANGE here");
        Path f = Files.createTempFile(shm, "jkrun-zero-", ".raw");
        try {
            for (boolean direct : new boolean[] {false, DirectIoDirs.supports(shm)}) {
                byte[] model = random(MIB, 19);
                Files.write(f, model);
                try (RawImage img = RawImage.open(f, false, direct)) {
                    zeroRanges(img, model, f);
                    assertTrue(img.zeroRangeUnsupported, "EOPNOTSUPP remembered");
                }
            }
        } finally {
            Files.deleteIfExists(f);
        }
    }
}
