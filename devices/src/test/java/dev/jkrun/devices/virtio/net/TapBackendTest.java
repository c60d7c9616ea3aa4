package dev.jkrun.devices.virtio.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.Tun;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * The tap backend against the host kernel: a tap this test creates (it goes away with its descriptor) with an
 * address of its own, 10.125.0.1/24; an ARP request for it, written with a zero virtio-net header, gets the kernel's
 * ARP reply with a header whose num_buffers is 1. Nothing leaves the tap.
 */
class TapBackendTest {
    static final byte[] MAC = {2, 0x4a, 0x4b, 0, 0, 9};

    static void ip(String... args) throws Exception {
        String[] cmd = new String[args.length + 1];
        cmd[0] = "ip";
        System.arraycopy(args, 0, cmd, 1, args.length);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.waitFor(), String.join(" ", cmd) + ": " + out);
    }

    static byte[] arpRequest() {
        ByteBuffer f = ByteBuffer.allocate(NetHeader.SIZE + 42);
        f.put(new byte[NetHeader.SIZE]);
        f.put(new byte[] {-1, -1, -1, -1, -1, -1}).put(MAC).putShort((short) 0x0806);
        f.putShort((short) 1).putShort((short) 0x0800).put((byte) 6).put((byte) 4).putShort((short) 1);
        f.put(MAC).put(new byte[] {10, 125, 0, 2}).put(new byte[6]).put(new byte[] {10, 125, 0, 1});
        return f.array();
    }

    @Test
    void anArpRequestThroughTheTapGetsTheKernelsReply() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")) && Files.exists(Path.of("/dev/net/tun")),
                "needs root and /dev/net/tun");
        String name = "jktapt" + ProcessHandle.current().pid() % 100000;
        try (TapBackend tap = new TapBackend(Tun.openTap(name, NetHeader.SIZE), name)) {
            tap.negotiated(1L << VirtioNet.F_GUEST_CSUM | 1L << VirtioNet.F_GUEST_TSO4); // TUNSETOFFLOAD accepted
            ip("addr", "add", "10.125.0.1/24", "dev", name);
            ip("link", "set", name, "up");
            assertEquals(NetBackend.WriteResult.SENT, tap.write(ByteBuffer.wrap(arpRequest())));
            ByteBuffer buf = ByteBuffer.allocate(NetHeader.SIZE + NetBackend.MAX_FRAME);
            long end = System.currentTimeMillis() + 5000;
            byte[] reply = null;
            while (reply == null && System.currentTimeMillis() < end) {
                buf.clear();
                int n = tap.read(buf);
                if (n <= 0) {
                    Thread.sleep(5);
                    continue;
                }
                byte[] f = Arrays.copyOf(buf.array(), n);
                int e = NetHeader.SIZE;
                if (n >= e + 42 && f[e + 12] == 0x08 && f[e + 13] == 0x06 && f[e + 21] == 2) { // ARP reply
                    reply = f;
                }
            }
            assertTrue(reply != null, "the kernel answered the ARP request through the tap");
            assertEquals(1, reply[10], "num_buffers 1");
            assertArrayEquals(MAC, Arrays.copyOfRange(reply, NetHeader.SIZE, NetHeader.SIZE + 6), "to our MAC");
            assertArrayEquals(new byte[] {10, 125, 0, 1}, Arrays.copyOfRange(reply, NetHeader.SIZE + 28, NetHeader.SIZE + 32),
                    "from the tap's address");
        }
        assertTrue(!Files.exists(Path.of("/sys/class/net/" + name)), "the tap went away with its descriptor");
    }

    @Test
    void badNamesAreRefused() {
        for (String bad : new String[] {"", "sixteen-chars-xx", "a/b"}) {
            try {
                FileDescriptor fd = Tun.openTap(bad, NetHeader.SIZE);
                fd.close();
                throw new AssertionError("opened '" + bad + "'");
            } catch (IllegalArgumentException expected) {
                assertTrue(expected.getMessage().contains("tap name"), expected.getMessage());
            }
        }
    }
}
