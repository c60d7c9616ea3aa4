package dev.jkrun.devices.virtio.vsock.tsi;

import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.util.Optional;

/**
 * The destinations microsandbox's {@code krun_set_tsi_scope} lets a TSI guest reach, as an {@link OutboundPolicy}:
 * 0 none; 1 group, the guest's subnet only (none without a subnet); 2 public, the subnet and public addresses;
 * 3 any. "Public" is what is routed on the internet: not loopback, unspecified, link-local, private (RFC 1918, IPv6
 * unique-local), shared (100.64.0.0/10), multicast or broadcast. Addresses are compared as the bytes TSI decoded, so
 * an IPv4-mapped IPv6 address counts as its IPv4 address.
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
            case PUBLIC -> isPublic(ip) || inSubnet(ip);
            case GROUP -> inSubnet(ip);
            default -> false;
        };
    }

    private boolean inSubnet(InetAddress ip) { return subnet.isPresent() && subnet.get().contains(ip); }

    /** Whether {@code ip} is a globally routed unicast address. */
    public static boolean isPublic(InetAddress ip) {
        if (ip.isLoopbackAddress() || ip.isAnyLocalAddress() || ip.isLinkLocalAddress() || ip.isSiteLocalAddress()
                || ip.isMulticastAddress()) {
            return false;
        }
        byte[] a = ip.getAddress();
        if (ip instanceof Inet4Address) {
            int b0 = a[0] & 0xFF, b1 = a[1] & 0xFF;
            return b0 != 0 && !(b0 == 100 && (b1 & 0xC0) == 64) && !(b0 == 255 && (a[1] & a[2] & a[3] & 0xFF) == 0xFF);
        }
        return ip instanceof Inet6Address && (a[0] & 0xFE) != 0xFC; // fc00::/7 unique-local
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
            if (p.isEmpty() || p.length() > 3 || !p.chars().allMatch(c -> c >= '0' && c <= '9') || Integer.parseInt(p) > 255) {
                throw new IllegalArgumentException(field + ": not an IPv4 address: '" + s + "'");
            }
            v = v << 8 | Integer.parseInt(p);
        }
        return v;
    }
}
