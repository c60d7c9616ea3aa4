package dev.jkrun.vmm.builder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jkrun.devices.virtio.net.NetBackend;
import dev.jkrun.devices.virtio.net.VirtioNet;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.SockAddr;
import dev.jkrun.libc.Sockets;
import dev.jkrun.vmm.ConfigurationException;
import dev.jkrun.vmm.NetDeviceConfig;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Opening each backend as the VM does: descriptors checked, sockets bound and connected, passt started and stopped. */
class NetsTest {
    static final byte[] MAC = {2, 0, 0, 0, 0, 5};
    @TempDir
    Path tmp;
    final List<AutoCloseable> resources = new ArrayList<>();
    final List<AutoCloseable> toClose = new ArrayList<>();

    @AfterEach
    void close() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
        for (int i = resources.size() - 1; i >= 0; i--) {
            resources.get(i).close();
        }
    }

    private VirtioNet device(NetDeviceConfig.Backend b) {
        VirtioNet n = Nets.device(new NetDeviceConfig("eth0", MAC, 0, b), resources);
        toClose.add(n);
        return n;
    }

    @Test
    void descriptorsMustBeSocketsOfTheRightType() throws Exception {
        FileDescriptor[] stream = Sockets.socketPair(Sockets.SOCK_STREAM, false);
        toClose.add(stream[0]);
        toClose.add(stream[1]);
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> device(new NetDeviceConfig.UnixGramFd(stream[0].raw())));
        assertEquals("net.eth0.backend", e.field());
        assertTrue(e.getMessage().contains("unixgram needs SOCK_DGRAM"), e.getMessage());
        Path file = Files.writeString(tmp.resolve("f"), "x");
        try (FileDescriptor f = FileDescriptor.open(file.toString(), FileDescriptor.O_RDONLY)) {
            e = assertThrows(ConfigurationException.class, () -> device(new NetDeviceConfig.UnixStreamFd(f.raw())));
            assertTrue(e.getMessage().contains("is not a socket"), e.getMessage());
        }
        VirtioNet n = device(new NetDeviceConfig.UnixStreamFd(stream[0].raw()));
        assertTrue(n.backend().describe().startsWith("unixstream fd "));
        assertTrue(n.backend().fd() != stream[0].raw(), "a duplicate: the caller's descriptor stays the caller's");
    }

    @Test
    void unixgramBindsItsOwnSocketSendsTheVfkitHandshakeAndRemovesItAtStop() throws Exception {
        Path peerPath = tmp.resolve("gvproxy.sock");
        FileDescriptor peer = Sockets.socket(SockAddr.AF_UNIX, Sockets.SOCK_DGRAM);
        toClose.add(peer);
        Sockets.bind(peer, SockAddr.unix(peerPath));
        VirtioNet n = device(new NetDeviceConfig.UnixGramPath(peerPath, true));
        ByteBuffer got = ByteBuffer.allocate(100);
        Sockets.Datagram d = Sockets.receiveFrom(peer, got);
        assertNotNull(d, "the handshake datagram");
        assertEquals("VFKT", new String(got.array(), 0, got.position()));
        Path local = Path.of(d.from().toString().replaceFirst("^unix:", ""));
        assertTrue(local.getFileName().toString().matches("krun-net-\\d+-\\d+\\.sock"), local.toString());
        assertTrue(Files.exists(local));
        // the peer answers to the VMM's own address
        Sockets.sendTo(peer, ByteBuffer.wrap(new byte[60]), d.from());
        ByteBuffer frame = ByteBuffer.allocate(NetBackend.MAX_FRAME);
        assertEquals(60, n.backend().read(frame));
        n.close();
        for (int i = resources.size() - 1; i >= 0; i--) {
            resources.get(i).close();
        }
        resources.clear();
        assertFalse(Files.exists(local), "the VMM's socket file goes with the VM");
        assertThrows(ConfigurationException.class, () -> device(new NetDeviceConfig.UnixGramPath(tmp.resolve("none.sock"), false)));
    }

    @Test
    void unixstreamConnectsToAPath() throws Exception {
        Path path = tmp.resolve("passt.sock");
        FileDescriptor listener = Sockets.listenUnix(path, 4);
        toClose.add(listener);
        VirtioNet n = device(new NetDeviceConfig.UnixStreamPath(path));
        FileDescriptor accepted = Sockets.accept(listener);
        assertNotNull(accepted);
        toClose.add(accepted);
        assertEquals(NetBackend.WriteResult.SENT, n.backend().write(ByteBuffer.wrap(new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14})));
        ByteBuffer got = ByteBuffer.allocate(18);
        long end = System.currentTimeMillis() + 5000;
        while (got.hasRemaining() && System.currentTimeMillis() < end) {
            Sockets.read(accepted, got);
        }
        assertArrayEquals(new byte[] {0, 0, 0, 14, 1, 2, 3}, Arrays.copyOf(got.array(), 7));
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> device(new NetDeviceConfig.UnixStreamPath(tmp.resolve("nothing.sock"))));
        assertEquals("net.eth0.backend", e.field());
    }

    /** A DHCPDISCOVER from MAC, broadcast: what a guest's DHCP client sends first. */
    static byte[] dhcpDiscover() {
        ByteBuffer bootp = ByteBuffer.allocate(240 + 4);
        bootp.put((byte) 1).put((byte) 1).put((byte) 6).put((byte) 0).putInt(0x4a4b0001).putShort((short) 0).putShort((short) 0x8000);
        bootp.put(new byte[16]).put(MAC).put(new byte[10]).put(new byte[192]);
        bootp.putInt(0x63825363).put((byte) 53).put((byte) 1).put((byte) 1).put((byte) 255);
        byte[] b = bootp.array();
        ByteBuffer f = ByteBuffer.allocate(14 + 20 + 8 + b.length);
        f.put(new byte[] {-1, -1, -1, -1, -1, -1}).put(MAC).putShort((short) 0x0800);
        int ipStart = f.position();
        f.put((byte) 0x45).put((byte) 0).putShort((short) (20 + 8 + b.length)).putInt(0).put((byte) 64).put((byte) 17)
                .putShort((short) 0).putInt(0).putInt(0xFFFFFFFF);
        long sum = 0;
        for (int i = ipStart; i < ipStart + 20; i += 2) {
            sum += ((f.get(i) & 0xFF) << 8) | (f.get(i + 1) & 0xFF);
        }
        while ((sum >>> 16) != 0) {
            sum = (sum & 0xFFFF) + (sum >>> 16);
        }
        f.putShort(ipStart + 10, (short) ~sum);
        f.putShort((short) 68).putShort((short) 67).putShort((short) (8 + b.length)).putShort((short) 0).put(b);
        return f.array();
    }

    @Test
    void passtIsStartedAnswersDhcpAndIsStoppedWithTheVm() throws Exception {
        Path passt = Path.of("/usr/bin/passt");
        assumeTrue(Files.isExecutable(passt) || "true".equals(System.getenv("CI")), "passt is not installed (apt install passt)");
        VirtioNet n = device(new NetDeviceConfig.Passt(passt));
        String d = n.backend().describe();
        long pid = Long.parseLong(d.replaceAll(".*pid (\\d+).*", "$1"));
        assertTrue(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), d);
        assertEquals(NetBackend.WriteResult.SENT, n.backend().write(ByteBuffer.wrap(dhcpDiscover())));
        while (n.backend().hasPendingWrite()) {
            n.backend().flushPending();
        }
        ByteBuffer frame = ByteBuffer.allocate(NetBackend.MAX_FRAME);
        long end = System.currentTimeMillis() + 10_000;
        int len = 0;
        while (System.currentTimeMillis() < end) {
            frame.clear();
            len = n.backend().read(frame);
            // an IPv4 UDP datagram from port 67 to 68 whose DHCP message type (option 53) is OFFER (2)
            if (len > 42 + 240 && frame.getShort(12) == 0x0800 && frame.get(23) == 17 && frame.getShort(34) == 67) {
                break;
            }
            Thread.sleep(len == 0 ? 10 : 0);
        }
        assertTrue(len > 42 + 240, "passt answered the DHCPDISCOVER");
        assertArrayEquals(MAC, Arrays.copyOfRange(frame.array(), 0, 6), "to the guest's MAC");
        byte[] options = Arrays.copyOfRange(frame.array(), 42 + 240, len);
        int type = -1;
        for (int i = 0; i + 1 < options.length && options[i] != (byte) 255; i += options[i] == 0 ? 1 : 2 + (options[i + 1] & 0xFF)) {
            if (options[i] == 53) {
                type = options[i + 2];
            }
        }
        assertEquals(2, type, "DHCPOFFER (option 53)");
        n.close();
        for (int i = resources.size() - 1; i >= 0; i--) {
            resources.get(i).close();
        }
        resources.clear();
        assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "passt stopped with the VM");
    }
}
