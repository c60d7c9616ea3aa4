package dev.jkrun.loader;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.airlift.compress.zstd.ZstdOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
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
    void gzipAndZstdKernelsAreElfInside() throws Exception {
        for (KernelFormat f : new KernelFormat[] {KernelFormat.IMAGE_GZ, KernelFormat.IMAGE_ZSTD}) {
            byte[] packed = f == KernelFormat.IMAGE_GZ ? gzip(elf()) : zstd(elf());
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
    }

    @Test
    void noMagicIsUnknownFormat() {
        KernelFormatException e = assertThrows(KernelFormatException.class,
                () -> CompressedKernel.decompress(Path.of("k"), elf(), KernelFormat.IMAGE_ZSTD, 1 << 20));
        assertEquals(KernelFormatException.Reason.UNKNOWN_FORMAT, e.reason());
        assertTrue(e.getMessage().contains("no zstd stream"), e.getMessage());
    }

    @Test
    void aBombIsRefusedAtTheCap() throws Exception {
        byte[] zeros = new byte[8 << 20];
        for (KernelFormat f : new KernelFormat[] {KernelFormat.IMAGE_GZ, KernelFormat.IMAGE_ZSTD}) {
            byte[] packed = f == KernelFormat.IMAGE_GZ ? gzip(zeros) : zstd(zeros);
            assertTrue(packed.length < 64 << 10, "a bomb: " + packed.length);
            KernelFormatException e = assertThrows(KernelFormatException.class,
                    () -> CompressedKernel.decompress(Path.of("k"), packed, f, 1 << 20));
            assertEquals(KernelFormatException.Reason.OVERFLOW, e.reason(), e.getMessage());
            // exactly at the cap is fine
            assertEquals(8 << 20, CompressedKernel.decompress(Path.of("k"), packed, f, 8 << 20).length);
        }
    }

    @Test
    void corruptStreamsAreKernelFormatErrors() throws Exception {
        for (KernelFormat f : new KernelFormat[] {KernelFormat.IMAGE_GZ, KernelFormat.IMAGE_ZSTD}) {
            byte[] packed = f == KernelFormat.IMAGE_GZ ? gzip(elf()) : zstd(elf());
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
