package dev.jkrun.loader;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.airlift.compress.zstd.ZstdOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CompressedKernelTest {
    @TempDir
    Path dir;

    static byte[] gzip(byte[] b) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (OutputStream z = new GZIPOutputStream(out)) {
            z.write(b);
        }
        return out.toByteArray();
    }

    static byte[] bzip2(byte[] b) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (OutputStream z = new org.apache.commons.compress.compressors.bzip2.BZip2CompressorOutputStream(out)) {
            z.write(b);
        }
        return out.toByteArray();
    }

    static byte[] pack(KernelFormat f, byte[] b) throws IOException {
        return switch (f) {
            case IMAGE_GZ -> gzip(b);
            case IMAGE_BZ2 -> bzip2(b);
            default -> zstd(b);
        };
    }

    static byte[] zstd(byte[] b) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (OutputStream z = new ZstdOutputStream(out)) {
            z.write(b);
        }
        return out.toByteArray();
    }

    static byte[] elf() {
        return new ElfBuilder().segment(0x1000000, 0x1000000, "kernel bytes".getBytes(), 0x2000).entry(0x1000000).build();
    }

    static byte[] concat(byte[] a, byte[] b) {
        byte[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    @Test
    void gzipZstdAndBzip2KernelsAreElfInside() throws Exception {
        for (KernelFormat f : new KernelFormat[] {KernelFormat.IMAGE_GZ, KernelFormat.IMAGE_ZSTD, KernelFormat.IMAGE_BZ2}) {
            byte[] packed = pack(f, elf());
            Path p = Files.write(dir.resolve("vmlinux." + f), packed);
            ElfKernel k = assertInstanceOf(ElfKernel.class, Kernels.open(p, f, 1 << 20));
            assertEquals(0x1000000, k.entry());
            assertArrayEquals(elf(), CompressedKernel.decompress(p, f, 1 << 20));
        }
    }

    @Test
    void theStreamStartsAtTheFirstMagicAsInLibkrun() throws Exception {
        // e.g. a PE/EFI stub or a header before the payload
        byte[] prefixed = concat("some header bytes".getBytes(), gzip(elf()));
        assertArrayEquals(elf(), CompressedKernel.decompress(Path.of("k"), prefixed, KernelFormat.IMAGE_GZ, 1 << 20));
        byte[] zprefixed = concat(new byte[100], zstd(elf()));
        assertArrayEquals(elf(), CompressedKernel.decompress(Path.of("k"), zprefixed, KernelFormat.IMAGE_ZSTD, 1 << 20));
        // "BZh" alone (or with a digit but no block magic after it) is not where the stream starts
        byte[] bprefixed = concat("BZh BZh9 BZh1AY".getBytes(), bzip2(elf()));
        assertArrayEquals(elf(), CompressedKernel.decompress(Path.of("k"), bprefixed, KernelFormat.IMAGE_BZ2, 1 << 20));
        // one stream: bytes after it (padding, a trailer) are ignored, as libkrun's decoder does
        byte[] trailed = concat(bzip2(elf()), "trailer bytes".getBytes());
        assertArrayEquals(elf(), CompressedKernel.decompress(Path.of("k"), trailed, KernelFormat.IMAGE_BZ2, 1 << 20));
    }

    @Test
    void noMagicIsUnknownFormat() {
        KernelFormatException e = assertThrows(KernelFormatException.class,
                () -> CompressedKernel.decompress(Path.of("k"), elf(), KernelFormat.IMAGE_ZSTD, 1 << 20));
        assertEquals(KernelFormatException.Reason.UNKNOWN_FORMAT, e.reason());
        assertTrue(e.getMessage().contains("no zstd stream"), e.getMessage());
        KernelFormatException b = assertThrows(KernelFormatException.class,
                () -> CompressedKernel.decompress(Path.of("k"), "BZh9".getBytes(), KernelFormat.IMAGE_BZ2, 1 << 20));
        assertTrue(b.getMessage().contains("no bzip2 stream"), b.getMessage());
    }

    @Test
    void aBombIsRefusedAtTheCap() throws Exception {
        byte[] zeros = new byte[8 << 20];
        for (KernelFormat f : new KernelFormat[] {KernelFormat.IMAGE_GZ, KernelFormat.IMAGE_ZSTD, KernelFormat.IMAGE_BZ2}) {
            byte[] packed = pack(f, zeros);
            assertTrue(packed.length < 64 << 10, "a bomb: " + packed.length);
            KernelFormatException e = assertThrows(KernelFormatException.class,
                    () -> CompressedKernel.decompress(Path.of("k"), packed, f, 1 << 20));
            assertEquals(KernelFormatException.Reason.OVERFLOW, e.reason(), e.getMessage());
            // exactly at the cap is fine
            assertEquals(8 << 20, CompressedKernel.decompress(Path.of("k"), packed, f, 8 << 20).length);
        }
    }

    /**
     * A zstd frame (RFC 8878) that declares a window of {@code 2^windowLog} bytes and no content size, then
     * {@code blocks} RLE blocks of 128 KiB of zeros: 6 + 4 * blocks bytes.
     */
    static byte[] zstdRleFrame(int windowLog, int blocks) {
        byte[] f = new byte[6 + 4 * blocks];
        System.arraycopy(CompressedKernel.ZSTD_MAGIC, 0, f, 0, 4);
        f[5] = (byte) ((windowLog - 10) << 3);
        for (int i = 0; i < blocks; i++) {
            int header = (128 << 10) << 3 | 1 << 1 | (i == blocks - 1 ? 1 : 0);
            f[6 + 4 * i] = (byte) header;
            f[7 + 4 * i] = (byte) (header >>> 8);
            f[8 + 4 * i] = (byte) (header >>> 16);
        }
        return f;
    }

    /** Heap bytes this thread allocates while {@code r} runs (HotSpot's count; no timing). */
    private static long allocatedBy(Runnable r) {
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long before = mx.getCurrentThreadAllocatedBytes();
        r.run();
        return mx.getCurrentThreadAllocatedBytes() - before;
    }

    /**
     * 100 MiB of zeros in ~100 KiB of gzip, or in 3 KiB of zstd whose header declares a 128 MiB window (aircompressor
     * buffers a whole window before it hands out a byte), also behind a harmless first frame: with a 1 MiB cap each
     * is refused without the decoders allocating much more than the cap, rather than 100 MiB (or, for the window,
     * tens of GiB of copies and an OutOfMemoryError).
     */
    @Test
    void aHundredMiBBombIsRefusedWithoutAllocatingIt() throws Exception {
        assumeTrue(((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).isThreadAllocatedMemoryEnabled());
        byte[] gz;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (OutputStream z = new GZIPOutputStream(out)) {
            byte[] mib = new byte[1 << 20];
            for (int i = 0; i < 100; i++) {
                z.write(mib);
            }
        }
        gz = out.toByteArray();
        byte[] window = zstdRleFrame(27, 800);
        byte[] behind = concat(zstd(elf()), window);
        out.reset();
        try (OutputStream z = new org.apache.commons.compress.compressors.bzip2.BZip2CompressorOutputStream(out)) {
            byte[] mib = new byte[1 << 20];
            for (int i = 0; i < 100; i++) {
                z.write(mib);
            }
        }
        byte[] bz = out.toByteArray();
        for (Object[] bomb : new Object[][] {{KernelFormat.IMAGE_GZ, gz}, {KernelFormat.IMAGE_ZSTD, window},
                {KernelFormat.IMAGE_ZSTD, behind}, {KernelFormat.IMAGE_BZ2, bz}}) {
            KernelFormat f = (KernelFormat) bomb[0];
            byte[] packed = (byte[]) bomb[1];
            assertTrue(packed.length < 200 << 10, "a bomb: " + packed.length);
            KernelFormatException[] e = new KernelFormatException[1];
            long allocated = allocatedBy(() -> e[0] = assertThrows(KernelFormatException.class,
                    () -> CompressedKernel.decompress(Path.of("k"), packed, f, 1 << 20)));
            assertEquals(KernelFormatException.Reason.OVERFLOW, e[0].reason(), e[0].getMessage());
            assertTrue(allocated < 16 << 20, f + ": allocated " + allocated + " bytes for a 1 MiB cap");
        }
    }

    /**
     * A large window is refused only when the frame can fill it past the cap: Linux's own zstd payloads declare
     * 128 MiB (zstd -22 from a pipe) around a kernel of a few MiB, and a small guest must still boot them.
     */
    @Test
    void aLargeWindowAroundLittleContentDecompresses() {
        assertEquals(3 << 17, CompressedKernel.decompress(Path.of("k"), zstdRleFrame(27, 3), KernelFormat.IMAGE_ZSTD, 1 << 20).length);
        KernelFormatException e = assertThrows(KernelFormatException.class,
                () -> CompressedKernel.decompress(Path.of("k"), zstdRleFrame(27, 9), KernelFormat.IMAGE_ZSTD, 1 << 20));
        assertEquals(KernelFormatException.Reason.OVERFLOW, e.reason(), e.getMessage());
        assertTrue(e.getMessage().contains("window of 134217728 bytes"), e.getMessage());
        // a window within the cap leaves the refusal to the cap on what comes out
        KernelFormatException small = assertThrows(KernelFormatException.class,
                () -> CompressedKernel.decompress(Path.of("k"), zstdRleFrame(18, 9), KernelFormat.IMAGE_ZSTD, 1 << 20));
        assertTrue(small.getMessage().contains("decompresses to more than 1048576 bytes"), small.getMessage());
    }

    @Test
    void corruptStreamsAreKernelFormatErrors() throws Exception {
        for (KernelFormat f : new KernelFormat[] {KernelFormat.IMAGE_GZ, KernelFormat.IMAGE_ZSTD, KernelFormat.IMAGE_BZ2}) {
            byte[] packed = pack(f, elf());
            byte[] truncated = Arrays.copyOf(packed, packed.length / 2);
            KernelFormatException e = assertThrows(KernelFormatException.class,
                    () -> CompressedKernel.decompress(Path.of("k"), truncated, f, 1 << 20));
            assertEquals(KernelFormatException.Reason.BAD_COMPRESSION, e.reason(), e.getMessage());
            byte[] flipped = packed.clone();
            for (int i = 12; i < flipped.length - 8; i += 3) {
                flipped[i] ^= 0x5a;
            }
            KernelFormatException g = assertThrows(KernelFormatException.class,
                    () -> CompressedKernel.decompress(Path.of("k"), flipped, f, 1 << 20));
            assertTrue(g.reason() == KernelFormatException.Reason.BAD_COMPRESSION
                    || g.reason() == KernelFormatException.Reason.OVERFLOW, g.getMessage());
        }
    }

    @Test
    void whatDecompressesMustBeAnElfKernel() throws Exception {
        Path p = Files.write(dir.resolve("notelf.gz"), gzip("hello".getBytes()));
        KernelFormatException e = assertThrows(KernelFormatException.class, () -> Kernels.open(p, KernelFormat.IMAGE_GZ, 1 << 20));
        assertEquals(KernelFormatException.Reason.UNKNOWN_FORMAT, e.reason(), e.getMessage());
    }
}
