package dev.jkrun.devices.block;

import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.PosixFs;
import dev.jkrun.libc.Stat;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A VMDK descriptor is image data: its extents may name only regular files in the descriptor's own directory, by
 * plain name and without following symlinks, unless the user allowed the image to name other files; even then
 * FIFOs, devices, directories and files too short for the extent are refused, and nothing blocks.
 */
class VmdkExtentsTest {
    static final int SECTORS = 8;

    @TempDir
    Path tmp;
    /** The descriptor's directory. */
    Path dir;
    /** A file beside {@link #dir}, that no descriptor in it may reach without the opt-in. */
    Path outside;
    byte[] outsideBytes;

    @BeforeEach
    void setUp() throws IOException {
        dir = Files.createDirectory(tmp.resolve("image"));
        outside = tmp.resolve("outside.bin");
        outsideBytes = new byte[SECTORS * 512];
        Arrays.fill(outsideBytes, (byte) 0x0c);
        Files.write(outside, outsideBytes);
    }

    private Path descriptor(String extent) throws IOException {
        Path v = dir.resolve("d.vmdk");
        Files.writeString(v, "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\n\n"
                + "RW " + SECTORS + " FLAT \"" + extent + "\" 0\n");
        return v;
    }

    /** Opening the descriptor fails at open, quickly, with a DiskImageException naming the extent. */
    private void assertRefused(String extent, boolean allowOutside, String why) throws Exception {
        Path v = descriptor(extent);
        for (boolean ro : new boolean[] {false, true}) {
            DiskImage img;
            try {
                img = openWithin(v, ro, allowOutside);
            } catch (DiskImageException e) {
                assertTrue(e.getMessage().contains(extent), e.getMessage());
                assertTrue(e.getMessage().contains(v.toString()), e.getMessage());
                continue;
            }
            // Opened: show what a guest could do with it.
            String wrote = "";
            try (img) {
                if (!ro) {
                    img.write(0, ByteBuffer.wrap(new byte[512]));
                    wrote = ", and a guest write went through";
                }
            } catch (IOException e) {
                wrote = ", a guest write failed: " + e;
            }
            fail(why + ": extent '" + extent + "' opened (read-only " + ro + ")" + wrote + "; outside file "
                    + (Arrays.equals(outsideBytes, Files.readAllBytes(outside)) ? "unchanged" : "CHANGED"));
        }
        assertArrayEquals(outsideBytes, Files.readAllBytes(outside), "the outside file changed");
    }

