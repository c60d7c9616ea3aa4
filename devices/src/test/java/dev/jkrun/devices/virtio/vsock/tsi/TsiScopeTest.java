package dev.jkrun.devices.virtio.vsock.tsi;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** krun_set_tsi_scope's levels as an outbound policy, and its strict address parsing. */
class TsiScopeTest {
    private static InetAddress ip(String literal) throws Exception {
        return InetAddress.getByName(literal); // literals only here: no name lookup happens
    }

    @Test
    void eachLevel() throws Exception {
        Optional<TsiScope.Subnet> group = Optional.of(TsiScope.Subnet.parse("192.168.77.0/24"));
        InetAddress peer = ip("192.168.77.9"), other = ip("192.168.78.9"), pub = ip("93.184.216.34"), lo = ip("127.0.0.1");
        TsiScope none = new TsiScope(0, group), grp = new TsiScope(1, group), pubs = new TsiScope(2, group), any = new TsiScope(3, group);
        for (InetAddress a : new InetAddress[] {peer, other, pub, lo}) {
            assertFalse(none.allows(a, 80), "none: " + a);
            assertTrue(any.allows(a, 80), "any: " + a);
        }
        assertTrue(grp.allows(peer, 80));
        assertFalse(grp.allows(other, 80));
        assertFalse(grp.allows(pub, 80));
        assertFalse(grp.allows(lo, 80), "the host's loopback is not the group");
        assertTrue(pubs.allows(pub, 80));
        assertTrue(pubs.allows(peer, 80), "public includes the group");
        assertFalse(pubs.allows(other, 80), "another private network");
        assertFalse(pubs.allows(lo, 80));
        assertFalse(new TsiScope(1, Optional.empty()).allows(peer, 80), "group without a subnet blocks all, as documented");
        assertTrue(pubs.allows(ip("::ffff:93.184.216.34"), 80), "IPv4-mapped counts as IPv4");
        for (var ni : java.util.Collections.list(java.net.NetworkInterface.getNetworkInterfaces())) {
            for (InetAddress own : java.util.Collections.list(ni.getInetAddresses())) {
                assertFalse(pubs.allows(own, 80), "this host's own address " + own + " is not public");
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"0.1.2.3", "10.1.2.3", "100.64.0.1", "100.127.255.255", "127.0.0.1", "169.254.1.1", "172.16.0.1",
            "172.31.255.255", "192.168.0.1", "224.0.0.1", "255.255.255.255", "::", "::1", "fe80::1", "fc00::1", "fd12::1",
            "ff02::1", "::ffff:10.0.0.1", "::127.0.0.1", "::ffff:0:10.0.0.1", "64:ff9b::a00:1", "64:ff9b:1::808:808",
            "2002:a00:1::1", "2002:7f00:1::", "2001::1", "2001:db8::1", "100::1", "fec0::1", "192.0.0.8", "198.18.0.1",
            "198.19.255.255", "192.0.2.1", "198.51.100.1", "203.0.113.1", "240.0.0.1", "4000::1"})
    void notPublic(String literal) throws Exception {
        assertFalse(TsiScope.isPublic(ip(literal)), literal);
    }

    @ParameterizedTest
    @ValueSource(strings = {"1.1.1.1", "100.63.255.255", "100.128.0.0", "172.15.255.255", "172.32.0.0", "8.8.8.8",
            "2606:4700::1111", "64:ff9b::808:808", "2002:808:808::1", "198.17.255.255", "198.20.0.0", "223.255.255.254"})
    void isPublic(String literal) throws Exception {
        assertTrue(TsiScope.isPublic(ip(literal)), literal);
    }

    @Test
    void subnetParsing() throws Exception {
        TsiScope.Subnet s = TsiScope.Subnet.parse("10.1.2.3/8");
        assertEquals(0x0A000000, s.network(), "host bits cleared");
        assertTrue(s.contains(ip("10.255.0.1")));
        assertFalse(s.contains(ip("11.0.0.1")));
        assertTrue(TsiScope.Subnet.parse("0.0.0.0/0").contains(ip("8.8.8.8")));
        assertTrue(TsiScope.Subnet.parse("8.8.8.8/32").contains(ip("8.8.8.8")));
        assertFalse(TsiScope.Subnet.parse("8.8.8.8/32").contains(ip("8.8.8.9")));
        for (String bad : new String[] {"", "/", "10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0/8", "10.0.0.256/8", "10.0.0.0/+8",
                "a.b.c.d/8", "localhost/8", "10.0.0.0/008x", "::1/128", "10..0.0/8", "10.0.0.0/8/8"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TsiScope.Subnet.parse(bad), bad);
            assertTrue(e.getMessage().startsWith("tsi.subnet"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> TsiScope.ipv4("1.2.3", "tsi.ip"));
        assertThrows(IllegalArgumentException.class, () -> TsiScope.ipv4("1.2.3.4 ", "tsi.ip"));
        assertThrows(IllegalArgumentException.class, () -> TsiScope.ipv4("010.0.0.1", "tsi.ip"), "octal to inet_aton");
        assertThrows(IllegalArgumentException.class, () -> TsiScope.Subnet.parse("010.0.0.0/8"));
        assertEquals(0, TsiScope.ipv4("0.0.0.0", "tsi.ip"));
        assertEquals(0x01020304, TsiScope.ipv4("1.2.3.4", "tsi.ip"));
        assertThrows(IllegalArgumentException.class, () -> new TsiScope(4, Optional.empty()));
    }
}
