package dev.jkrun.vmm;

import dev.jkrun.devices.block.ImageFormat;
import dev.jkrun.devices.block.SyncMode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A disk image attached as virtio-blk; the guest sees disks as /dev/vda, /dev/vdb... in order, and {@code id} in
 * /sys/block/vdX/serial. The format is the user's word, never probed (libkrun: probing is a security risk), and
 * files the image names beyond itself are followed only when {@code allowBackingFiles}: a qcow2 backing file, VMDK
 * extents outside the descriptor's directory or through symlinks (otherwise extents must be regular files beside
 * the descriptor, named plainly). {@code directIo} (libkrun's {@code direct_io})
 * bypasses the host page cache with O_DIRECT; jkrun implements it for raw images only, and whether the host file
 * system supports it is found out when the image is opened.
 */
public record DiskConfig(String id, Path path, boolean readOnly, ImageFormat format, SyncMode sync, boolean allowBackingFiles,
                         boolean directIo) implements DeviceConfig {
    public DiskConfig {
        if (id == null || id.isEmpty() || id.getBytes(StandardCharsets.UTF_8).length > 20) {
            throw new ConfigurationException("disk.id", "id must be 1 to 20 bytes, got '" + id + "'");
        }
        if (path == null || !Files.isRegularFile(path)) {
            throw new ConfigurationException("disk.path", "'" + id + "': " + path + " is not a file");
        }
        if (!readOnly && !Files.isWritable(path)) {
            throw new ConfigurationException("disk.read_only", "'" + id + "': " + path + " is not writable (add :ro)");
        }
        if (directIo && format != ImageFormat.RAW) {
            throw new ConfigurationException("disk.direct_io", "'" + id + "': direct I/O is implemented for raw images "
                    + "only, this one is " + format);
        }
    }

    /** Through the host page cache. */
    public DiskConfig(String id, Path path, boolean readOnly, ImageFormat format, SyncMode sync, boolean allowBackingFiles) {
        this(id, path, readOnly, format, sync, allowBackingFiles, false);
    }

    public static DiskConfig of(String id, Path path, boolean readOnly, ImageFormat format) {
        return new DiskConfig(id, path, readOnly, format, SyncMode.FULL, false);
    }
}
