package dev.jkrun.loader;

import io.airlift.compress.zstd.ZstdInputStream;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.GZIPInputStream;

/**
 * Decompresses a {@link KernelFormat#IMAGE_GZ} or {@link KernelFormat#IMAGE_ZSTD} kernel to the ELF image inside,
 * never to more than a cap the caller sets (the guest's RAM), so a small file that inflates without end is refused
 * instead of filling the heap. Every decoder failure is a {@link KernelFormatException}.
 */
public final class CompressedKernel {
    static final byte[] GZIP_MAGIC = {0x1f, (byte) 0x8b, 0x08};
    static final byte[] ZSTD_MAGIC = {0x28, (byte) 0xb5, 0x2f, (byte) 0xfd};
    /** A Java array's limit: no decompressed kernel may be larger, whatever the RAM. */
    public static final long MAX_IMAGE = Integer.MAX_VALUE - 16;
    private static final int CHUNK = 1 << 16;

    private CompressedKernel() {}

    /** Reads {@code file} and decompresses it (see {@link #decompress(Path, byte[], KernelFormat, long)}). */
    public static byte[] decompress(Path file, KernelFormat format, long maxBytes) {
        byte[] all;
        try {
            long size = Files.size(file);
            if (size > MAX_IMAGE) {
                throw new KernelFormatException(KernelFormatException.Reason.OVERFLOW, file + ": " + size + " bytes is too large for a kernel image");
            }
            all = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new KernelFormatException(KernelFormatException.Reason.IO, file + ": cannot read: " + e, e);
        }
        return decompress(file, all, format, maxBytes);
    }

    /**
     * The decompressed stream that starts at the first magic of {@code format} in {@code data}.
     *
     * @param maxBytes the most bytes it may decompress to (capped again at {@link #MAX_IMAGE})
     */
    public static byte[] decompress(Path name, byte[] data, KernelFormat format, long maxBytes) {
        byte[] magic = switch (format) {
            case IMAGE_GZ -> GZIP_MAGIC;
            case IMAGE_ZSTD -> ZSTD_MAGIC;
            case ELF -> throw new IllegalArgumentException("not a compressed format: " + format);
        };
        int at = indexOf(data, magic);
        if (at < 0) {
            throw new KernelFormatException(KernelFormatException.Reason.UNKNOWN_FORMAT, name + ": no " + label(format)
                    + " stream in the file (magic " + hex(magic) + " not found)");
        }
        long cap = Math.min(Math.max(maxBytes, 0), MAX_IMAGE);
        InputStream raw = new ByteArrayInputStream(data, at, data.length - at);
        byte[] out = new byte[(int) Math.min(cap, Math.max(CHUNK, (long) data.length * 4))];
        int len = 0;
        try (InputStream in = format == KernelFormat.IMAGE_GZ ? new GZIPInputStream(raw, CHUNK) : new ZstdInputStream(raw)) {
            while (true) {
                if (len == out.length) {
                    if (len >= cap) {
                        if (in.read() < 0) {
                            break;
                        }
                        throw new KernelFormatException(KernelFormatException.Reason.OVERFLOW, name + ": the " + label(format)
                                + " stream decompresses to more than " + cap + " bytes (the guest's RAM)");
                    }
                    out = Arrays.copyOf(out, (int) Math.min(cap, (long) out.length * 2));
                }
                int n = in.read(out, len, out.length - len);
                if (n < 0) {
                    break;
                }
                len += n;
            }
        } catch (KernelFormatException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            // the decoders throw unchecked exceptions on corrupt input (aircompressor's MalformedInputException)
            throw new KernelFormatException(KernelFormatException.Reason.BAD_COMPRESSION, name + ": corrupt " + label(format)
                    + " stream at offset " + at + ": " + e.getMessage(), e);
        }
        return len == out.length ? out : Arrays.copyOf(out, len);
    }

    private static String label(KernelFormat f) { return f == KernelFormat.IMAGE_GZ ? "gzip" : "zstd"; }

    static int indexOf(byte[] data, byte[] magic) {
        outer:
        for (int i = 0; i + magic.length <= data.length; i++) {
            for (int j = 0; j < magic.length; j++) {
                if (data[i + j] != magic[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    private static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (byte x : b) {
            sb.append(sb.length() == 0 ? "" : " ").append(String.format("%02x", x & 0xff));
        }
        return sb.toString();
    }
}
