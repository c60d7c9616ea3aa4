package dev.jkrun.loader;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jkrun.memory.HeapGuestMemory;

/**
 * arm64 Image headers from fuzzed values: parsing returns an image whose footprint starts at the RAM base plus at
 * most 1 GiB and covers the file, or throws {@link KernelFormatException}, nothing else; writing it into a small RAM
 * either fits or throws the same. Replayed from the committed inputs by every test run; fuzzed with
 * {@code fuzz/run Arm64ImageFuzzTest}.
 */
class Arm64ImageFuzzTest {
    @FuzzTest(maxDuration = "1h")
    void headers(FuzzedDataProvider data) {
        byte[] b = Arm64ImageTest.image(data.consumeLong(), data.consumeLong(), data.consumeLong(), data.consumeInt(64, 8192));
        if (data.consumeBoolean()) {
            b = java.util.Arrays.copyOf(b, data.consumeInt(0, b.length));
        }
        Arm64Image k;
        try {
            k = Arm64Image.parse("fuzz", b);
        } catch (KernelFormatException expected) {
            return;
        }
        assertTrue(k.loadAddress() >= Arm64Image.RAM_BASE && k.loadAddress() < Arm64Image.RAM_BASE + Arm64Image.MAX_IMAGE);
        assertTrue(k.end() - k.loadAddress() >= b.length && k.end() > k.loadAddress());
        try {
            k.writeInto(HeapGuestMemory.of(Arm64Image.RAM_BASE, 1 << 20));
        } catch (KernelFormatException expected) {
            // does not fit
        }
    }
}
