package dev.jkrun.libc;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * The process's user and group ids. glibc's setresuid/setresgid/setgroups change every thread of the process (its
 * "setxid" broadcast), the JVM's threads included, which is what dropping a VMM's privileges needs: Linux keeps
 * credentials per thread.
 */
public final class ProcessCredentials {
    private static final Path TASKS = Path.of("/proc/self/task");

    private ProcessCredentials() {}

    /**
     * Switches the process to {@code gid} and then to {@code uid}, in that order because after setuid to a non-root
     * user setgid is refused; either may be absent. Real, effective and saved ids all change (setresuid/setresgid),
     * so none is left to switch back to. Whenever one is given, the supplementary groups become just the target
     * group ({@code gid}, or the current one): root's (group 0, disk, adm...) must not survive a uid switch either.
     * Where the process may not change them (EPERM) that is fine only if it has no other group already. Throws naming
     * the call that failed (EPERM: the process lacks the privilege), and with EPERM when afterwards any thread still
     * has another id, or, for a uid other than 0, any capability (see {@link #leftOver}): the VM must not run with
     * privileges the caller asked to drop.
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
            Native.check("setresgid(" + Integer.toUnsignedString(g) + ")", Native.libc().setresgid(g, g, g));
        }
        if (uid.isPresent()) {
            int u = uid.getAsInt();
            Native.check("setresuid(" + Integer.toUnsignedString(u) + ")", Native.libc().setresuid(u, u, u));
        }
        verify(gid, uid);
    }

    /** Checks the switch on this thread (getresuid/getresgid) and on every thread's /proc status. */
    private static void verify(OptionalInt gid, OptionalInt uid) {
        String what = "switching to" + (gid.isPresent() ? " gid " + Integer.toUnsignedString(gid.getAsInt()) : "")
                + (uid.isPresent() ? " uid " + Integer.toUnsignedString(uid.getAsInt()) : "");
        int[] r = new int[1], e = new int[1], s = new int[1];
        if (uid.isPresent()) {
            sameIds(what, "getresuid", Native.libc().getresuid(r, e, s), uid.getAsInt(), r, e, s);
        }
        if (gid.isPresent()) {
            sameIds(what, "getresgid", Native.libc().getresgid(r, e, s), gid.getAsInt(), r, e, s);
        }
        try (DirectoryStream<Path> tasks = Files.newDirectoryStream(TASKS)) {
            for (Path task : tasks) {
                String status;
                try {
                    status = Files.readString(task.resolve("status"));
                } catch (NoSuchFileException ended) {
                    continue;
                }
                Optional<String> left = leftOver(status, gid, uid);
                if (left.isPresent()) {
                    throw new NativeCallException(what + " (thread " + task.getFileName() + " " + left.get() + ")", Errno.EPERM);
                }
            }
        } catch (IOException ex) {
            throw new NativeCallException(what + " (cannot read " + TASKS + " to check it: " + ex + ")", Errno.EPERM);
        }
    }

    /**
     * What a thread whose /proc/PID/status text is {@code status} holds beyond the switch to {@code gid} and
     * {@code uid} (each absent: not checked), or empty: every field of its Uid and Gid lines (real, effective, saved,
     * file system) must be the target, and for a uid other than 0 its effective, permitted and ambient capability
     * sets (CapEff, CapPrm, CapAmb; CapAmb is missing before Linux 4.3) must be empty.
     */
    static Optional<String> leftOver(String status, OptionalInt gid, OptionalInt uid) {
        if (uid.isPresent()) {
            Optional<String> ids = otherIds(status, "Uid", uid.getAsInt());
            if (ids.isPresent()) {
                return ids;
            }
            if (uid.getAsInt() != 0) {
                for (String set : new String[] {"CapEff", "CapPrm", "CapAmb"}) {
                    Optional<String> caps = field(status, set);
                    if (caps.isEmpty() && !set.equals("CapAmb")) {
                        return Optional.of("has no " + set + " line");
                    }
                    if (caps.isPresent() && !caps.get().matches("0+")) {
                        return Optional.of("keeps capabilities " + set + " " + caps.get());
                    }
                }
            }
        }
        return gid.isPresent() ? otherIds(status, "Gid", gid.getAsInt()) : Optional.empty();
    }

    private static Optional<String> otherIds(String status, String line, int want) {
        Optional<String> ids = field(status, line);
        if (ids.isEmpty()) {
            return Optional.of("has no " + line + " line");
        }
        String[] each = ids.get().split("\\s+");
        String target = Integer.toUnsignedString(want);
        return each.length == 4 && Arrays.stream(each).allMatch(target::equals) ? Optional.empty()
                : Optional.of("has " + line + " " + String.join(" ", each));
    }

    /** The value of the {@code name:} line of a /proc status text, trimmed. */
    private static Optional<String> field(String status, String name) {
        for (String l : status.split("\n")) {
            if (l.startsWith(name + ":")) {
                return Optional.of(l.substring(name.length() + 1).strip());
            }
        }
        return Optional.empty();
    }

    /** Throws unless {@code call} (returning {@code rc}) said real, effective and saved ids are all {@code want}. */
    private static void sameIds(String what, String call, int rc, int want, int[] real, int[] effective, int[] saved) {
        Native.check(call, rc);
        if (real[0] != want || effective[0] != want || saved[0] != want) {
            throw new NativeCallException(what + " (" + call + " says " + Integer.toUnsignedString(real[0]) + " "
                    + Integer.toUnsignedString(effective[0]) + " " + Integer.toUnsignedString(saved[0]) + ")", Errno.EPERM);
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
