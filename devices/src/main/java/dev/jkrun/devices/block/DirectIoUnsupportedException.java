package dev.jkrun.devices.block;

import java.nio.file.Path;

/** Direct I/O was asked for, and the file system holding the image refuses O_DIRECT (open(2) gives EINVAL). */
public final class DirectIoUnsupportedException extends DiskImageException {
    public DirectIoUnsupportedException(Path file) {
        super(file + ": " + ImageFormat.RAW + ": direct I/O is not supported by the file system holding this file "
                + "(open with O_DIRECT: EINVAL); turn direct I/O off or keep the image on another file system");
    }
}
