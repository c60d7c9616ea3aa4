package dev.jkrun.devices.fs;

/**
 * Who asked: the guest caller's uid, gid and pid from {@code fuse_in_header}, and for a request that creates a node,
 * the one supplementary group the guest kernel passes along (FUSE_CREATE_SUPP_GROUP: the parent directory's group
 * when the caller is a member of it other than through its gid; {@link #NO_GROUP} otherwise).
 */
public record Context(int uid, int gid, int pid, int suppGroup) {
    /** No supplementary group came with the request ((gid_t) -1, which no group can be). */
    public static final int NO_GROUP = -1;
    public static final Context ROOT = new Context(0, 0, 0);

    public Context(int uid, int gid, int pid) { this(uid, gid, pid, NO_GROUP); }

    /** The supplementary groups the request vouches for: none, or the one it carried. */
    public int[] suppGroups() { return suppGroup == NO_GROUP ? new int[0] : new int[] {suppGroup}; }
}