    /**
     * Opens on another thread and fails the test after 5 s rather than hanging in it (open(2) of a FIFO blocks
     * until a writer comes; the FIFO tests then open it for writing to release the thread).
     */
    private static DiskImage openWithin(Path v, boolean ro, boolean allowOutside) throws Exception {
        ExecutorService ex = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "vmdk-open");
            t.setDaemon(true);
            return t;
        });
        try {
            Future<DiskImage> f = ex.submit(() -> DiskImages.open(v, ImageFormat.VMDK, ro, allowOutside));
            try {
                return f.get(5, TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                throw new AssertionError("opening " + v + " (read-only " + ro + ") still blocked after 5 s");
            } catch (java.util.concurrent.ExecutionException e) {
                if (e.getCause() instanceof Exception x) {
                    throw x;
                }
                throw e;
            }
        } finally {
            ex.shutdownNow();
        }
    }

    @Test
    void plainNameInTheDescriptorsDirectoryOpens() throws Exception {
        Files.write(dir.resolve("f.bin"), new byte[SECTORS * 512]);
        Path v = descriptor("f.bin");
        try (DiskImage img = DiskImages.open(v, ImageFormat.VMDK, false, false)) {
            assertEquals(SECTORS * 512, img.capacityBytes());
            img.write(512, ByteBuffer.wrap(new byte[] {1, 2, 3}));
            ByteBuffer b = ByteBuffer.allocate(3);
            img.read(512, b);
            assertArrayEquals(new byte[] {1, 2, 3}, b.array());
        }
        assertEquals(2, Files.readAllBytes(dir.resolve("f.bin"))[513]);
    }

    /** A read-only disk opens its extents O_RDONLY (as root, file modes would not show it: /proc/self/fdinfo does). */
    @Test
    void readOnlyDiskOpensExtentsReadOnly() throws Exception {
        Path f = dir.resolve("f.bin");
        Files.write(f, new byte[SECTORS * 512]);
        Path v = descriptor("f.bin");
        try (DiskImage img = DiskImages.open(v, ImageFormat.VMDK, true, false)) {
            int seen = 0;
            try (var fds = Files.list(Path.of("/proc/self/fd"))) {
                for (Path fd : (Iterable<Path>) fds::iterator) {
                    Path target;
                    try {
                        target = Files.readSymbolicLink(fd);
                    } catch (IOException gone) {
                        continue;
                    }
                    if (target.equals(f.toRealPath())) {
                        String info = Files.readString(Path.of("/proc/self/fdinfo").resolve(fd.getFileName()));
                        int flags = Integer.parseInt(info.replaceAll("(?s).*flags:\\s*([0-7]+).*", "$1"), 8);
                        assertEquals(PosixFs.O_RDONLY, flags & PosixFs.O_ACCMODE, "extent open for writing: " + info);
                        seen++;
                    }
                }
            }
            assertTrue(seen > 0, "no descriptor of the extent found");
            assertThrows(DiskImageException.class, () -> img.write(0, ByteBuffer.allocate(512)));
        }
    }

    @Test
    void absolutePathRefused() throws Exception {
        assertRefused(outside.toString(), false, "absolute extent path");
    }

    @Test
    void dotDotRefused() throws Exception {
        assertRefused("../outside.bin", false, "extent in the parent directory");
        assertRefused("..", false, "the parent directory itself");
        assertRefused(".", false, "the directory itself");
    }

    @Test
    void subdirectoryPathRefused() throws Exception {
        Files.createDirectory(dir.resolve("sub"));
        Files.write(dir.resolve("sub/x.bin"), new byte[SECTORS * 512]);
        assertRefused("sub/x.bin", false, "a path, not a plain name");
        assertRefused("", false, "an empty name");
    }

    @Test
    void symlinkToOutsideFileRefused() throws Exception {
        Files.createSymbolicLink(dir.resolve("l.bin"), outside);
        assertRefused("l.bin", false, "symlink to a file outside");
        // also a symlink to a file beside it: extents are never followed through links without the opt-in
        Files.write(dir.resolve("real.bin"), new byte[SECTORS * 512]);
        Files.createSymbolicLink(dir.resolve("l2.bin"), dir.resolve("real.bin"));
        assertRefused("l2.bin", false, "symlink to a file inside");
    }

    @Test
    void symlinkToProcSelfMemRefused() throws Exception {
        Files.createSymbolicLink(dir.resolve("mem.bin"), Path.of("/proc/self/mem"));
        assertRefused("mem.bin", false, "symlink to /proc/self/mem");
        // named directly, with the opt-in: a regular file to stat(2), but not one the extent fits in
        assertRefused("/proc/self/mem", true, "/proc/self/mem with the opt-in");
    }

    @Test
    void fifoRefusedWithoutBlocking() throws Exception {
        Path fifo = dir.resolve("p.bin");
        PosixFs.mknodat(null, PosixFs.bytes(fifo.toString()), Stat.S_IFIFO | 0600, 0);
        try {
            assertRefused("p.bin", false, "FIFO");
            assertRefused("p.bin", true, "FIFO with the opt-in");
        } finally {
            release(fifo);
        }
    }

    /** Unblocks a thread stuck in open(2) of {@code fifo} for reading (the pre-fix hang), so the JVM can exit. */
    private static void release(Path fifo) {
        for (int i = 0; i < 4; i++) {
            try (FileDescriptor w = PosixFs.openat(null, PosixFs.bytes(fifo.toString()), PosixFs.O_WRONLY | PosixFs.O_NONBLOCK, 0)) {
                // a reader was waiting: it is released now
            } catch (NativeCallException noReader) {
                return;
            }
        }
    }

    @Test
    void directoryRefused() throws Exception {
        Files.createDirectory(dir.resolve("d.bin"));
        assertRefused("d.bin", false, "directory");
        assertRefused("d.bin", true, "directory with the opt-in");
    }

    @Test
    void deviceNodesRefused() throws Exception {
        Files.createSymbolicLink(dir.resolve("null.bin"), Path.of("/dev/null"));
        assertRefused("null.bin", false, "symlink to /dev/null");
        assertRefused("null.bin", true, "symlink to /dev/null with the opt-in");
        assertRefused("/dev/null", true, "/dev/null with the opt-in");
        assertRefused("/dev/zero", true, "/dev/zero with the opt-in");
        Path node = dir.resolve("c.bin");
        try {
            PosixFs.mknodat(null, PosixFs.bytes(node.toString()), Stat.S_IFCHR | 0600, (1 << 8) | 3); // 1:3 = /dev/null
        } catch (NativeCallException e) {
            Assumptions.abort("cannot create a device node here (" + e.getMessage() + ")");
        }
        assertRefused("c.bin", false, "character device node");
        assertRefused("c.bin", true, "character device node with the opt-in");
    }

    @Test
    void extentLongerThanItsFileRefused() throws Exception {
        Files.write(dir.resolve("short.bin"), new byte[SECTORS * 512 - 1]);
        assertRefused("short.bin", false, "file one byte short of the extent");
        Files.write(dir.resolve("f.bin"), new byte[SECTORS * 512]);
        Path v = dir.resolve("off.vmdk");
        Files.writeString(v, "# Disk DescriptorFile\nRW " + SECTORS + " FLAT \"f.bin\" 1\n");
        DiskImageException e = assertThrows(DiskImageException.class, () -> DiskImages.open(v, ImageFormat.VMDK, true, false));
        assertTrue(e.getMessage().contains("f.bin"), e.getMessage());
        Files.writeString(v, "# Disk DescriptorFile\nRW 1 FLAT \"f.bin\" 36028797018963968\n"); // offset * 512 overflows
        e = assertThrows(DiskImageException.class, () -> DiskImages.open(v, ImageFormat.VMDK, true, false));
        assertTrue(e.getMessage().contains("f.bin"), e.getMessage());
    }

    /** The user's opt-in (the one for qcow2 backing files) lets extents be elsewhere: still regular files only. */
    @Test
    void optInAllowsRegularFilesOutside() throws Exception {
        for (String name : new String[] {"../outside.bin", outside.toString()}) {
            Path v = descriptor(name);
            DiskImageException e = assertThrows(DiskImageException.class, () -> DiskImages.open(v, ImageFormat.VMDK, false, false));
            assertTrue(e.getMessage().contains(name), e.getMessage());
            try (DiskImage img = DiskImages.open(v, ImageFormat.VMDK, true, true)) {
                assertArrayEquals(outsideBytes, DiskImagesTest.readAll(img));
            }
        }
        Files.createSymbolicLink(dir.resolve("l.bin"), outside);
        try (DiskImage img = DiskImages.open(descriptor("l.bin"), ImageFormat.VMDK, false, true)) {
            img.write(0, ByteBuffer.wrap(new byte[] {7}));
        }
        assertEquals(7, Files.readAllBytes(outside)[0]);
    }
}
