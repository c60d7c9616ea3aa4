package dev.jkrun.devices.block;

import java.io.IOException;
import java.nio.file.Path;

/** An image that cannot be opened or used: wrong format, unsupported feature, corrupt metadata, read-only. */
public class DiskImageException extends IOException {
    public DiskImageException(String message) { super(message); }

    public DiskImageException(String message, Throwable cause) { super(message, cause); }

    /** "{@code file}: {@code format}: {@code problem}" */
    public static DiskImageException of(Path file, ImageFormat format, String problem) {
        return new DiskImageException(file + ": " + format + ": " + problem);
    }
}
