package dev.jkrun.init;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.nio.ByteBuffer;

/**
 * A static IPv4 address init gives an interface before the workload starts, and optionally a default route: the
 * record {@code ipv4} = {@code IFNAME:ADDRESS/PREFIX} or {@code IFNAME:ADDRESS/PREFIX:GATEWAY}. The interface is
 * brought up; of several gateways the first wins. An interface has one address and is configured either statically
 * or over DHCP.
 *
 * @param iface   the interface (eth0...), 1 to 15 of {@code [A-Za-z0-9_.-]}
 * @param address a dotted-quad IPv4 address, not the network's or (below /31) its broadcast address
 * @param prefix  1 to 32
 * @param gateway a dotted-quad address inside {@code address/prefix}, or null for no default route
 */
public record StaticIpv4(String iface, String address, int prefix, String gateway) {

    public StaticIpv4 {
        if (!InitConfig.isInterfaceName(iface)) {
            throw new InvalidInitConfigException("ipv4", "'" + iface + "' is not an interface name");
        }
        int a = ipv4("address", address);
        if (prefix < 1 || prefix > 32) {
            throw new InvalidInitConfigException("ipv4", iface + ": prefix " + prefix + " is not 1 to 32");
        }
        int mask = (int) (0xffff_ffffL << (32 - prefix));
        if (prefix < 31 && ((a & ~mask) == 0 || (a | mask) == -1)) {
            throw new InvalidInitConfigException("ipv4", iface + ": " + address + "/" + prefix
                    + " is the network's own or its broadcast address");
        }
        if (gateway != null) {
            int g = ipv4("gateway", gateway);
            if ((g & mask) != (a & mask) || g == a) {
                throw new InvalidInitConfigException("ipv4", iface + ": gateway " + gateway + " is not another host of "
                        + address + "/" + prefix);
            }
        }
    }

    /** {@code ADDRESS/PREFIX}, e.g. {@code 10.0.2.15/24}. */
    public static StaticIpv4 parse(String iface, String cidr, String gateway) {
        int slash = cidr == null ? -1 : cidr.indexOf('/');
        if (slash < 0 || !cidr.substring(slash + 1).matches("[0-9]{1,2}")) {
            throw new InvalidInitConfigException("ipv4", iface + ": '" + cidr + "' is not ADDRESS/PREFIX");
        }
        return new StaticIpv4(iface, cidr.substring(0, slash), Integer.parseInt(cidr.substring(slash + 1)), gateway);
    }

    private static int ipv4(String what, String s) {
        InetAddress a = Resolvers.parseLiteral(s);
        if (!(a instanceof Inet4Address) || s.indexOf(':') >= 0) {
            throw new InvalidInitConfigException("ipv4", "'" + s + "' is not an IPv4 " + what);
        }
        return ByteBuffer.wrap(a.getAddress()).getInt();
    }

    String encode() {
        return iface + ":" + address + "/" + prefix + (gateway != null ? ":" + gateway : "");
    }
}
