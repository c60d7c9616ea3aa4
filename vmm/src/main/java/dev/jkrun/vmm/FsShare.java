package dev.jkrun.vmm;

import dev.jkrun.devices.fs.FileSystem;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * A filesystem served to the guest by virtio-fs under {@code tag}: a host directory (passthrough), or a custom
 * Java {@link FileSystem} made by {@code backend} once per VM (closed with the VM when it is AutoCloseable). The
 * root share's tag is {@code /dev/root}. {@code shmSizeBytes} is the DAX window libkrun's krun_add_virtiofs2
 * asks for; jkrun has no DAX yet, so it is recorded and the guest does without (it falls back to FUSE reads).
 */
public record FsShare(String tag, Optional<Path> hostPath, Optional<Supplier<? extends FileSystem>> backend,
                      boolean readOnly, long shmSizeBytes) implements DeviceConfig {
    public static final String ROOT_TAG = "/dev/root";
    /** virtio-fs config space holds 36 bytes of tag. */
    public static final int MAX_TAG_BYTES = 36;

    public FsShare {
        if (tag == null || tag.isEmpty() || tag.getBytes(StandardCharsets.UTF_8).length > MAX_TAG_BYTES) {
            throw new ConfigurationException("fs.tag", "must be 1 to " + MAX_TAG_BYTES + " bytes, got '" + tag + "'");
        }
        if (hostPath.isPresent() == backend.isPresent()) {
            throw new ConfigurationException("fs.path", "share '" + tag + "' needs exactly one of a host path or a custom backend");
        }
        if (hostPath.isPresent()) {
            Path p = hostPath.get();
            if (!Files.isDirectory(p)) {
                throw new ConfigurationException("fs.path", "share '" + tag + "': " + p + " is not a directory");
            }
            hostPath = Optional.of(p.toAbsolutePath().normalize());
        }
        if (shmSizeBytes < 0) {
            throw new ConfigurationException("fs.shm_size", "share '" + tag + "': must not be negative, got " + shmSizeBytes);
        }
    }

    /** A host directory shared with passthrough semantics. */
    public FsShare(String tag, Path path, boolean readOnly) {
        this(tag, Optional.ofNullable(path), Optional.empty(), readOnly, 0);
    }

    /** A custom backend; {@code backend} is called once per VM built from this configuration. */
    public static FsShare custom(String tag, Supplier<? extends FileSystem> backend, boolean readOnly) {
        return new FsShare(tag, Optional.empty(), Optional.of(backend), readOnly, 0);
    }

    /** The host directory of a passthrough share. */
    public Path path() {
        return hostPath.orElseThrow(() -> new IllegalStateException("share '" + tag + "' has a custom backend, not a host path"));
    }

    public boolean isRoot() { return tag.equals(ROOT_TAG); }
}
