package dev.jkrun.init;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class InitConfigTest {

    private static String text(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }

    @Test
    void dhcpInterfacesAreRecordsOfTheirOwn() {
        InitConfig c = InitConfig.builder("/bin/true").dhcp("eth0").build().withDhcp(List.of("eth0", "eth1"));
        assertEquals(List.of("eth0", "eth1"), c.dhcp(), "no interface twice");
        String records = new String(c.encode(), StandardCharsets.UTF_8);
        assertTrue(records.endsWith("dhcp\0eth0\0dhcp\0eth1\0"), records);
        for (String bad : new String[] {"", "eth0 ", "a/b", "sixteen-chars-xx"}) {
            InvalidInitConfigException e = assertThrows(InvalidInitConfigException.class,
                    () -> InitConfig.builder("/bin/true").dhcp(bad).build(), bad);
            assertTrue(e.getMessage().startsWith("dhcp"), e.getMessage());
        }
    }

    @Test
    void staticAddressesAreRecordsOfTheirOwn() {
        InitConfig c = InitConfig.builder("/bin/true").ipv4(StaticIpv4.parse("eth0", "10.0.2.15/24", "10.0.2.2"))
                .build().withIpv4(List.of(new StaticIpv4("eth1", "192.168.1.1", 32, null)));
        assertTrue(text(c.encode()).endsWith("ipv4\0eth0:10.0.2.15/24:10.0.2.2\0ipv4\0eth1:192.168.1.1/32\0"), text(c.encode()));
        String[][] bad = {
                {"eth0", "10.0.2.15", "24", "x"}, {"eth0", "10.0.2.0", "24", null}, {"eth0", "10.0.2.255", "24", null},
                {"eth0", "10.0.2.15", "0", null}, {"eth0", "10.0.2.15", "24", "10.0.3.1"}, {"eth0", "::1", "24", null},
                {"a/b", "10.0.2.15", "24", null}, {"eth0", "010.0.2.15", "24", null}, {"eth0", "10.0.2.15", "24", "10.0.2.15"},
        };
        for (String[] b : bad) {
            InvalidInitConfigException e = assertThrows(InvalidInitConfigException.class,
                    () -> new StaticIpv4(b[0], b[1], Integer.parseInt(b[2]), b[3]), String.join(" ", b));
            assertEquals("ipv4", e.field(), e.getMessage());
        }
        assertEquals(new StaticIpv4("eth0", "10.0.2.0", 31, null), StaticIpv4.parse("eth0", "10.0.2.0/31", null), "/31 has no network address");
        for (String cidr : new String[] {"10.0.2.15", "10.0.2.15/", "10.0.2.15/x", "10.0.2.15/124"}) {
            assertThrows(InvalidInitConfigException.class, () -> StaticIpv4.parse("eth0", cidr, null), cidr);
        }
        assertThrows(InvalidInitConfigException.class, () -> InitConfig.builder("/bin/true").dhcp("eth0")
                .ipv4(StaticIpv4.parse("eth0", "10.0.2.15/24", null)).build(), "static or DHCP, not both");
        assertThrows(InvalidInitConfigException.class, () -> InitConfig.builder("/bin/true").ipv4(StaticIpv4.parse("eth0", "10.0.2.15/24", null))
                .ipv4(StaticIpv4.parse("eth0", "10.0.2.16/24", null)).build(), "one address an interface");
    }

    @Test
    void encodesRecordsInOrder() {
        InitConfig c = InitConfig.builder("/bin/sh").arg("-c").arg("échо $A").env("A", "1=2").workdir("/w")
                .hostname("h").rlimit("RLIMIT_NOFILE=10:unlimited").mount("data", "/mnt/data")
                .rootDisk(new RootDisk("/dev/vda", "ext4", "discard")).tty(true).stdioPorts(true).build();
        assertEquals("jkrun-init\0" + "1\0" + "exec\0/bin/sh\0" + "arg\0-c\0" + "arg\0échо $A\0" + "env\0A=1=2\0"
                + "workdir\0/w\0" + "hostname\0h\0" + "rlimit\0NOFILE=10:unlimited\0" + "mount\0data:/mnt/data\0"
                + "root-disk\0/dev/vda:ext4:discard\0" + "tty\0" + "1\0" + "stdio\0ports\0", text(c.encode()));
    }

    @Test
    void minimalConfig() {
        assertArrayEquals("jkrun-init\0001\0exec\0true\0tty\0000\0stdio\0console\0".getBytes(StandardCharsets.UTF_8),
                InitConfig.builder("true").build().encode());
    }

    @Test
    void emptyArgumentsSurvive() {
        assertEquals("jkrun-init\0001\0exec\0x\0arg\0\0arg\0\0tty\0000\0stdio\0console\0",
                text(InitConfig.builder("x").arg("").arg("").build().encode()));
    }

    private static void rejects(String field, String fragment, Runnable r) {
        InvalidInitConfigException e = assertThrows(InvalidInitConfigException.class, r::run);
        assertEquals(field, e.field());
        assertTrue(e.getMessage().startsWith(field + ": "), e.getMessage());
        assertTrue(e.getMessage().contains(fragment), e.getMessage());
    }

    @Test
    void validation() {
        rejects("rlimit", "above the hard limit", () -> RLimit.parse("NOFILE=10:5"));
        rejects("rlimit", "above the hard limit", () -> RLimit.parse("NOFILE=unlimited:5"));
        rejects("rlimit", "unknown resource 'FILES'", () -> RLimit.parse("FILES=1:2"));
        rejects("rlimit", "expected NAME=SOFT:HARD", () -> RLimit.parse("NOFILE=1"));
        rejects("rlimit", "decimal number", () -> RLimit.parse("NOFILE=1:lots"));
        rejects("env", "NAME=VALUE", () -> InitConfig.builder("x").env("NOEQUALS").build());
        rejects("env", "NAME=VALUE", () -> InitConfig.builder("x").env("=v").build());
        rejects("exec", "no program", () -> InitConfig.builder("").build());
        rejects("arg", "NUL", () -> InitConfig.builder("x").arg("a\0b").build());
        rejects("workdir", "not absolute", () -> InitConfig.builder("x").workdir("tmp").build());
        rejects("hostname", "64 bytes", () -> InitConfig.builder("x").hostname("h".repeat(65)).build());
        rejects("mount", "':'", () -> InitConfig.builder("x").mount("a:b", "/m"));
        rejects("mount", "36 bytes", () -> InitConfig.builder("x").mount("t".repeat(37), "/m"));
        rejects("mount", "absolute", () -> InitConfig.builder("x").mount("t", "m"));
        rejects("root-disk", "device", () -> new RootDisk("", "ext4", ""));
    }

    @Test
    void rlimitNames() {
        assertEquals(new RLimit(RLimit.Resource.NOFILE, 1, 2), RLimit.parse("nofile=1:2"));
        assertEquals(new RLimit(RLimit.Resource.NOFILE, 1, 2), RLimit.parse("7:1:2"));
        assertEquals(new RLimit(RLimit.Resource.RTTIME, RLimit.UNLIMITED, RLimit.UNLIMITED),
                RLimit.parse("RLIMIT_RTTIME=unlimited:unlimited"));
        assertEquals(7, RLimit.Resource.NOFILE.id());
        assertEquals(15, RLimit.Resource.RTTIME.id());
    }

    @Test
    void resolversAreEncodedAfterTheRest() {
        InitConfig c = InitConfig.builder("x").resolvers(new Resolvers(List.of("192.0.2.1", "2001:db8::1"),
                List.of("a.example", "b.example"), List.of("ndots:2", "edns0"))).build();
        assertEquals("jkrun-init\0001\0exec\0x\0tty\0000\0stdio\0console\0dns-server\000192.0.2.1\0"
                + "dns-server\0002001:db8::1\0dns-search\0a.example b.example\0dns-options\0ndots:2 edns0\0",
                text(c.encode()));
        assertEquals("jkrun-init\0001\0exec\0x\0tty\0000\0stdio\0console\0dns-server\000192.0.2.1\0",
                text(InitConfig.builder("x").resolvers(new Resolvers(List.of("192.0.2.1"), null, List.of())).build()
                        .encode()), "no empty dns-search or dns-options record");
    }

    @Test
    void resolverValidation() {
        rejects("dns-server", "expected 1 to 3", () -> new Resolvers(List.of(), List.of(), List.of()));
        rejects("dns-server", "expected 1 to 3",
                () -> new Resolvers(List.of("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"), null, null));
        for (String bad : List.of("", "1.2.3", "01.2.3.4", "256.0.0.1", "example.com", "fe80::1%eth0", "[::1]",
                "1:2:3:4:5:6:7:8:9", "::g", " 192.0.2.1")) {
            rejects("dns-server", "not an IPv4 or IPv6", () -> new Resolvers(List.of(bad), null, null));
        }
        rejects("dns-search", "printable ASCII", () -> new Resolvers(List.of("::1"), List.of("a b"), null));
        rejects("dns-search", "printable ASCII", () -> new Resolvers(List.of("::1"), List.of("a\nnameserver"), null));
        rejects("dns-options", "printable ASCII", () -> new Resolvers(List.of("::1"), null, List.of("")));
        rejects("dns-options", "printable ASCII", () -> new Resolvers(List.of("::1"), null, List.of("\u00e9")));
        assertEquals(List.of("::ffff:192.0.2.1", "2001:DB8::1", "0.0.0.0"),
                new Resolvers(List.of("::ffff:192.0.2.1", "2001:DB8::1", "0.0.0.0"), null, null).servers());
    }

    @Test
    void binaryIsAStaticElf(@TempDir Path dir) throws Exception {
        byte[] b = GuestInit.binary();
        assertArrayEquals(new byte[] {0x7f, 'E', 'L', 'F'}, java.util.Arrays.copyOf(b, 4));
        assertTrue(GuestInitHarness.isStaticElf(Files.write(dir.resolve("init.krun"), b)), "has a PT_INTERP");
    }
}
