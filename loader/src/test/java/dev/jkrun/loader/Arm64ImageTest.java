package dev.jkrun.loader;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.HeapGuestMemory;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** arm64 Images: the header read as booting.rst says, placed at RAM base + text_offset, refused when it lies. */
class Arm64ImageTest {
    static byte[] image(long textOffset, long imageSize, long flags, int length) {
        byte[] b = new byte[length];
        ByteBuffer h = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        h.putInt(0, 0x1400_0010); // b +0x40
        h.putLong(8, textOffset);
        h.putLong(16, imageSize);
        h.putLong(24, flags);
        h.putInt(56, Arm64Image.MAGIC);
        for (int i = 64; i < length; i++) {
            b[i] = (byte) i;
        }
        return b;
    }

    @Test
    void placedAtTheTextOffsetWithItsWholeFootprint() {
        Arm64Image k = Arm64Image.parse("t", image(0, 0x20_0000, 0xA, 4096));
        assertEquals(0x8000_0000L, k.loadAddress());
        assertEquals(0x8000_0000L, k.entry());
        assertEquals(0x8020_0000L, k.end(), "image_size counts BSS");
        HeapGuestMemory mem = HeapGuestMemory.of(0x8000_0000L, 4 << 20);
        k.writeInto(mem);
        assertArrayEquals(image(0, 0x20_0000, 0xA, 4096), mem.readBytes(GuestAddress.of(0x8000_0000L), 4096));
        assertEquals(0x8008_0000L, Arm64Image.parse("t", image(0x8_0000, 0x10_0000, 0xA, 4096)).loadAddress());
    }

    @Test
    void oldKernelsWithoutImageSizeAreRefused() {
        KernelFormatException e = assertThrows(KernelFormatException.class, () -> Arm64Image.parse("old", image(0x1234, 0, 0, 8192)));
        assertEquals(KernelFormatException.Reason.UNSUPPORTED_IMAGE, e.reason());
        assertEquals(java.util.OptionalInt.of(2047), Arm64Image.parse("t", image(0, 8192, 0, 4096)).commandLineLimit());
    }

    @Test
    void refusesWhatCannotBeRight() {
        assertEquals(KernelFormatException.Reason.TRUNCATED,
                assertThrows(KernelFormatException.class, () -> Arm64Image.parse("t", new byte[63])).reason());
        byte[] noMagic = image(0, 8192, 0, 4096);
        noMagic[56] = 0;
        assertEquals(KernelFormatException.Reason.UNKNOWN_FORMAT,
                assertThrows(KernelFormatException.class, () -> Arm64Image.parse("t", noMagic)).reason());
        assertEquals(KernelFormatException.Reason.UNSUPPORTED_IMAGE,
                assertThrows(KernelFormatException.class, () -> Arm64Image.parse("t", image(0, 8192, 1, 4096))).reason());
        assertEquals(KernelFormatException.Reason.OVERFLOW,
                assertThrows(KernelFormatException.class, () -> Arm64Image.parse("t", image(-1, 8192, 0, 4096))).reason());
        assertEquals(KernelFormatException.Reason.OVERFLOW,
                assertThrows(KernelFormatException.class, () -> Arm64Image.parse("t", image(0, -4096, 0, 4096))).reason());
        assertEquals(KernelFormatException.Reason.BAD_SEGMENT,
                assertThrows(KernelFormatException.class, () -> Arm64Image.parse("t", image(0, 100, 0, 4096))).reason());
        HeapGuestMemory small = HeapGuestMemory.of(0x8000_0000L, 1 << 20);
        assertEquals(KernelFormatException.Reason.DOES_NOT_FIT, assertThrows(KernelFormatException.class,
                () -> Arm64Image.parse("t", image(0, 2 << 20, 0, 4096)).writeInto(small)).reason());
    }

    @Test
    void kernelsSniffsPlainAndGzippedImages(@TempDir Path dir) throws Exception {
        Path plain = dir.resolve("Image");
        Files.write(plain, image(0, 0x10_0000, 0xA, 4096));
        assertInstanceOf(Arm64Image.class, Kernels.open(plain));
        Path gz = dir.resolve("vmlinuz");
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        try (GZIPOutputStream z = new GZIPOutputStream(b)) {
            z.write(image(0, 0x10_0000, 0xA, 4096));
        }
        Files.write(gz, b.toByteArray());
        Arm64Image k = assertInstanceOf(Arm64Image.class, Kernels.open(gz, KernelFormat.ELF, 64 << 20));
        assertEquals(0x8010_0000L, k.end());
        assertInstanceOf(Arm64Image.class, Kernels.open(gz, KernelFormat.IMAGE_GZ, 64 << 20));
    }
}
