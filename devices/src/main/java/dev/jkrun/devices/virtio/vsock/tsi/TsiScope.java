package dev.jkrun.devices.virtio.vsock.tsi;

import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.util.Optional;

/**
 * The destinations microsandbox's {@code krun_set_tsi_scope} lets a TSI guest reach, as an {@link OutboundPolicy}:
 * 0 none; 1 group, the guest's subnet only (none without a subnet); 2 public, the subnet and public addresses;
 * 3 any. "Public" is what is routed on the internet ({@link #isPublic}) and not one of this host's own addresses.
 * Addresses are compared as the bytes TSI decoded, so an IPv4-mapped IPv6 address counts as its IPv4 address.
 */
public record TsiScope(int level, Optional<Subnet> subnet) implements OutboundPolicy {
    public static final int NONE = 0, GROUP = 1, PUBLIC = 2, ANY = 3;

    public TsiScope {
        if (level < NONE || level > ANY) {
            throw new IllegalArgumentException("tsi.scope: 0 to 3, got " + level);
        }
    }

    @Override
    public boolean allows(InetAddress ip, int port) {
        return switch (level) {
            case ANY -> true;
            case PUBLIC -> inSubnet(ip) || isPublic(ip) && !isThisHost(ip);
            case GROUP -> inSubnet(ip);
            default -> false;
        };
    }

    private boolean inSubnet(InetAddress ip) { return subnet.isPresent() && subnet.get().contains(ip); }

    /**
     * Whether {@code ip} is one of this host's own addresses: a public address of the host reaches its services over
     * loopback, so it is no more "public" than 127.0.0.1. Unknown counts as the host's.
     */
    static boolean isThisHost(InetAddress ip) {
        try {
            return java.net.NetworkInterface.getByInetAddress(ip) != null;
        } catch (java.net.SocketException e) {
            return true;
        }
    }

    /**
     * Whether {@code ip} is a globally routed unicast address: none of the IANA special-purpose blocks (RFC 6890 and
     * successors) that are not global; IPv6 forms that carry an IPv4 address (IPv4-compatible, SIIT, NAT64, 6to4)
     * are judged by that address; Teredo is not public.
     */
    public static boolean isPublic(InetAddress ip) {
        if (ip.isLoopbackAddress() || ip.isAnyLocalAddress() || ip.isLinkLocalAddress() || ip.isSiteLocalAddress()
                || ip.isMulticastAddress()) {
            return false;
        }
        byte[] a = ip.getAddress();
        if (ip instanceof Inet4Address) {
            return isPublic4(a, 0);
        }
        if (!(ip instanceof Inet6Address)) {
            return false;
        }
        int w0 = (a[0] & 0xFF) << 8 | (a[1] & 0xFF), w1 = (a[2] & 0xFF) << 8 | (a[3] & 0xFF);
        if (allZero(a, 0, 10) && ((a[10] == 0 && a[11] == 0) || (a[10] == -1 && a[11] == -1))) {
            return isPublic4(a, 12);                              // ::a.b.c.d, ::ffff:a.b.c.d
        }
        if (allZero(a, 0, 8) && a[8] == -1 && a[9] == -1 && a[10] == 0 && a[11] == 0) {
            return isPublic4(a, 12);                              // ::ffff:0:a.b.c.d (SIIT)
        }
        if (w0 == 0x64 && w1 == 0xff9b) {
            return allZero(a, 4, 12) && isPublic4(a, 12);         // 64:ff9b::/96; 64:ff9b:1::/48 is local use
        }
        if (w0 == 0x2002) {
            return isPublic4(a, 2);                               // 6to4
        }
        if (w0 == 0x2001 && (w1 == 0 || w1 == 0xdb8 || (w1 & 0xFE00) == 0x0000 && w1 < 0x200)) {
            return false;                                         // Teredo, documentation, IETF protocol assignments
        }
        if (w0 == 0x100 && allZero(a, 2, 8)) {
            return false;                                         // 100::/64 discard-only
        }
        return (a[0] & 0xFE) != 0xFC && (a[0] & 0xE0) == 0x20;    // global unicast 2000::/3, not unique-local
    }

