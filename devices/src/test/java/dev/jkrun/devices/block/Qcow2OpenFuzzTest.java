package dev.jkrun.devices.block;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * qcow2 images from fuzzed bytes. The input is {@value #CONTROL} control bytes (bit 0 of the first: read-only; bits
 * 1-3: how many operations; bit 4: data in 4 KiB direct buffers; bit 5: requests of up to 1.26 MB, not 63 KB; then
 * two bytes per operation) followed by the image file itself, so a valid image after
 * 16 bytes is a seed. Oracle: opening succeeds or throws an IOException (a DiskImageException for what the image
 * says), allocating no more than the file's size can justify; an opened image serves reads, writes, write-zeroes
 * and discards of any range with data or an IOException, never another exception; a read-only one never changes.
 * Replayed from the committed inputs by every test run; fuzzed with {@code fuzz/run Qcow2OpenFuzzTest}.
 */
class Qcow2OpenFuzzTest {
    static final int CONTROL = 16;
    /**
     * What opening may allocate: the L1 and refcount tables lie in the file (each read once into a buffer and once
     * into a long[]), plus a few cluster-sized buffers (clusters are at most 2 MiB).
     */
    static long allocationBound(long fileSize) { return 4 * fileSize + (8L << 20); }

    private static Path file;

    @FuzzTest(maxDuration = "1h")
    void openAndUse(byte[] input) throws IOException {
        if (file == null) {
            file = FuzzFiles.scratch("qcow2-fuzz").resolve("f.qcow2");
        }
        byte[] ctl = Arrays.copyOf(input, CONTROL);
        byte[] image = input.length > CONTROL ? Arrays.copyOfRange(input, CONTROL, input.length) : new byte[0];
        Files.write(file, image);
        boolean readOnly = (ctl[0] & 1) != 0;
        int ops = (ctl[0] >>> 1) & 7;
        boolean pages = (ctl[0] & 16) != 0; // reads and writes in 4 KiB direct buffers, as virtio-blk passes a guest's
        int unit = (ctl[0] & 32) != 0 ? 20_000 : 1000; // up to 1.26 MB a request: past Qcow2Image.RUN_ALIGN

        DiskImage q = open(readOnly, image.length, true);
        if (q == null) {
            return;
        }
        long crc = readOnly ? FuzzFiles.crc(file) : 0;
        try (q) {
            long cap = q.capacityBytes();
            assertTrue(cap >= 0, "capacity " + cap);
            for (int i = 0; i < ops; i++) {
                int a = ctl[1 + 2 * i] & 0xff, b = ctl[2 + 2 * i] & 0xff;
                int len = 1 + ((a >>> 2) & 63) * unit;
                long pos = cap / 256 * b;
                if (b == 255) {
                    pos = cap - len + 1; // one byte past the end
                }
                try {
                    switch (a & 3) {
                        case 0 -> {
                            if (pages) {
                                q.read(pos, pages(len, (byte) 0));
                            } else {
                                q.read(pos, ByteBuffer.allocate(len));
                            }
                        }
                        case 1 -> {
                            if (pages) {
                                q.write(pos, pages(len, (byte) a));
                            } else {
                                byte[] d = new byte[len];
                                Arrays.fill(d, (byte) a);
                                q.write(pos, ByteBuffer.wrap(d));
                            }
                        }
                        case 2 -> q.writeZeroes(pos, len);
                        default -> q.discard(pos, len);
                    }
                } catch (IOException expected) {
                    // corrupt metadata, out of range or read-only: reported, as it should be
                }
            }
            try {
                q.flush(SyncMode.NONE);
            } catch (IOException expected) {
                // as above
            }
        }
        if (readOnly) {
            assertEquals(crc, FuzzFiles.crc(file), "a read-only image changed");
        }
    }

    /** {@code len} bytes of {@code fill} in 4 KiB direct buffers, the last one shorter. */
    private static ByteBuffer[] pages(int len, byte fill) {
        ByteBuffer[] b = new ByteBuffer[(len + 4095) / 4096];
        for (int i = 0; i < b.length; i++) {
            b[i] = ByteBuffer.allocateDirect(Math.min(4096, len - i * 4096));
            while (b[i].hasRemaining()) {
                b[i].put(fill);
            }
            b[i].clear();
        }
        return b;
    }

    /**
     * Opens {@link #file}, or returns null when it is refused, checking what that allocated. Loading classes on the
     * first calls allocates too: a first excess is measured again before it counts.
     */
    private static DiskImage open(boolean readOnly, long fileSize, boolean firstTry) throws IOException {
        long before = FuzzFiles.allocatedBytes();
        DiskImage q = null;
        try {
            q = Qcow2Image.open(file, readOnly, false);
        } catch (IOException refused) {
            // fine: a DiskImageException for what the image says, or the file's own I/O error
        }
        long used = FuzzFiles.allocatedBytes() - before;
        if (used > allocationBound(fileSize)) {
            if (q != null) {
                q.close();
            }
            assertTrue(firstTry, (q == null ? "refusing" : "opening") + " a " + fileSize + "-byte file allocated "
                    + used + " bytes (bound " + allocationBound(fileSize) + ")");
            return open(readOnly, fileSize, false);
        }
        return q;
    }
}
