package dev.jkrun.loader;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.nio.file.Path;

/**
 * Compressed kernels from fuzzed bytes (one control byte picks gzip, zstd or bzip2 by its value mod 3; the rest is the
 * file). Oracle:
 * decompressing either returns at most the cap or throws a {@link KernelFormatException}, nothing else (no
 * decoder's RuntimeException, no OutOfMemoryError from a bomb); a result then parsed as ELF does the same. Replayed
 * from the committed inputs by every test run; fuzzed with {@code fuzz/run CompressedKernelFuzzTest}.
 */
class CompressedKernelFuzzTest {
    private static final long CAP = 4 << 20;

    @FuzzTest(maxDuration = "1h")
    void decompress(byte[] input) {
        if (input.length < 1) {
            return;
        }
        KernelFormat f = switch ((input[0] & 0xff) % 3) {
            case 0 -> KernelFormat.IMAGE_GZ;
            case 1 -> KernelFormat.IMAGE_ZSTD;
            default -> KernelFormat.IMAGE_BZ2;
        };
        byte[] file = java.util.Arrays.copyOfRange(input, 1, input.length);
        byte[] out;
        try {
            out = CompressedKernel.decompress(Path.of("fuzz"), file, f, CAP);
        } catch (KernelFormatException expected) {
            return;
        }
        assertTrue(out.length <= CAP, "decompressed past the cap: " + out.length);
        try {
            ElfKernel.parse(Path.of("fuzz"), out);
        } catch (KernelFormatException expected) {
            // not an ELF kernel
        }
    }
}
