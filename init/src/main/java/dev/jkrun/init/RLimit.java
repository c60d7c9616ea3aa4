package dev.jkrun.init;

import java.util.Locale;

/**
 * One resource limit for the workload, encoded as {@code NAME=SOFT:HARD}.
 *
 * @param resource the limited resource
 * @param soft the soft limit, or {@link #UNLIMITED}
 * @param hard the hard limit, or {@link #UNLIMITED}
 */
public record RLimit(Resource resource, long soft, long hard) {

    /** RLIM_INFINITY; encoded as {@code unlimited}. */
    public static final long UNLIMITED = -1;

    /** The Linux {@code RLIMIT_*} resources, in kernel order (asm-generic/resource.h). */
    public enum Resource {
        CPU, FSIZE, DATA, STACK, CORE, RSS, NPROC, NOFILE, MEMLOCK, AS, LOCKS, SIGPENDING, MSGQUEUE,
        NICE, RTPRIO, RTTIME;

        /** The kernel's resource number. */
        public int id() {
            return ordinal();
        }

        /** {@code RLIMIT_NOFILE}, {@code NOFILE} (any case) or the kernel number {@code 7}. */
        public static Resource parse(String name) {
            String n = name.toUpperCase(Locale.ROOT);
            if (n.startsWith("RLIMIT_")) {
                n = n.substring("RLIMIT_".length());
            }
            for (Resource r : values()) {
                if (r.name().equals(n)) {
                    return r;
                }
            }
            if (n.matches("[0-9]{1,4}")) {
                int id = Integer.parseInt(n);
                if (id < values().length) {
                    return values()[id];
                }
            }
            throw new InvalidInitConfigException("rlimit", "unknown resource '" + name + "'");
        }
    }

    public RLimit {
        if (resource == null) {
            throw new InvalidInitConfigException("rlimit", "no resource");
        }
        if (soft < UNLIMITED || hard < UNLIMITED) {
            throw new InvalidInitConfigException("rlimit",
                    resource + ": limits must be >= 0 or UNLIMITED, got " + soft + ":" + hard);
        }
        if (hard != UNLIMITED && (soft == UNLIMITED || soft > hard)) {
            throw new InvalidInitConfigException("rlimit", resource + ": soft limit "
                    + text(soft) + " is above the hard limit " + text(hard));
        }
    }

    /** Both limits the same. */
    public static RLimit of(Resource resource, long limit) {
        return new RLimit(resource, limit, limit);
    }

    /**
     * Parses {@code NAME=SOFT:HARD} (or {@code NAME:SOFT:HARD}, as libkrun's KRUN_RLIMITS), where
     * a limit is a decimal number or {@code unlimited}.
     */
    public static RLimit parse(String spec) {
        int sep = indexOfAny(spec, '=', ':');
        int colon = sep < 0 ? -1 : spec.indexOf(':', sep + 1);
        if (sep <= 0 || colon < 0) {
            throw new InvalidInitConfigException("rlimit", "'" + spec + "': expected NAME=SOFT:HARD");
        }
        Resource r = Resource.parse(spec.substring(0, sep));
        return new RLimit(r, limit(spec, spec.substring(sep + 1, colon)), limit(spec, spec.substring(colon + 1)));
    }

    private static long limit(String spec, String s) {
        if (s.equalsIgnoreCase("unlimited")) {
            return UNLIMITED;
        }
        try {
            if (!s.matches("[0-9]+")) {
                throw new NumberFormatException(s);
            }
            return Long.parseLong(s);
        } catch (NumberFormatException e) {
            throw new InvalidInitConfigException("rlimit",
                    "'" + spec + "': a limit must be a decimal number or 'unlimited', got '" + s + "'");
        }
    }

    private static int indexOfAny(String s, char a, char b) {
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) == a || s.charAt(i) == b) {
                return i;
            }
        }
        return -1;
    }

    private static String text(long v) {
        return v == UNLIMITED ? "unlimited" : Long.toString(v);
    }

    /** The config text: {@code NOFILE=1024:4096}. */
    public String encode() {
        return resource.name() + "=" + text(soft) + ":" + text(hard);
    }
}
