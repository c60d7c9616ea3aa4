package dev.jkrun.devices.fs;

/**
 * A SETATTR request ({@code struct fuse_setattr_in}); {@code valid} holds FATTR_* bits saying which fields apply.
 * {@code fh} is meaningful only with {@link #FATTR_FH}.
 */
public record SetAttr(int valid, long fh, long size, long atime, int atimensec, long mtime, int mtimensec, int mode,
                      int uid, int gid) {
    public static final int FATTR_MODE = 1, FATTR_UID = 1 << 1, FATTR_GID = 1 << 2, FATTR_SIZE = 1 << 3,
            FATTR_ATIME = 1 << 4, FATTR_MTIME = 1 << 5, FATTR_FH = 1 << 6, FATTR_ATIME_NOW = 1 << 7,
            FATTR_MTIME_NOW = 1 << 8, FATTR_LOCKOWNER = 1 << 9, FATTR_CTIME = 1 << 10, FATTR_KILL_SUIDGID = 1 << 11;

    public boolean has(int bit) { return (valid & bit) != 0; }
}
