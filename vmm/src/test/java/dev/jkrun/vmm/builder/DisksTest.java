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
import dev.jkrun.vmm.VmBuilder;
import dev.jkrun.vmm.VmConfig;
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

    /** A VMDK extent outside the descriptor's directory fails the disk unless the user allowed backing files. */
    @Test
    void aVmdkExtentOutsideItsDirectoryNeedsTheOptIn() throws Exception {
        Path outside = Files.write(tmp.resolve("outside.bin"), new byte[4096]);
        Path vmdk = Files.createDirectory(tmp.resolve("image")).resolve("d.vmdk");
        Files.writeString(vmdk, "# Disk DescriptorFile\nRW 8 FLAT \"../outside.bin\" 0\n");
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> Disks.device(DiskConfig.of("v", vmdk, false, ImageFormat.VMDK)));
        assertEquals("disk", e.field());
        assertTrue(e.getMessage().contains("'v'") && e.getMessage().contains("../outside.bin"), e.getMessage());
        VmConfig c = VmBuilder.create().fs(fs -> fs.root(tmp))
                .disk(d -> d.id("v").path(vmdk).format(ImageFormat.VMDK).allowBackingFiles(true)).build();
        VirtioBlock blk = Disks.device(c.disks().get(0));
        try {
            assertEquals(4096, blk.disk().capacityBytes());
        } finally {
            blk.close();
        }
        assertEquals(4096, Files.size(outside));
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
