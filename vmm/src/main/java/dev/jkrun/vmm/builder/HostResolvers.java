package dev.jkrun.vmm.builder;

import dev.jkrun.init.Resolvers;
import java.io.IOException;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The host's DNS resolvers as a TSI guest can use them: the guest's sockets are the host's, except that loopback is
 * the guest's own, so a host that resolves through a local stub (systemd-resolved's 127.0.0.53, dnsmasq's 127.0.0.1)
 * must hand the guest the stub's upstream servers instead.
 *
 * <p>Rules: the usable {@code nameserver}s of {@code /etc/resolv.conf}; when it names none (missing, empty, or only
 * loopback or unspecified servers) and systemd-resolved's {@code /run/systemd/resolve/resolv.conf} (its upstream
 * servers) exists, that file's instead; else none. Usable: an IPv4 or IPv6 literal, not loopback, not unspecified,
 * not an IPv6 link-local or scoped ({@code %eth0}) address (a scope means nothing in the guest); duplicates dropped,
 * at most {@link Resolvers#MAX_SERVERS} in file order. {@code search}/{@code domain} and {@code options} come from the
 * same file as the servers: the last {@code search} or {@code domain} line wins (as glibc), {@code options} lines
 * add up; words that are not a domain name or an option are dropped, as are unknown keywords, comments and
 * malformed lines.
 */
final class HostResolvers {
    static final Path RESOLV_CONF = Path.of("/etc/resolv.conf");
    static final Path SYSTEMD_RESOLV_CONF = Path.of("/run/systemd/resolve/resolv.conf");

    private static final int MAX_FILE_BYTES = 1 << 16;
    private static final Pattern DOMAIN = Pattern.compile("[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*\\.?");
    private static final Pattern OPTION = Pattern.compile("[A-Za-z][A-Za-z0-9_-]*(:[0-9]+)?");

    private HostResolvers() {}

    /** This host's resolvers; empty when none is usable from a guest. */
    static Optional<Resolvers> host() {
        return read(RESOLV_CONF, SYSTEMD_RESOLV_CONF);
    }

    /** The resolvers of {@code resolvConf}, or of {@code systemdResolvConf} when the first names no usable one. */
    static Optional<Resolvers> read(Path resolvConf, Path systemdResolvConf) {
        Optional<Resolvers> r = parse(readText(resolvConf));
        if (r.isEmpty() && Files.isRegularFile(systemdResolvConf)) {
            r = parse(readText(systemdResolvConf));
        }
        return r;
    }

    /** One resolv.conf's usable resolvers; empty when it names none. */
    static Optional<Resolvers> parse(String text) {
        Set<String> servers = new LinkedHashSet<>();
        List<String> search = List.of();
        Set<String> options = new LinkedHashSet<>();
        for (String line : text.split("\n", -1)) {
            int comment = indexOfAny(line, '#', ';');
            String[] w = (comment >= 0 ? line.substring(0, comment) : line).trim().split("[ \t\r\f]+");
            switch (w[0]) {
                case "nameserver" -> {
                    if (w.length >= 2 && usable(w[1]) && servers.size() < Resolvers.MAX_SERVERS) {
                        servers.add(w[1]);
                    }
                }
                case "search", "domain" -> {
                    List<String> domains = new ArrayList<>();
                    for (int i = 1; i < w.length; i++) {
                        if (DOMAIN.matcher(w[i]).matches() && !domains.contains(w[i])) {
                            domains.add(w[i]);
                        }
                    }
                    search = w[0].equals("domain") && domains.size() > 1 ? domains.subList(0, 1) : domains;
                }
                case "options" -> {
                    for (int i = 1; i < w.length; i++) {
                        if (OPTION.matcher(w[i]).matches()) {
                            options.add(w[i]);
                        }
                    }
                }
                default -> { } // comments, blank lines, sortlist, lookup, garbage
            }
        }
        return servers.isEmpty() ? Optional.empty()
                : Optional.of(new Resolvers(List.copyOf(servers), search, List.copyOf(options)));
    }

    /** Whether a guest can reach this nameserver through TSI. */
    static boolean usable(String address) {
        InetAddress a = address.indexOf('%') >= 0 ? null : Resolvers.parseLiteral(address);
        return a != null && !a.isLoopbackAddress() && !a.isAnyLocalAddress()
                && !(a instanceof Inet6Address && a.isLinkLocalAddress());
    }

    private static int indexOfAny(String s, char a, char b) {
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) == a || s.charAt(i) == b) {
                return i;
            }
        }
        return -1;
    }

    /** The file's text (bytes as Latin-1, so garbage never fails the read), or "" when it cannot be read. */
    private static String readText(Path file) {
        try {
            if (!Files.isRegularFile(file) || Files.size(file) > MAX_FILE_BYTES) {
                return "";
            }
            return new String(Files.readAllBytes(file), StandardCharsets.ISO_8859_1);
        } catch (IOException | SecurityException e) {
            return "";
        }
    }
}
