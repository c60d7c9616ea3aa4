package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.guests.TestGuests;
import dev.jkrun.kvm.testing.KvmAvailable;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.Sockets;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * virtio-net through real KVM: the net test guest drives the device the builder attaches for a unixstream NIC
 * whose other end is this test (a socketpair): frames out are checked here byte for byte, a burst is sent while the
 * guest has no receive buffer posted (the device holds one frame and stops reading; nothing is lost once buffers
 * come), a malformed transmit chain comes back, 1514-byte frames go both ways. The VMM logs no error and every host
 * descriptor is closed with the VM.
 */
class NetGuestTest {
    static final byte[] MAC = {0x02, 0x4a, 0x4b, 0x00, 0x00, 0x07};
    static final byte[] HOST_MAC = {2, 0, 0, 0, 0, 1};
    static final long TIMEOUT_MS = 60_000;
    private static final List<String> CHECKS = List.of("offers MAC", "no mergeable rx buffers, status or control queue",
            "config space holds the MAC", "hello: a 60-byte frame out", "exhaust: nothing arrives without buffers",
            "malformed: an 8-byte tx chain comes back", "malformed: a 70012-byte tx chain comes back unsent",
            "malformed: a write-only tx chain comes back unsent", "big: a 1514-byte frame out", "big: a 1514-byte frame in", "bye");

    @BeforeAll
    static void kvm() { KvmAvailable.assumeKvm(); }

    static byte[] frame(byte[] dst, byte[] src, String tag, int seq, int len) {
        byte[] f = new byte[len];
        System.arraycopy(dst, 0, f, 0, 6);
        System.arraycopy(src, 0, f, 6, 6);
        f[12] = (byte) 0x88;
        f[13] = (byte) 0xB5;
        System.arraycopy(tag.getBytes(StandardCharsets.US_ASCII), 0, f, 14, 4);
        f[18] = (byte) seq;
        for (int k = 19; k < len; k++) {
            f[k] = (byte) (seq * 31 + k * 7 + (k >> 8));
        }
        return f;
    }

    /** The host's side of the guest's script; what it saw goes to {@code notes} ("ok ..." or "FAIL ..."). */
    static void host(FileDescriptor peer, List<String> notes) {
        try {
            expect(peer, notes, "HELO", 0, 60);
            for (int s = 0; s < 12; s++) {
                send(peer, frame(MAC, HOST_MAC, "BRST", s, 60 + 100 * s));
            }
            notes.add("ok burst sent");
            expect(peer, notes, "BIG!", 200, 1514);
            send(peer, frame(MAC, HOST_MAC, "BIG!", 201, 1514));
            expect(peer, notes, "BYE!", 255, 64);
        } catch (RuntimeException | AssertionError e) {
            notes.add("FAIL " + e);
        }
    }

    static void expect(FileDescriptor peer, List<String> notes, String tag, int seq, int len) {
        byte[] hdr = read(peer, 4);
        int n = ByteBuffer.wrap(hdr).getInt();
        byte[] got = read(peer, n);
        byte[] want = frame(HOST_MAC, MAC, tag, seq, len);
        notes.add((Arrays.equals(want, got) ? "ok " : "FAIL ") + tag + " frame of " + n + " bytes");
    }

    static void send(FileDescriptor peer, byte[] frame) {
        ByteBuffer b = ByteBuffer.allocate(4 + frame.length).putInt(frame.length).put(frame).flip();
        long end = System.currentTimeMillis() + TIMEOUT_MS;
        while (b.hasRemaining()) {
            if (Sockets.write(peer, b) == 0) {
                if (System.currentTimeMillis() > end) {
                    throw new AssertionError("the device took no more bytes for " + TIMEOUT_MS + " ms");
                }
                sleep();
            }
        }
    }

    static byte[] read(FileDescriptor peer, int n) {
        ByteBuffer b = ByteBuffer.allocate(n);
        long end = System.currentTimeMillis() + TIMEOUT_MS;
        while (b.hasRemaining()) {
            int r = Sockets.read(peer, b);
            if (r < 0) {
                throw new AssertionError("the device closed the socket after " + b.position() + " of " + n + " bytes");
            }
            if (r == 0) {
                if (System.currentTimeMillis() > end) {
                    throw new AssertionError("no frame from the guest within " + TIMEOUT_MS + " ms");
                }
                sleep();
            }
        }
        return b.array();
    }

    private static void sleep() {
        try {
            Thread.sleep(1);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted");
        }
    }

    @Test
    void framesGoBothWaysThroughAUnixstreamNic() throws Exception {
        GuestRun.warmUp();
        long fdsBefore = OpenFds.count();
        FileDescriptor[] pair = Sockets.socketPair(Sockets.SOCK_STREAM, false);
        long macNumber = 0;
        for (byte b : MAC) {
            macNumber = macNumber << 8 | (b & 0xFF);
        }
        String cmdline = "jkrun.test.timeout_ms=20000 jkrun.net.mac=0x" + Long.toHexString(macNumber);
        VmConfig config = VmBuilder.create()
                .machine(m -> m.memoryMib(64))
                .kernel(k -> k.kernelPath(TestGuests.path("net")).replaceCmdline(cmdline))
                .console(c -> c.disableImplicit())
                .net(n -> n.unixstreamFd(pair[0].raw()).mac(MAC).features(0))
                .build()
                .withTestExitPort(true); // the VM duplicates pair[0] when it is made; this test closes its own after
        List<String> notes = new CopyOnWriteArrayList<>();
        Thread hostThread = new Thread(() -> host(pair[1], notes), "net-test-host");
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        PrintStream err = System.err;
        System.setErr(new PrintStream(new TsiGuestTest.Tee(err, log), true)); // slf4j-simple writes to System.err
        GuestRun r;
        try {
            hostThread.start();
            r = GuestRun.run(config, Duration.ofSeconds(120));
            hostThread.join(10_000);
        } finally {
            System.setErr(err);
            pair[0].close();
            pair[1].close();
        }
        String out = r.output();
        String vmmLog = log.toString(StandardCharsets.UTF_8);
        System.out.println(out);
        List<Executable> checks = new ArrayList<>();
        checks.add(() -> assertEquals(OptionalInt.of(0), r.reason().exitStatus(), out + r.reason()));
        for (String c : CHECKS) {
            checks.add(() -> assertTrue(r.lines().contains("CHECK " + c + " ok"), "CHECK " + c + ": " + out));
        }
        for (int s = 0; s < 12; s++) {
            String c = "CHECK exhaust: frame " + (char) ('a' + s) + " ok";
            checks.add(() -> assertTrue(r.lines().contains(c), c + ": " + out));
        }
        checks.add(() -> assertEquals(List.of(), r.lines().stream().filter(l -> l.contains("FAIL")).toList()));
        checks.add(() -> assertEquals(List.of("ok HELO frame of 60 bytes", "ok burst sent", "ok BIG! frame of 1514 bytes",
                "ok BYE! frame of 64 bytes"), notes, "the host's side"));
        checks.add(() -> assertEquals(List.of(), vmmLog.lines().filter(l -> l.contains("ERROR")).toList(), "VMM errors"));
        checks.add(() -> assertTrue(vmmLog.contains("a chain of 8 bytes is not a frame"), "the malformed chain is logged"));
        checks.add(() -> assertEquals(fdsBefore, OpenFds.count(), "host descriptors after the VM: " + OpenFds.list()));
        assertAll(checks);
    }
}
