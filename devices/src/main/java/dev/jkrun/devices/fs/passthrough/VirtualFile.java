package dev.jkrun.devices.fs.passthrough;

import java.util.Objects;

/**
 * A read-only file served at the share's root without existing on the host (libkrun's {@code /init.krun}).
 * {@code permissions} are the mode's low 12 bits (e.g. 0755); the type is always a regular file.
 */
public record VirtualFile(byte[] content, int permissions) {
    public VirtualFile {
        Objects.requireNonNull(content, "content");
        if ((permissions & ~07777) != 0) {
            throw new IllegalArgumentException("permissions must be mode bits 07777: " + Integer.toOctalString(permissions));
        }
    }
}
