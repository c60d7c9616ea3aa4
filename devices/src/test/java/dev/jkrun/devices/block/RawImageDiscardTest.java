package dev.jkrun.devices.block;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.PosixFs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** DISCARD on a raw image punches a hole: the range reads as zeros and its blocks go back to the file system. */
class RawImageDiscardTest {
    private static final int SIZE = 4 << 20;

    @TempDir
    Path dir;

    /** 512-byte blocks allocated to the file (st_blocks). */
    private static long blocks(Path p) {
        return PosixFs.fstatat(null, PosixFs.bytes(p.toString()), 0).blocks();
    }

    /** Skips when the temporary directory's file system cannot punch holes (then discard is a no-op by design). */
    private void assumePunchHoleSupported() throws IOException {
        Path probe = dir.resolve("probe");
        Files.write(probe, new byte[8192]);
        try (FileDescriptor fd = PosixFs.openat(null, PosixFs.bytes(probe.toString()), PosixFs.O_RDWR, 0)) {
            PosixFs.fallocate(fd, RawImage.FALLOC_FL_PUNCH_HOLE | RawImage.FALLOC_FL_KEEP_SIZE, 0, 4096);
        } catch (NativeCallException e) {
            Assumptions.abort("no hole punching on " + dir + ": " + e.getMessage());
        }
    }

    @Test
    void discardPunchesAHole() throws Exception {
        assumePunchHoleSupported();
        Path f = dir.resolve("disk.raw");
        byte[] expected = new byte[SIZE];
        new Random(5).nextBytes(expected);
        Files.write(f, expected);
        try (FileDescriptor fd = PosixFs.openat(null, PosixFs.bytes(f.toString()), PosixFs.O_RDWR, 0)) {
            PosixFs.fsync(fd); // allocate for real before counting blocks (delayed allocation)
        }
        long before = blocks(f);
        assertTrue(before >= SIZE / 512, "file fully allocated: " + before + " blocks");
        int fds = FileDescriptor.openCount();

        try (DiskImage img = DiskImages.open(f, ImageFormat.RAW, false, false)) {
            // an aligned MiB, and an unaligned range whose partial blocks are zeroed in place
            img.discard(1 << 20, 1 << 20);
            Arrays.fill(expected, 1 << 20, 2 << 20, (byte) 0);
            img.discard((3 << 20) + 100, 5000);
            Arrays.fill(expected, (3 << 20) + 100, (3 << 20) + 5100, (byte) 0);
            img.discard(0, 0);
            img.flush(SyncMode.FULL);
            assertEquals(SIZE, img.capacityBytes());
            DiskImagesTest.assertSameBytes(expected, DiskImagesTest.readAll(img));

            assertThrows(DiskImageException.class, () -> img.discard(SIZE - 512, 1024));
            assertThrows(DiskImageException.class, () -> img.discard(-512, 512));
            // the image keeps working as before around the hole
            byte[] d = new byte[4096];
            Arrays.fill(d, (byte) 0x77);
            assertEquals(4096, img.write((1 << 20) + 8192, ByteBuffer.wrap(d)));
            System.arraycopy(d, 0, expected, (1 << 20) + 8192, 4096);
        }
        assertEquals(fds, FileDescriptor.openCount(), "the image's descriptor is closed with it");
        assertEquals(SIZE, Files.size(f), "KEEP_SIZE: the file keeps its length");
        assertArrayEquals(expected, Files.readAllBytes(f));
        long after = blocks(f);
        // 1 MiB hole (2048 blocks), minus the 4 KiB written back into it
        assertTrue(after <= before - 2048 + 8 + 8, "blocks before " + before + ", after " + after);
    }

    @Test
    void readOnlyImageRefusesDiscard() throws Exception {
        Path f = dir.resolve("ro.raw");
        byte[] data = new byte[1 << 20];
        new Random(6).nextBytes(data);
        Files.write(f, data);
        try (DiskImage img = DiskImages.open(f, ImageFormat.RAW, true, false)) {
            DiskImageException e = assertThrows(DiskImageException.class, () -> img.discard(0, 4096));
            assertTrue(e.getMessage().contains("read-only"), e.getMessage());
        }
        assertArrayEquals(data, Files.readAllBytes(f));
    }
}
