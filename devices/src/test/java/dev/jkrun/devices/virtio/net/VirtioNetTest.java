package dev.jkrun.devices.virtio.net;

import dev.jkrun.devices.testing.CountingTrigger;
import dev.jkrun.devices.testing.DriverQueue;
import dev.jkrun.devices.testing.MockDriver;
import dev.jkrun.devices.virtio.MmioTransport;
import dev.jkrun.devices.virtio.VirtioDevice;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.Sockets;
import dev.jkrun.memory.HeapGuestMemory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** virtio-net against a fake guest memory and a mock driver, with real socketpair backends. */
class VirtioNetTest {
    static final long TIMEOUT = 5000;
    static final byte[] MAC = {0x5a, (byte) 0x94, (byte) 0xef, (byte) 0xe4, 0x0c, (byte) 0xee};
    final HeapGuestMemory mem = HeapGuestMemory.of(0, 64 << 20);
    final CountingTrigger irq = new CountingTrigger();
    final List<AutoCloseable> toClose = new ArrayList<>();

    @AfterEach
    void tearDown() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
        assertTrue(CountingTrigger.await(() -> Thread.getAllStackTraces().keySet().stream()
                .noneMatch(t -> t.getName().startsWith("virtio-net-")), TIMEOUT), "net threads left running");
    }

    /** A device on one end of a socketpair of {@code type}; the other end is the test's peer. */
    private record Rig(VirtioNet net, MockDriver driver, FileDescriptor peer, FileDescriptor deviceEnd) {
        DriverQueue rx() { return driver.queue(VirtioNet.RX); }

        DriverQueue tx() { return driver.queue(VirtioNet.TX); }
    }

    private Rig rig(int type, long features, int queueSize) {
        FileDescriptor[] pair = Sockets.socketPair(type, false);
        NetBackend b = type == Sockets.SOCK_STREAM ? new StreamBackend(pair[0], "test") : new DatagramBackend(pair[0], "test");
        VirtioNet net = new VirtioNet("eth0", MAC, features, b);
        MmioTransport t = new MmioTransport(net, mem, irq);
        toClose.add(pair[1]);
        toClose.add(t);
        toClose.add(net);
        MockDriver d = new MockDriver(t, mem, 0x10000, 0x200000, 16 << 20);
        d.negotiate(1L << Queue.VIRTIO_RING_F_EVENT_IDX | 1L << VirtioNet.F_MAC);
        d.setupQueue(VirtioNet.RX, queueSize);
        d.setupQueue(VirtioNet.TX, queueSize);
        d.addStatus(MmioTransport.STATUS_DRIVER_OK);
        return new Rig(net, d, pair[1], pair[0]);
    }

    static byte[] frame(int len, int seed) {
        byte[] f = new byte[len];
        new Random(seed).nextBytes(f);
        System.arraycopy(MAC, 0, f, 0, 6);
        return f;
    }

    static byte[] withHeader(byte[] frame) {
        byte[] b = new byte[NetHeader.SIZE + frame.length];
        System.arraycopy(frame, 0, b, NetHeader.SIZE, frame.length);
        return b;
    }

    /** Reads exactly n bytes from a non-blocking stream socket, waiting up to TIMEOUT. */
    static byte[] readExactly(FileDescriptor fd, int n) {
        ByteBuffer b = ByteBuffer.allocate(n);
        long end = System.currentTimeMillis() + TIMEOUT;
        while (b.hasRemaining()) {
            int r = Sockets.read(fd, b);
            assertTrue(r >= 0, "peer saw end of stream");
            if (r == 0) {
                assertTrue(System.currentTimeMillis() < end, "timed out after " + b.position() + " of " + n + " bytes");
                Thread.onSpinWait();
            }
        }
        return b.array();
    }

    static void writeAll(FileDescriptor fd, byte[] data) {
        ByteBuffer b = ByteBuffer.wrap(data);
        long end = System.currentTimeMillis() + TIMEOUT;
        while (b.hasRemaining()) {
            if (Sockets.write(fd, b) == 0) {
                assertTrue(System.currentTimeMillis() < end, "peer write timed out");
                Thread.onSpinWait();
            }
        }
    }

    static byte[] lengthPrefixed(byte[] frame) {
        return ByteBuffer.allocate(4 + frame.length).order(ByteOrder.BIG_ENDIAN).putInt(frame.length).put(frame).array();
    }

    @Test
    void configSpaceFeaturesAndArgumentRules() {
        Rig r = rig(Sockets.SOCK_STREAM, VirtioNet.COMPAT_FEATURES, 64);
        assertEquals(1, r.driver().read(MmioTransport.DEVICE_ID));
        assertArrayEquals(MAC, r.driver().readConfig(0, 6));
        assertArrayEquals(new byte[4], r.driver().readConfig(6, 4), "status and max_virtqueue_pairs are 0");
        long offered = r.driver().deviceFeatures();
        assertEquals(VirtioNet.COMPAT_FEATURES | 1L << VirtioNet.F_MAC | 1L << Queue.VIRTIO_RING_F_EVENT_IDX
                | 1L << Queue.VIRTIO_RING_F_INDIRECT_DESC | VirtioDevice.VIRTIO_F_VERSION_1, offered);
        assertEquals(0, offered & (1L << 15 | 1L << 16 | 1L << 17), "no MRG_RXBUF, STATUS or CTRL_VQ");
        assertEquals(2, r.driver().transport().queues().size());
        FileDescriptor[] p = Sockets.socketPair(Sockets.SOCK_STREAM, false);
        StreamBackend b = new StreamBackend(p[0], "x");
        toClose.add(p[1]);
        toClose.add(b::close);
        assertThrows(IllegalArgumentException.class, () -> new VirtioNet("e", MAC, 1L << 15, b), "MRG_RXBUF is not an offload");
        assertThrows(IllegalArgumentException.class, () -> new VirtioNet("e", new byte[] {1, 2, 3, 4, 5, 6}, 0, b), "multicast");
        assertThrows(IllegalArgumentException.class, () -> new VirtioNet("e", new byte[5], 0, b));
    }

    @Test
    void streamTxDropsTheHeaderAndPrefixesTheLength() {
        Rig r = rig(Sockets.SOCK_STREAM, 0, 64);
        byte[] f1 = frame(60, 1), f2 = frame(1514, 2);
        r.tx().add(List.of(withHeader(f1)));
        // a frame split over three descriptors, header alone in the first (as Linux sends it)
        r.tx().add(List.of(new byte[NetHeader.SIZE], Arrays.copyOf(f2, 100), Arrays.copyOfRange(f2, 100, f2.length)));
        r.tx().kick();
        assertArrayEquals(lengthPrefixed(f1), readExactly(r.peer(), 4 + f1.length));
        assertArrayEquals(lengthPrefixed(f2), readExactly(r.peer(), 4 + f2.length));
        assertEquals(0, r.tx().awaitUsed(TIMEOUT).len());
        assertEquals(0, r.tx().awaitUsed(TIMEOUT).len());
        assertTrue(CountingTrigger.await(() -> r.net().stats().txFrames() == 2, TIMEOUT));
    }

    @Test
    void streamRxReassemblesFramesFromPartialWrites() throws Exception {
        Rig r = rig(Sockets.SOCK_STREAM, 0, 64);
        int h1 = r.rx().addWritable(NetHeader.SIZE + 1514);
        int h2 = r.rx().addWritable(NetHeader.SIZE + 1514);
        r.rx().kick();
        byte[] f1 = frame(1000, 3), f2 = frame(64, 4);
        byte[] wire = new byte[4 + f1.length + 4 + f2.length];
        System.arraycopy(lengthPrefixed(f1), 0, wire, 0, 4 + f1.length);
        System.arraycopy(lengthPrefixed(f2), 0, wire, 4 + f1.length, 4 + f2.length);
        int from = 0;
        for (int cut : new int[] {2, 3, 700, 1004, 1006, wire.length}) { // inside a length, inside a frame, at the end
            writeAll(r.peer(), Arrays.copyOfRange(wire, from, cut));
            from = cut;
            Thread.sleep(20); // so that the device sees the pieces apart
        }
        DriverQueue.Used u1 = r.rx().awaitUsed(TIMEOUT), u2 = r.rx().awaitUsed(TIMEOUT);
        assertEquals(new DriverQueue.Used(h1, NetHeader.SIZE + f1.length), u1);
        assertEquals(new DriverQueue.Used(h2, NetHeader.SIZE + f2.length), u2);
        byte[] got = r.rx().written(h1, NetHeader.SIZE + f1.length);
        byte[] hdr = new byte[NetHeader.SIZE];
        hdr[10] = 1; // num_buffers
        assertArrayEquals(hdr, Arrays.copyOf(got, NetHeader.SIZE));
        assertArrayEquals(f1, Arrays.copyOfRange(got, NetHeader.SIZE, got.length));
        assertArrayEquals(f2, Arrays.copyOfRange(r.rx().written(h2, NetHeader.SIZE + f2.length), NetHeader.SIZE, NetHeader.SIZE + f2.length));
    }

    @Test
    void rxExhaustionHoldsFramesInTheSocketAndRecovers() throws Exception {
        Rig r = rig(Sockets.SOCK_STREAM, 0, 64);
        List<byte[]> frames = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            frames.add(frame(100 + i, 10 + i));
            writeAll(r.peer(), lengthPrefixed(frames.get(i)));
        }
        Thread.sleep(200);
        assertEquals(0, r.net().stats().rxFrames(), "no guest buffers: nothing delivered");
        assertEquals(0, r.net().stats().rxDropped(), "and nothing lost");
        List<Integer> heads = new ArrayList<>();
        for (int round = 0; round < 2; round++) { // buffers come back in two rounds: the device resumes each time
            for (int i = 0; i < 10; i++) {
                heads.add(r.rx().addWritable(NetHeader.SIZE + 1514));
            }
            r.rx().kick();
            for (int i = 0; i < 10; i++) {
                int k = round * 10 + i;
                DriverQueue.Used u = r.rx().awaitUsed(TIMEOUT);
                assertEquals(heads.get(k), u.id());
                byte[] got = r.rx().written(u.id(), u.len());
                assertArrayEquals(frames.get(k), Arrays.copyOfRange(got, NetHeader.SIZE, got.length), "frame " + k);
            }
        }
        assertEquals(new VirtioNet.Stats(0, 0, 20, 0), r.net().stats());
    }

    @Test
    void badFramesFromTheHostAreDroppedAndCounted() throws Exception {
        Rig r = rig(Sockets.SOCK_STREAM, 0, 64);
        int small = r.rx().addWritable(NetHeader.SIZE + 100);
        r.rx().kick();
        // a length over the largest frame: its bytes are skipped; an empty frame; one too big for the guest buffer
        byte[] huge = new byte[NetBackend.MAX_FRAME + 1];
        writeAll(r.peer(), lengthPrefixed(huge));
        writeAll(r.peer(), new byte[4]);
        writeAll(r.peer(), lengthPrefixed(frame(500, 5)));
        byte[] ok = frame(90, 6);
        writeAll(r.peer(), lengthPrefixed(ok));
        DriverQueue.Used u = r.rx().awaitUsed(TIMEOUT);
        assertEquals(new DriverQueue.Used(small, NetHeader.SIZE + 90), u, "the buffer too small for 500 bytes got the next frame");
        assertArrayEquals(ok, Arrays.copyOfRange(r.rx().written(small, u.len()), NetHeader.SIZE, u.len()));
        assertEquals(3, r.net().stats().rxDropped());
    }

    @Test
    void malformedTxChainsGoBackUnsent() throws Exception {
        Rig r = rig(Sockets.SOCK_STREAM, 0, 64);
        int shortChain = r.tx().add(List.of(new byte[NetHeader.SIZE + 13])); // less than an Ethernet header
        int withWritable = r.tx().add(List.of(withHeader(frame(60, 7))), 16); // a writable part is ignored
        r.tx().kick();
        assertEquals(new DriverQueue.Used(shortChain, 0), r.tx().awaitUsed(TIMEOUT));
        assertEquals(new DriverQueue.Used(withWritable, 0), r.tx().awaitUsed(TIMEOUT));
        assertArrayEquals(lengthPrefixed(frame(60, 7)), readExactly(r.peer(), 64));
        assertEquals(1, r.net().stats().txDropped());
    }

    @Test
    void txBackpressureHoldsOneFrameAndLosesNothing() throws Exception {
        Rig r = rig(Sockets.SOCK_STREAM, 0, 256);
        Sockets.setIntOption(r.deviceEnd(), Sockets.SOL_SOCKET, Sockets.SO_SNDBUF, 4096);
        List<byte[]> frames = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            frames.add(frame(9000, 100 + i));
            r.tx().add(List.of(withHeader(frames.get(i))));
        }
        r.tx().kick();
        Thread.sleep(300);
        int usedSoFar = r.tx().usedIdx();
        assertTrue(usedSoFar < 200, "the device stopped taking frames while the peer does not read: " + usedSoFar);
        for (int i = 0; i < 200; i++) {
            assertArrayEquals(lengthPrefixed(frames.get(i)), readExactly(r.peer(), 4 + 9000), "frame " + i);
        }
        assertTrue(CountingTrigger.await(() -> r.tx().usedIdx() == 200, TIMEOUT));
        assertEquals(new VirtioNet.Stats(200, 0, 0, 0), r.net().stats());
    }

    @Test
    void datagramBackendCarriesOneFramePerDatagram() throws Exception {
        Rig r = rig(Sockets.SOCK_DGRAM, 0, 64);
        byte[] out = frame(1514, 8);
        r.tx().add(List.of(withHeader(out)));
        r.tx().kick();
        ByteBuffer got = ByteBuffer.allocate(70000);
        assertTrue(CountingTrigger.await(() -> Sockets.receiveFrom(r.peer(), got) != null, TIMEOUT));
        assertArrayEquals(out, Arrays.copyOf(got.array(), got.position()));

        int big = r.rx().addWritable(NetHeader.SIZE + NetBackend.MAX_FRAME);
        r.rx().kick();
        writeAll(r.peer(), new byte[NetBackend.MAX_FRAME + 100]); // truncated: dropped
        byte[] in = frame(NetBackend.MAX_FRAME, 9); // the largest frame fits
        writeAll(r.peer(), in);
        DriverQueue.Used u = r.rx().awaitUsed(TIMEOUT);
        assertEquals(new DriverQueue.Used(big, NetHeader.SIZE + in.length), u);
        assertArrayEquals(in, Arrays.copyOfRange(r.rx().written(big, u.len()), NetHeader.SIZE, u.len()));
        assertEquals(1, r.net().stats().rxDropped());
    }

    @Test
    void aPeerThatHangsUpStopsTrafficNotTheDevice() throws Exception {
        Rig r = rig(Sockets.SOCK_STREAM, 0, 64);
        r.rx().addWritable(NetHeader.SIZE + 1514);
        r.rx().kick();
        r.peer().close();
        assertTrue(CountingTrigger.await(() -> {
            r.tx().add(List.of(withHeader(frame(60, 11))));
            r.tx().kick();
            return r.net().stats().txDropped() >= 1;
        }, TIMEOUT), "frames after the hangup are taken and dropped");
        int before = r.tx().usedIdx();
        r.tx().add(List.of(withHeader(frame(60, 12))));
        r.tx().kick();
        assertTrue(CountingTrigger.await(() -> r.tx().usedIdx() > before, TIMEOUT), "the guest's tx ring keeps moving");
        assertTrue(r.net().isActivated());
    }

    @Test
    void checksumLeftToTheDeviceIsCompletedForBackendsWithoutHeader() {
        Rig r = rig(Sockets.SOCK_DGRAM, 1L << VirtioNet.F_CSUM, 64);
        byte[] f = udpFrame(new byte[] {10, 0, 0, 1}, new byte[] {10, 0, 0, 2}, "hello, checksum".getBytes());
        int l4 = 14 + 20;
        // what Linux hands a CSUM device: the pseudo-header sum (not inverted) in the checksum field
        int pseudo = fold(sum(f, 26, 8) + 17 + (f.length - l4));
        f[l4 + 6] = (byte) (pseudo >>> 8);
        f[l4 + 7] = (byte) pseudo;
        byte[] hf = withHeader(f);
        hf[0] = NetHeader.F_NEEDS_CSUM;
        hf[6] = (byte) l4; // csum_start
        hf[8] = 6; // csum_offset: the UDP checksum field
        r.tx().add(List.of(hf));
        r.tx().kick();
        ByteBuffer got = ByteBuffer.allocate(2000);
        assertTrue(CountingTrigger.await(() -> Sockets.receiveFrom(r.peer(), got) != null, TIMEOUT));
        byte[] sent = Arrays.copyOf(got.array(), got.position());
        // a correct UDP checksum: pseudo header + segment sums to 0xFFFF
        int total = fold(sum(sent, 26, 8) + 17 + (sent.length - l4) + sum(sent, l4, sent.length - l4));
        assertEquals(0xFFFF, total);
        assertNotEquals(0, (sent[l4 + 6] | sent[l4 + 7]));
        // offsets outside the frame: the frame is dropped, not sent wrong
        hf[6] = (byte) 200;
        r.tx().add(List.of(hf));
        r.tx().kick();
        assertTrue(CountingTrigger.await(() -> r.net().stats().txDropped() == 1, TIMEOUT));
    }

    static byte[] udpFrame(byte[] src, byte[] dst, byte[] payload) {
        ByteBuffer b = ByteBuffer.allocate(14 + 20 + 8 + payload.length);
        b.put(MAC).put(new byte[] {2, 0, 0, 0, 0, 1}).putShort((short) 0x0800);
        b.put((byte) 0x45).put((byte) 0).putShort((short) (20 + 8 + payload.length)).putInt(0).put((byte) 64).put((byte) 17)
                .putShort((short) 0).put(src).put(dst);
        b.putShort((short) 1234).putShort((short) 5678).putShort((short) (8 + payload.length)).putShort((short) 0).put(payload);
        return b.array();
    }

    static long sum(byte[] b, int off, int len) {
        long s = 0;
        for (int i = 0; i < len; i += 2) {
            s += ((b[off + i] & 0xFF) << 8) | (i + 1 < len ? b[off + i + 1] & 0xFF : 0);
        }
        return s;
    }

    static int fold(long s) {
        while ((s >>> 16) != 0) {
            s = (s & 0xFFFF) + (s >>> 16);
        }
        return (int) s;
    }
}
