package dev.jkrun.devices.fs;

/** The attributes of an inode as {@code struct fuse_attr} carries them. */
public record Attr(long ino, long size, long blocks, long atime, int atimensec, long mtime, int mtimensec, long ctime,
                   int ctimensec, int mode, int nlink, int uid, int gid, int rdev, int blksize) {}
