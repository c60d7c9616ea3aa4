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
     * {@link KrunfwBundle}), "HdrS" at 0x202 a {@link BzImage}; anything else is a
     * {@link KernelFormatException} naming the file.
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
        throw new KernelFormatException(KernelFormatException.Reason.UNKNOWN_FORMAT,
                path + " is not a kernel image (neither ELF nor bzImage)");
    }

    /**
     * Opens a kernel in the given format: {@link KernelFormat#ELF} as {@link #open(Path)}; an IMAGE format is
     * decompressed (to at most {@code maxDecompressed} bytes, the guest's RAM) and must hold an ELF kernel, as in
     * libkrun.
     */
    public static KernelPayload open(Path path, KernelFormat format, long maxDecompressed) {
        if (format == KernelFormat.ELF) {
            return open(path);
        }
        if (format == KernelFormat.RAW) {
            return RawKernel.load(path);
        }
        return ElfKernel.parse(path, CompressedKernel.decompress(path, format, maxDecompressed));
    }

    private static final int HEAD = 0x210;
}
