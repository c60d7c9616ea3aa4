package dev.jkrun.devices.fs;

/** {@code struct fuse_kstatfs}. */
public record StatFs(long blocks, long bfree, long bavail, long files, long ffree, int bsize, int namelen, int frsize) {}
