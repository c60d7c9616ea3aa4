package dev.jkrun.devices.fs;

/** Who asked: the guest caller's uid, gid and pid from {@code fuse_in_header}. */
public record Context(int uid, int gid, int pid) {
    public static final Context ROOT = new Context(0, 0, 0);
}