    private static boolean allZero(byte[] a, int from, int to) {
        for (int i = from; i < to; i++) {
            if (a[i] != 0) {
                return false;
            }
        }
        return true;
    }

    /** The four bytes at {@code off}, an IPv4 address: not any of the non-global special-purpose blocks. */
    private static boolean isPublic4(byte[] a, int off) {
        int v = (a[off] & 0xFF) << 24 | (a[off + 1] & 0xFF) << 16 | (a[off + 2] & 0xFF) << 8 | (a[off + 3] & 0xFF);
        int[][] blocks = {
            {0x00000000, 8}, {0x0A000000, 8}, {0x64400000, 10}, {0x7F000000, 8}, {0xA9FE0000, 16}, {0xAC100000, 12},
            {0xC0000000, 24}, {0xC0000200, 24}, {0xC0A80000, 16}, {0xC6120000, 15}, {0xC6336400, 24}, {0xCB007100, 24},
            {0xE0000000, 4}, {0xF0000000, 4},
        };
        for (int[] b : blocks) {
            int mask = -1 << (32 - b[1]);
            if ((v & mask) == b[0]) {
                return false;
            }
        }
        return true;
    }

    /** An IPv4 network in CIDR notation, {@code 192.168.1.0/24}. */
    public record Subnet(int network, int prefix) {
        public Subnet {
            if (prefix < 0 || prefix > 32) {
                throw new IllegalArgumentException("tsi.subnet: prefix 0 to 32, got " + prefix);
            }
            network &= mask(prefix);
        }

        /** Parses {@code A.B.C.D/N} strictly (no names, no other forms); IllegalArgumentException naming the field. */
        public static Subnet parse(String cidr) {
            int slash = cidr.indexOf('/');
            if (slash < 0 || slash == cidr.length() - 1 || cidr.length() - slash > 3) {
                throw new IllegalArgumentException("tsi.subnet: not A.B.C.D/N: '" + cidr + "'");
            }
            int prefix = 0;
            for (char c : cidr.substring(slash + 1).toCharArray()) {
                if (c < '0' || c > '9') {
                    throw new IllegalArgumentException("tsi.subnet: not A.B.C.D/N: '" + cidr + "'");
                }
                prefix = prefix * 10 + (c - '0');
            }
            return new Subnet(ipv4(cidr.substring(0, slash), "tsi.subnet"), prefix);
        }

        boolean contains(InetAddress ip) {
            if (!(ip instanceof Inet4Address)) {
                return false;
            }
            byte[] a = ip.getAddress();
            int v = (a[0] & 0xFF) << 24 | (a[1] & 0xFF) << 16 | (a[2] & 0xFF) << 8 | (a[3] & 0xFF);
            return (v & mask(prefix)) == network;
        }

        private static int mask(int prefix) { return prefix == 0 ? 0 : -1 << (32 - prefix); }
    }

    /** A dotted-quad IPv4 literal as an int (four decimal octets 0-255, no leading '+', no names). */
    public static int ipv4(String s, String field) {
        String[] parts = s.split("\\.", -1);
        if (parts.length != 4) {
            throw new IllegalArgumentException(field + ": not an IPv4 address: '" + s + "'");
        }
        int v = 0;
        for (String p : parts) {
            if (p.isEmpty() || p.length() > 3 || !p.chars().allMatch(c -> c >= '0' && c <= '9') || Integer.parseInt(p) > 255
                    || p.length() > 1 && p.charAt(0) == '0') { // no leading zeros: inet_aton would read them as octal
                throw new IllegalArgumentException(field + ": not an IPv4 address: '" + s + "'");
            }
            v = v << 8 | Integer.parseInt(p);
        }
        return v;
    }
}
