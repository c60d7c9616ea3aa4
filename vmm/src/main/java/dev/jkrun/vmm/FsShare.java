package dev.jkrun.vmm;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** A host directory served to the guest by virtio-fs under {@code tag}; the root share's tag is {@code /dev/root}. */
public record FsShare(String tag, Path path, boolean readOnly) {
    public static final String ROOT_TAG = "/dev/root";

    public FsShare {
        if (tag == null || tag.isEmpty() || tag.getBytes(StandardCharsets.UTF_8).length > 36) {
            throw new ConfigurationException("fs", "tag must be 1 to 36 bytes, got '" + tag + "'");
        }
        if (path == null || !Files.isDirectory(path)) {
            throw new ConfigurationException("fs", "share '" + tag + "': " + path + " is not a directory");
        }
        path = path.toAbsolutePath().normalize();
    }

    public boolean isRoot() { return tag.equals(ROOT_TAG); }
}
