package dev.jkrun.vmm.builder;

import dev.jkrun.devices.block.DiskImages;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.devices.block.ImageFormat;
import dev.jkrun.devices.block.RawImage;
import dev.jkrun.devices.block.SyncMode;
import dev.jkrun.devices.virtio.block.VirtioBlock;
import dev.jkrun.vmm.ConfigurationException;
import dev.jkrun.vmm.DiskConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A DiskConfig becomes an open image behind virtio-blk; direct I/O reaches the image, or fails naming the disk. */
class DisksTest {
    @TempDir
    Path tmp;


    @Test
    void aDirectIoDiskOpensItsImageWithDirectIo() throws Exception {
        Path img = Files.write(tmp.resolve("d.raw"), new byte[1 << 20]);
        Assumptions.assumeTrue(DiskImages.directIoSupported(img), tmp + " has no O_DIRECT");
        VirtioBlock blk = Disks.device(new DiskConfig("d", img, false, ImageFormat.RAW, SyncMode.FULL, false, true));
        try {
            assertTrue(((RawImage) blk.disk()).directIo());
            assertTrue(blk.disk().physicalBlockSize() >= 512);
        } finally {
            blk.close();
        }
        VirtioBlock cached = Disks.device(DiskConfig.of("c", img, false, ImageFormat.RAW));
        try {
            assertEquals(false, ((RawImage) cached.disk()).directIo());
        } finally {
            cached.close();
        }
    }

    @Test
    void aFileSystemWithoutODirectFailsTheDiskNamingIt() {
        // procfs has no direct I/O on any kernel: the same EINVAL a tmpfs before Linux 6.6 or ramfs gives
        Path f = Path.of("/proc/version");
        Assumptions.assumeTrue(Files.isRegularFile(f) && !DiskImages.directIoSupported(f), "no procfs to refuse O_DIRECT");
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> Disks.device(new DiskConfig("nodirect", f, true, ImageFormat.RAW, SyncMode.FULL, false, true)));
        assertEquals("disk.direct_io", e.field());
        assertTrue(e.getMessage().contains("'nodirect'") && e.getMessage().contains(f.toString())
                && e.getMessage().contains("direct I/O is not supported"), e.getMessage());
    }
}
