package dev.jkrun.loader;

import dev.jkrun.memory.GuestMemory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;

/**
 * An arm64 Linux {@code Image} (Documentation/arch/arm64/booting.rst §4): a 64-byte header, little-endian: code0/1,
 * text_offset at 8, image_size at 16 (the whole footprint, BSS included), flags at 24, the magic "ARM\x64" at 56.
 * It is placed text_offset bytes above a 2 MiB-aligned base in RAM (here {@link #RAM_BASE}, libkrun's) and entered at
 * its first byte with X0 pointing at the device tree. Kernels before 3.17 leave image_size 0, so their footprint
 * (BSS) is unknown and an initramfs placed after them could be zeroed: they are refused. The header's flags must say
 * little-endian; a big-endian kernel is refused. arm64's COMMAND_LINE_SIZE is 2048: at most 2047 bytes are taken.
 */
public final class Arm64Image implements KernelPayload {
    /** Where RAM starts on jkrun's aarch64 machine: the base the text offset is added to. */
    public static final long RAM_BASE = 0x8000_0000L;
    static final int HEADER_SIZE = 64, MAGIC_OFFSET = 56;
    /** "ARM\x64" read little-endian. */
    static final int MAGIC = 0x644D_5241;
    /** The largest image taken: it has to fit in RAM anyway, and a Java array holds it. */
    static final long MAX_IMAGE = 1L << 30;
    private static final long FLAG_BIG_ENDIAN = 1;
    /** arch/arm64/include/uapi/asm/setup.h: COMMAND_LINE_SIZE 2048, the NUL included. */
    static final int COMMAND_LINE_LIMIT = 2047;

    private final String name;
    private final byte[] image;
    private final long load;
    private final long footprint;

    private Arm64Image(String name, byte[] image, long load, long footprint) {
        this.name = name;
        this.image = image;
        this.load = load;
        this.footprint = footprint;
    }

    /** Whether {@code head} (at least 64 bytes of a file) starts like an arm64 Image. */
    public static boolean looksLike(byte[] head, int length) {
        return length >= HEADER_SIZE && ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN).getInt(MAGIC_OFFSET) == MAGIC;
    }

    /** The file at {@code path} as an Image (not compressed: see {@link Kernels#open(Path, KernelFormat, long)}). */
    public static Arm64Image load(Path path) {
        byte[] all;
        try {
            long size = java.nio.file.Files.size(path);
            if (size > MAX_IMAGE) {
                throw new KernelFormatException(KernelFormatException.Reason.OVERFLOW, path + ": " + size
                        + " bytes is too large for a kernel Image");
            }
            all = java.nio.file.Files.readAllBytes(path);
        } catch (java.io.IOException e) {
            throw new KernelFormatException(KernelFormatException.Reason.IO, path + ": cannot read: " + e, e);
        }
        return parse(path.toString(), all);
    }

    /** Parses an Image held in {@code image} ({@code name} for messages). */
    public static Arm64Image parse(String name, byte[] image) {
        if (image.length < HEADER_SIZE) {
            throw new KernelFormatException(KernelFormatException.Reason.TRUNCATED, name + ": " + image.length
                    + " bytes cannot hold an arm64 Image header (" + HEADER_SIZE + ")");
        }
        ByteBuffer h = ByteBuffer.wrap(image).order(ByteOrder.LITTLE_ENDIAN);
        if (h.getInt(MAGIC_OFFSET) != MAGIC) {
            throw new KernelFormatException(KernelFormatException.Reason.UNKNOWN_FORMAT, name
                    + " is not an arm64 Image (no \"ARM\\x64\" at byte 56)");
        }
        long textOffset = h.getLong(8), imageSize = h.getLong(16), flags = h.getLong(24);
        if ((flags & FLAG_BIG_ENDIAN) != 0) {
            throw new KernelFormatException(KernelFormatException.Reason.UNSUPPORTED_IMAGE, name
                    + " is a big-endian arm64 kernel; jkrun runs little-endian guests");
        }
        if (imageSize == 0) {
            throw new KernelFormatException(KernelFormatException.Reason.UNSUPPORTED_IMAGE, name
                    + " has no image_size (a kernel before Linux 3.17): its footprint is unknown");
        }
        // unsigned and exact: the header is the file's, not to be trusted
        if (Long.compareUnsigned(textOffset, MAX_IMAGE) >= 0 || Long.compareUnsigned(imageSize, MAX_IMAGE) > 0) {
            throw new KernelFormatException(KernelFormatException.Reason.OVERFLOW, name + ": text_offset 0x"
                    + Long.toHexString(textOffset) + " or image_size 0x" + Long.toHexString(imageSize) + " out of range");
        }
        if (imageSize < image.length) {
            throw new KernelFormatException(KernelFormatException.Reason.BAD_SEGMENT, name + ": image_size "
                    + imageSize + " is smaller than the file's " + image.length + " bytes");
        }
        return new Arm64Image(name, image, RAM_BASE + textOffset, imageSize);
    }

    @Override
    public long loadAddress() { return load; }

    /** The end of the kernel's whole footprint (image_size: BSS and early page tables included). */
    @Override
    public long end() { return load + footprint; }

    @Override
    public long entry() { return load; }

    @Override
    public void writeInto(GuestMemory mem) {
        GuestWrites.checkFits(mem, load, footprint, () -> "arm64 Image " + name);
        GuestWrites.write(mem, load, image, 0, image.length);
    }

    @Override
    public java.util.OptionalInt commandLineLimit() { return java.util.OptionalInt.of(COMMAND_LINE_LIMIT); }

    @Override
    public String description() {
        return String.format("arm64 Image %s (%d bytes at 0x%x, %d with BSS)", name, image.length, load, footprint);
    }
}
