package dev.jkrun.devices.fs;

import dev.jkrun.libc.Errno;

/** A file-system operation failed with a Linux errno, which the FUSE server returns to the guest. */
public final class FsException extends Exception {
    private final int errno;

    public FsException(int errno) {
        super(Errno.name(errno), null, false, false);
        this.errno = errno;
    }

    public FsException(int errno, String detail) {
        super(Errno.name(errno) + ": " + detail, null, false, false);
        this.errno = errno;
    }

    public int errno() { return errno; }
}
