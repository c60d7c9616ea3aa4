package dev.jkrun.init;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.List;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * DNS resolvers for the guest's {@code /etc/resolv.conf} under TSI: the records {@code dns-server} (each server),
 * {@code dns-search} and {@code dns-options} (the words joined by single spaces). The init uses them only with
 * {@code tsi_hijack} on the kernel command line and only when the root's resolv.conf is missing, empty or names
 * loopback servers alone.
 *
 * @param servers 1 to {@link #MAX_SERVERS} IPv4 (dotted quad) or IPv6 literals, without a {@code %scope}
 * @param search the search domains, words of printable ASCII (may be empty)
 * @param options resolv.conf options such as {@code ndots:2} or {@code edns0} (may be empty)
 */
public record Resolvers(List<String> servers, List<String> search, List<String> options) {

    /** glibc's and musl's MAXNS: resolvers past the third are ignored by both. */
    public static final int MAX_SERVERS = 3;

    private static final Pattern IPV4 = Pattern.compile("(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
            + "(\\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}");
    private static final Pattern IPV6_CHARS = Pattern.compile("[0-9A-Fa-f:.]+");
    private static final Pattern WORD = Pattern.compile("[\\x21-\\x7e]+");

    public Resolvers {
        servers = List.copyOf(Objects.requireNonNull(servers, "servers"));
        search = List.copyOf(search == null ? List.of() : search);
        options = List.copyOf(options == null ? List.of() : options);
        if (servers.isEmpty() || servers.size() > MAX_SERVERS) {
            throw new InvalidInitConfigException("dns-server", servers.size() + " servers: expected 1 to "
                    + MAX_SERVERS);
        }
        for (String s : servers) {
            if (parseLiteral(s) == null) {
                throw new InvalidInitConfigException("dns-server", "'" + s + "' is not an IPv4 or IPv6 address");
            }
        }
        words("dns-search", search);
        words("dns-options", options);
    }

    private static void words(String field, List<String> words) {
        for (String w : words) {
            if (w == null || !WORD.matcher(w).matches()) {
                throw new InvalidInitConfigException(field, "'" + w + "' is not a word of printable ASCII");
            }
        }
    }

    /**
     * The address of a literal as {@code inet_pton} takes it (a dotted-quad IPv4, or IPv6 without brackets or scope),
     * or null; never a name lookup.
     */
    public static InetAddress parseLiteral(String s) {
        if (s == null) {
            return null;
        }
        try {
            if (IPV4.matcher(s).matches()) {
                return InetAddress.getByName(s);
            }
            if (s.indexOf(':') >= 0 && IPV6_CHARS.matcher(s).matches()) {
                // Bracketed, getByName parses the IPv6 literal or fails; it never resolves a name.
                // (::ffff:a.b.c.d comes back as an Inet4Address.)
                return InetAddress.getByName("[" + s + "]");
            }
        } catch (UnknownHostException e) {
            return null;
        }
        return null;
    }

    String encodedSearch() {
        return String.join(" ", search);
    }

    String encodedOptions() {
        return String.join(" ", options);
    }
}
