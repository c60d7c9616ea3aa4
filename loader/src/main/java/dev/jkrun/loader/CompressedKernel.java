package dev.jkrun.loader;

import io.airlift.compress.zstd.ZstdInputStream;
import org.apache.commons.compress.compressors.bzip2.BZip2CompressorInputStream;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.GZIPInputStream;

/**
 * Decompresses a {@link KernelFormat#IMAGE_GZ}, {@link KernelFormat#IMAGE_ZSTD} or {@link KernelFormat#IMAGE_BZ2}
 * kernel to the ELF image inside,
 * never to more than a cap the caller sets (the guest's RAM), so a small file that inflates without end is refused
 * instead of filling the heap. Every decoder failure is a {@link KernelFormatException}.
 */
public final class CompressedKernel {
    static final byte[] GZIP_MAGIC = {0x1f, (byte) 0x8b, 0x08};
    static final byte[] ZSTD_MAGIC = {0x28, (byte) 0xb5, 0x2f, (byte) 0xfd};
    /** "BZh" + block size '1'..'9' + the block header magic 0x314159265359 ("1AY&SY"); index 3 is the digit. */
    static final byte[] BZIP2_MAGIC = {'B', 'Z', 'h', '?', 0x31, 0x41, 0x59, 0x26, 0x53, 0x59};
    /** A Java array's limit: no decompressed kernel may be larger, whatever the RAM. */
    public static final long MAX_IMAGE = Integer.MAX_VALUE - 16;
    private static final int CHUNK = 1 << 16;
    /** RFC 8878: the frame magic as a little-endian number, and the most a block decompresses to (128 KiB). */
    private static final long ZSTD_FRAME_MAGIC = 0xFD2FB528L, ZSTD_BLOCK_MAX = 128 << 10;

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
            case IMAGE_BZ2 -> BZIP2_MAGIC;
            case ELF, RAW -> throw new IllegalArgumentException("not a compressed format: " + format);
        };
        int at = indexOf(data, magic);
        if (at < 0) {
            throw new KernelFormatException(KernelFormatException.Reason.UNKNOWN_FORMAT, name + ": no " + label(format)
                    + " stream in the file (magic " + (magic == BZIP2_MAGIC ? "\"BZh\" 1-9 31 41 59 26 53 59" : hex(magic)) + " not found)");
        }
        long cap = Math.min(Math.max(maxBytes, 0), MAX_IMAGE);
        if (format == KernelFormat.IMAGE_ZSTD) {
            refuseLargeZstdWindows(name, data, at, cap);
        }
        InputStream raw = new ByteArrayInputStream(data, at, data.length - at);
        byte[] out = new byte[(int) Math.min(cap, Math.max(CHUNK, (long) data.length * 4))];
        int len = 0;
        // bzip2 holds at most one block (900 kB before its run-length stage) at a time, whatever the input claims
        try (InputStream in = switch (format) {
            case IMAGE_GZ -> new GZIPInputStream(raw, CHUNK);
            case IMAGE_BZ2 -> new BZip2CompressorInputStream(raw, false); // one stream; what follows is ignored, as libkrun
            default -> new ZstdInputStream(raw);
        }) {
            while (true) {
                if (len == out.length) {
                    if (len >= cap) {
                        if (in.read() < 0) {
                            break;
                        }
                        throw new KernelFormatException(KernelFormatException.Reason.OVERFLOW, name + ": the " + label(format)
                                + " stream decompresses to more than " + cap + " bytes (the guest's RAM)");
                    }
                    try {
                        out = Arrays.copyOf(out, (int) Math.min(cap, (long) out.length * 2));
                    } catch (OutOfMemoryError e) { // our own growth only: the cap (the guest's RAM) exceeds the heap
                        throw new KernelFormatException(KernelFormatException.Reason.OVERFLOW, name + ": the " + label(format)
                                + " stream decompresses to more than " + len + " bytes, more than this JVM's heap holds");
                    }
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

    /**
     * aircompressor's streaming zstd decoder hands out none of a frame's bytes before it has decoded a whole window
     * of them (the content size when that is smaller), whatever the reader asks for: a few bytes of header that
     * declare a 1 GiB window, followed by blocks of zeros, would make it buffer (and copy, block by block) that
     * much before the cap above is ever looked at. So every frame is walked first (RFC 8878 section 3.1.1) and
     * refused when what the decoder may hold, its window but no more than its blocks can produce, exceeds the cap.
     * Raw and RLE blocks say what they produce; a compressed one makes at most Block_Maximum_Size (the window, at
     * most 128 KiB). The walk ends at the first byte that does not start a frame, or a block it cannot read: there
     * the decoder fails too.
     */
    private static void refuseLargeZstdWindows(Path name, byte[] data, int at, long cap) {
        long p = at;
        while (p + 5 <= data.length && le(data, p, 4) == ZSTD_FRAME_MAGIC) {
            long frame = p;
            int fhd = data[(int) p + 4] & 0xff;
            boolean singleSegment = (fhd & 0x20) != 0;
            int fcsSize = (fhd >>> 6) == 0 ? (singleSegment ? 1 : 0) : 1 << (fhd >>> 6);
            p += 5;
            long window = -1;
            if (!singleSegment) {
                if (p >= data.length) {
                    return;
                }
                int wd = data[(int) p++] & 0xff;
                long base = 1L << (10 + (wd >>> 3));
                window = base + (base >>> 3) * (wd & 7);
            }
            p += new int[] {0, 1, 2, 4}[fhd & 3]; // dictionary id
            if (p + fcsSize > data.length) {
                return;
            }
            long content = fcsSize == 0 ? -1 : le(data, p, fcsSize) + (fcsSize == 2 ? 256 : 0);
            if (fcsSize == 8 && content < 0) {
                content = Long.MAX_VALUE; // beyond 2^63: as good as endless
            }
            p += fcsSize;
            long held = window < 0 ? content : content < 0 ? window : Math.min(window, content);
            long blockMax = Math.min(held, ZSTD_BLOCK_MAX);
            long produced = 0;
            boolean last = false;
            while (!last && p + 3 <= data.length) {
                int header = (int) le(data, p, 3);
                int size = header >>> 3;
                last = (header & 1) != 0;
                p += 3;
                switch ((header >>> 1) & 3) {
                    case 0 -> { produced += size; p += size; }      // raw
                    case 1 -> { produced += size; p += 1; }         // RLE: one byte, size times
                    case 2 -> { produced += blockMax; p += size; }  // compressed
                    default -> { return; }                         // reserved: corrupt
                }
            }
            if (Math.min(held, produced) > cap) {
                throw new KernelFormatException(KernelFormatException.Reason.OVERFLOW, name + ": the zstd frame at offset "
                        + frame + " has a window of " + held + " bytes and blocks for up to " + produced
                        + " bytes: the decoder would buffer more than " + cap + " bytes (the guest's RAM)");
            }
            if (!last) {
                return;
            }
            p += (fhd & 4) != 0 ? 4 : 0; // content checksum
        }
    }

    /** {@code n} (at most 8) little-endian bytes at {@code p}, which the caller checked lie inside {@code data}. */
    private static long le(byte[] data, long p, int n) {
        long v = 0;
        for (int i = n - 1; i >= 0; i--) {
            v = (v << 8) | (data[(int) p + i] & 0xff);
        }
        return v;
    }

    private static String label(KernelFormat f) {
        return switch (f) {
            case IMAGE_GZ -> "gzip";
            case IMAGE_BZ2 -> "bzip2";
            default -> "zstd";
        };
    }

    /** The first offset where {@code magic} occurs; a {@code '?'} of {@link #BZIP2_MAGIC} matches '1'..'9'. */
    static int indexOf(byte[] data, byte[] magic) {
        outer:
        for (int i = 0; i + magic.length <= data.length; i++) {
            for (int j = 0; j < magic.length; j++) {
                boolean digit = magic == BZIP2_MAGIC && j == 3;
                if (digit ? data[i + j] < '1' || data[i + j] > '9' : data[i + j] != magic[j]) {
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
