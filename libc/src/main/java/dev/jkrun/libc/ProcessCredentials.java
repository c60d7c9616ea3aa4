package dev.jkrun.libc;

import java.util.OptionalInt;

/**
 * The process's user and group ids. glibc's setuid/setgid/setgroups change every thread of the process (its
 * "setxid" broadcast), the JVM's threads included, which is what dropping a VMM's privileges needs: Linux keeps
 * credentials per thread.
 */
public final class ProcessCredentials {
    private ProcessCredentials() {}

    /**
     * Switches the process to {@code gid} and then to {@code uid}, in that order because after setuid to a non-root
     * user setgid is refused; either may be absent. Whenever one is given, the supplementary groups become just the
     * target group ({@code gid}, or the current one): root's (group 0, disk, adm...) must not survive a uid switch
     * either. Where the process may not change them (EPERM) that is fine only if it has no other group already.
     * Throws naming the call that failed (EPERM: the process lacks the privilege).
     */
    public static void switchTo(OptionalInt gid, OptionalInt uid) {
        if (gid.isEmpty() && uid.isEmpty()) {
            return;
        }
        int g = gid.isPresent() ? gid.getAsInt() : Native.libc().getgid();
        if (Native.libc().setgroups(1, new int[] {g}) != 0) {
            int errno = Native.errno();
            if (errno != Errno.EPERM || !onlyGroup(g)) {
                throw new NativeCallException("setgroups(" + Integer.toUnsignedString(g) + ")", errno);
            }
        }
        if (gid.isPresent()) {
            Native.check("setgid(" + Integer.toUnsignedString(g) + ")", Native.libc().setgid(g));
        }
        if (uid.isPresent()) {
            int u = uid.getAsInt();
            Native.check("setuid(" + Integer.toUnsignedString(u) + ")", Native.libc().setuid(u));
        }
    }

    /** Whether the process's supplementary groups are none or just {@code g}. */
    private static boolean onlyGroup(int g) {
        int[] groups = new int[65536];
        int n = Native.libc().getgroups(groups.length, groups);
        if (n < 0) {
            return false;
        }
        for (int i = 0; i < n; i++) {
            if (groups[i] != g) {
                return false;
            }
        }
        return true;
    }
}
