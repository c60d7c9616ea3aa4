package dev.jkrun.vmm;

import dev.jkrun.devices.block.ImageFormat;
import dev.jkrun.devices.block.SyncMode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A disk image attached as virtio-blk; the guest sees disks as /dev/vda, /dev/vdb... in order, and {@code id} in
 * /sys/block/vdX/serial. The format is the user's word, never probed (libkrun: probing is a security risk), and
 * backing files are followed only when {@code allowBackingFiles}.
 */
public record DiskConfig(String id, Path path, boolean readOnly, ImageFormat format, SyncMode sync, boolean allowBackingFiles) {
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
    }

    public static DiskConfig of(String id, Path path, boolean readOnly, ImageFormat format) {
        return new DiskConfig(id, path, readOnly, format, SyncMode.FULL, false);
    }
}
