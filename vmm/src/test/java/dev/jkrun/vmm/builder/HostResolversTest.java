package dev.jkrun.vmm.builder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.init.InitConfig;
import dev.jkrun.init.Resolvers;
import dev.jkrun.vmm.VmBuilder;
import dev.jkrun.vmm.VmConfig;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Which host resolvers a TSI guest gets (host files in a temp dir), and when the VM passes them to init. */
class HostResolversTest {
    @TempDir
    Path dir;

    private Path etc() { return dir.resolve("resolv.conf"); }

    private Path systemd() { return dir.resolve("systemd-resolv.conf"); }

    private Optional<Resolvers> read(String etc, String systemd) throws Exception {
        if (etc != null) {
            Files.writeString(etc(), etc);
        }
        if (systemd != null) {
            Files.writeString(systemd(), systemd);
        }
        return HostResolvers.read(etc(), systemd());
    }

    @Test
    void plainFile() throws Exception {
        Resolvers r = read("# a comment\nnameserver 192.0.2.53\nnameserver 198.51.100.1\n", "nameserver 192.0.2.99\n")
                .orElseThrow();
        assertEquals(List.of("192.0.2.53", "198.51.100.1"), r.servers(), "the systemd file only when needed");
        assertEquals(List.of(), r.search());
        assertEquals(List.of(), r.options());
    }

    @Test
    void loopbackStubWithTheSystemdFileGivesItsUpstreamServers() throws Exception {
        Resolvers r = read("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch stub.example\n",
                "nameserver 192.0.2.1\nnameserver 2001:db8::1\nsearch corp.example lab.example\noptions ndots:2\n")
                .orElseThrow();
        assertEquals(List.of("192.0.2.1", "2001:db8::1"), r.servers());
        assertEquals(List.of("corp.example", "lab.example"), r.search(), "from the file the servers come from");
        assertEquals(List.of("ndots:2"), r.options());
    }

    @Test
    void loopbackOnlyWithoutTheSystemdFileIsNone() throws Exception {
        assertEquals(Optional.empty(), read("nameserver 127.0.0.1\nnameserver ::1\nsearch x.example\n", null));
        assertEquals(Optional.empty(), read("nameserver 0.0.0.0\nnameserver ::\nnameserver ::ffff:127.0.0.1\n", null),
                "unspecified and mapped loopback count as loopback");
    }

    @Test
    void loopbackEverywhereIsNone() throws Exception {
        assertEquals(Optional.empty(), read("nameserver 127.0.0.53\n", "nameserver 127.0.0.1\n"));
    }

    @Test
    void mixedKeepsTheUsableOnes() throws Exception {
        Resolvers r = read("nameserver 127.0.0.53\nnameserver 192.0.2.7\n", "nameserver 192.0.2.99\n").orElseThrow();
        assertEquals(List.of("192.0.2.7"), r.servers());
    }

    @Test
    void missingOrEmptyFileFallsBackToSystemd() throws Exception {
        assertEquals(List.of("192.0.2.1"), read(null, "nameserver 192.0.2.1\n").orElseThrow().servers());
        assertEquals(List.of("192.0.2.1"), read("", null).orElseThrow().servers(), "empty: the systemd file above");
        assertEquals(Optional.empty(), HostResolvers.read(dir.resolve("none"), dir.resolve("none-either")));
    }

    @Test
    void searchAndOptions() throws Exception {
        Resolvers r = read("search first.example\nnameserver 192.0.2.1\ndomain only.example\n"
                + "search a.example b.example. a.example bad/word\noptions ndots:3 rotate\n"
                + "options timeout:2 rotate edns0 # trailing comment\n", null).orElseThrow();
        assertEquals(List.of("a.example", "b.example."), r.search(), "the last search/domain line wins");
        assertEquals(List.of("ndots:3", "rotate", "timeout:2", "edns0"), r.options(), "options lines add up");
        Resolvers d = read("nameserver 192.0.2.1\nsearch x.example\ndomain d.example\n", null).orElseThrow();
        assertEquals(List.of("d.example"), d.search());
    }

    @Test
    void garbageLinesAreIgnored() throws Exception {
        Resolvers r = read("nameserver\nnameserver not-an-address\nnameserver 1.2.3\nnameserver 256.1.1.1\n"
                + "nameserver example.com\n\u00ff\u0001 garbage\nsortlist 130.155.160.0/255.255.240.0\n"
                + "  nameserver\t192.0.2.5  # spaces and a tab\n;nameserver 192.0.2.6\noptions ndots:x \u00e9t\u00e9\n"
                + "search \u00e9.example ok.example\n", null).orElseThrow();
        assertEquals(List.of("192.0.2.5"), r.servers());
        assertEquals(List.of("ok.example"), r.search());
        assertEquals(List.of(), r.options());
        Files.write(etc(), new byte[] {(byte) 0xff, (byte) 0xfe, '\n', 'n', 'a', 'm', 'e', 's', 'e', 'r', 'v', 'e', 'r',
                ' ', '9', '.', '9', '.', '9', '.', '9', '\n'});
        assertEquals(List.of("9.9.9.9"), HostResolvers.read(etc(), systemd()).orElseThrow().servers(),
                "bytes that are not UTF-8 do not fail the read");
    }

    @Test
    void ipv6() throws Exception {
        Resolvers r = read("nameserver fe80::1%eth0\nnameserver fe80::2\nnameserver 2001:db8::53\n"
                + "nameserver 2001:DB8:0:0:0:0:0:54\nnameserver ::ffff:192.0.2.9\nnameserver [2001:db8::55]\n", null)
                .orElseThrow();
        assertEquals(List.of("2001:db8::53", "2001:DB8:0:0:0:0:0:54", "::ffff:192.0.2.9"), r.servers(),
                "no link-local or scoped address, no brackets");
    }

    @Test
    void atMostThreeServersWithoutDuplicates() throws Exception {
        Resolvers r = read("nameserver 192.0.2.1\nnameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\n"
                + "nameserver 192.0.2.4\n", null).orElseThrow();
        assertEquals(List.of("192.0.2.1", "192.0.2.2", "192.0.2.3"), r.servers());
    }

    private static final Resolvers HOST = new Resolvers(List.of("192.0.2.53"), List.of("example.org"), List.of());

    private InitConfig complete(VmBuilder b) {
        VmConfig c = b.fs(f -> f.root(dir)).exec(e -> e.path("/bin/true")).build();
        return Shares.completeInit(c.exec().orElseThrow(), c, () -> Optional.of(HOST));
    }

    @Test
    void theVmPassesThemOnlyWithTsiForInet() {
        assertEquals(HOST, complete(VmBuilder.create()).resolvers(), "TSI is on by default");
        assertNull(complete(VmBuilder.create().network(n -> n.none())).resolvers());
        String text = new String(complete(VmBuilder.create()).encode(), StandardCharsets.UTF_8);
        assertTrue(text.endsWith("dns-server\000192.0.2.53\000dns-search\000example.org\000"), text);
    }
}
