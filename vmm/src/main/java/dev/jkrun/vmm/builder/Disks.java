package dev.jkrun.vmm.builder;

import dev.jkrun.devices.block.DirectIoUnsupportedException;
import dev.jkrun.devices.block.DiskImage;
import dev.jkrun.devices.block.DiskImages;
import dev.jkrun.devices.virtio.block.VirtioBlock;
import dev.jkrun.vmm.ConfigurationException;
import dev.jkrun.vmm.DiskConfig;
import java.io.IOException;

/** Opens a disk image in the format the user named and puts it behind a virtio-blk device. */
final class Disks {
    private Disks() {}

    static VirtioBlock device(DiskConfig disk) {
        DiskImage image;
        try {
            image = DiskImages.open(disk.path(), disk.format(), disk.readOnly(), disk.allowBackingFiles(), disk.directIo());
        } catch (DirectIoUnsupportedException e) {
            throw new ConfigurationException("disk.direct_io", "'" + disk.id() + "': " + e.getMessage());
        } catch (IOException e) {
            throw new ConfigurationException("disk", "'" + disk.id() + "': " + e.getMessage());
        }
        return new VirtioBlock(image, disk.id(), disk.sync());
    }
}
