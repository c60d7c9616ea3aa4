package dev.jkrun.loader;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/** Opens a kernel file in whichever format it is. */
public final class Kernels {
    private static final int ET_DYN = 3;

    private Kernels() {}

    /**
     * Sniffs the file: ELF magic means an {@link ElfKernel} (or, for an ELF shared object, a libkrunfw
     * {@link KrunfwBundle}), "HdrS" at 0x202 a {@link BzImage}, "ARM\x64" at 56 an {@link Arm64Image}; anything else
     * is a {@link KernelFormatException} naming the file.
     */
    public static KernelPayload open(Path path) {
        byte[] head = new byte[HEAD];
        int n;
        try (InputStream in = Files.newInputStream(path)) {
            n = in.readNBytes(head, 0, head.length);
        } catch (IOException e) {
            throw new KernelFormatException(KernelFormatException.Reason.IO, path + ": cannot read: " + e, e);
        }
        if (n >= 4 && Arrays.equals(head, 0, 4, ElfKernel.MAGIC, 0, 4)) {
            if (n >= 18 && (head[16] & 0xff) == ET_DYN && head[17] == 0) {
                return KrunfwBundle.load(path);
            }
            return ElfKernel.load(path);
        }
        int m = BzImage.HEADER_MAGIC_OFFSET;
        if (n >= m + 4 && Arrays.equals(head, m, m + 4, BzImage.HEADER_MAGIC, 0, 4)) {
            return BzImage.load(path);
        }
        if (Arm64Image.looksLike(head, n)) {
            return Arm64Image.load(path);
        }
        throw new KernelFormatException(KernelFormatException.Reason.UNKNOWN_FORMAT,
                path + " is not a kernel image (neither ELF, bzImage nor arm64 Image)");
    }

    /**
     * Opens a kernel in the given format: {@link KernelFormat#ELF} as {@link #open(Path)} (a gzip file there is
     * taken as {@link KernelFormat#IMAGE_GZ}: distributions ship arm64 kernels so); an IMAGE format is decompressed
     * (to at most {@code maxDecompressed} bytes, the guest's RAM) and must hold an ELF kernel, as in libkrun, or an
     * arm64 Image.
     */
    public static KernelPayload open(Path path, KernelFormat format, long maxDecompressed) {
        if (format == KernelFormat.ELF && !startsWith(path, CompressedKernel.GZIP_MAGIC)) {
            return open(path);
        }
        if (format == KernelFormat.RAW) {
            return RawKernel.load(path);
        }
        byte[] image = CompressedKernel.decompress(path, format == KernelFormat.ELF ? KernelFormat.IMAGE_GZ : format,
                maxDecompressed);
        if (Arm64Image.looksLike(image, image.length)) {
            return Arm64Image.parse(path.toString(), image);
        }
        return ElfKernel.parse(path, image);
    }

    private static boolean startsWith(Path path, byte[] magic) {
        byte[] head = new byte[magic.length];
        try (InputStream in = Files.newInputStream(path)) {
            return in.readNBytes(head, 0, head.length) == head.length && Arrays.equals(head, magic);
        } catch (IOException e) {
            return false; // open() then says what is wrong with the file
        }
    }

    private static final int HEAD = 0x210;
}
