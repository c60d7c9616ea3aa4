package dev.jkrun.devices.fs;

/** An open file or directory handle and the FOPEN_* flags for {@code struct fuse_open_out}. */
public record Opened(long fh, int openFlags) {
    public static final int FOPEN_DIRECT_IO = 1, FOPEN_KEEP_CACHE = 1 << 1, FOPEN_NONSEEKABLE = 1 << 2;
}
