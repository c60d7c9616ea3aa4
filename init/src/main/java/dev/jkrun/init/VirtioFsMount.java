package dev.jkrun.init;

import java.nio.charset.StandardCharsets;

/**
 * An extra virtio-fs share that the guest init mounts: {@code mount(tag, path, "virtiofs")}, the
 * directory created if missing. Encoded as {@code TAG:PATH}.
 */
public record VirtioFsMount(String tag, String path) {

    /** The virtio-fs config-space tag field is 36 bytes. */
    public static final int MAX_TAG_BYTES = 36;

    public VirtioFsMount {
        if (tag == null || tag.isEmpty()) {
            throw new InvalidInitConfigException("mount", "empty tag");
        }
        if (tag.indexOf(':') >= 0 || tag.indexOf('\0') >= 0) {
            throw new InvalidInitConfigException("mount", "tag '" + tag + "' holds ':' or NUL");
        }
        if (tag.getBytes(StandardCharsets.UTF_8).length > MAX_TAG_BYTES) {
            throw new InvalidInitConfigException("mount", "tag '" + tag + "' is longer than "
                    + MAX_TAG_BYTES + " bytes");
        }
        if (path == null || !path.startsWith("/") || path.indexOf('\0') >= 0) {
            throw new InvalidInitConfigException("mount", "path '" + path + "' of tag '" + tag
                    + "' is not an absolute path");
        }
    }

    String encode() {
        return tag + ":" + path;
    }
}
