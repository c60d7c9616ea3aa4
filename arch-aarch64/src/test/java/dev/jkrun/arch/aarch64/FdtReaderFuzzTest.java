package dev.jkrun.arch.aarch64;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * The device-tree reader on any bytes (a tree read from guest memory is the guest's): it returns a tree or refuses
 * with an IllegalArgumentException that says "device tree:", never another exception, and never runs long. Half the
 * inputs are a valid blob with bytes overwritten, so the fuzzer reaches deep into the structure block. Replayed from
 * the committed inputs by every test run; fuzzed with {@code fuzz/run FdtReaderFuzzTest}.
 */
class FdtReaderFuzzTest {
    private static final byte[] VALID = DeviceTree.build(DeviceTreeTest.machine(2, true));

    @FuzzTest(maxDuration = "1h")
    void anyBytes(FuzzedDataProvider data) {
        byte[] blob;
        if (data.consumeBoolean()) {
            blob = VALID.clone();
            int n = data.consumeInt(0, 16);
            for (int i = 0; i < n; i++) {
                blob[data.consumeInt(0, blob.length - 1)] = data.consumeByte();
            }
            if (data.consumeBoolean()) {
                blob = java.util.Arrays.copyOf(blob, data.consumeInt(0, blob.length));
            }
        } else {
            blob = data.consumeRemainingAsBytes();
        }
        try {
            FdtReader.Node root = FdtReader.read(blob);
            walk(root, 0);
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage().startsWith("device tree: "), e.getMessage());
        }
    }

    private static void walk(FdtReader.Node n, int depth) {
        assertTrue(depth <= FdtReader.MAX_DEPTH);
        for (var c : n.children()) {
            walk(c, depth + 1);
        }
    }
}
