package dev.jkrun.libc;

import java.util.OptionalInt;

/**
 * The process's user and group ids. glibc's setuid/setgid/setgroups change every thread of the process (its
 * "setxid" broadcast), the JVM's threads included, which is what dropping a VMM's privileges needs: Linux keeps
 * credentials per thread.
 */
public final class ProcessCredentials {
    private ProcessCredentials() {}

    public static int uid() { return Native.libc().getuid(); }

    public static int gid() { return Native.libc().getgid(); }

    /**
     * Switches the process to {@code gid} (its only group: the supplementary groups go too, where the process may
     * change them) and then to {@code uid}, in that order because after setuid to a non-root user setgid is refused.
     * Either may be absent. Throws naming the call that failed (EPERM: the process lacks the privilege).
     */
    public static void switchTo(OptionalInt gid, OptionalInt uid) {
        if (gid.isPresent()) {
            int g = gid.getAsInt();
            // Root keeps its supplementary groups (group 0 among them) across setgid: drop them first. Without
            // CAP_SETGID this fails, and then setgid below can only keep a group the process already has.
            if (Native.libc().setgroups(1, new int[] {g}) != 0 && Native.errno() != Errno.EPERM) {
                throw new NativeCallException("setgroups(" + Integer.toUnsignedString(g) + ")", Native.errno());
            }
            Native.check("setgid(" + Integer.toUnsignedString(g) + ")", Native.libc().setgid(g));
        }
        if (uid.isPresent()) {
            int u = uid.getAsInt();
            Native.check("setuid(" + Integer.toUnsignedString(u) + ")", Native.libc().setuid(u));
        }
    }
}
