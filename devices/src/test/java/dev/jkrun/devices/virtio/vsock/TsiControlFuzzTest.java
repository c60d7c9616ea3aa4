package dev.jkrun.devices.virtio.vsock;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jkrun.devices.virtio.vsock.host.UnixHostSockets;
import dev.jkrun.devices.virtio.vsock.tsi.OutboundPolicy;
import dev.jkrun.devices.virtio.vsock.tsi.PortMapping;
import dev.jkrun.devices.virtio.vsock.tsi.TsiConfig;
import dev.jkrun.devices.virtio.vsock.tsi.TsiMessages;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.SockAddr;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * A hostile guest's TSI control messages in sequences: each step is a DGRAM to a control port (or a data port) with
 * a payload that is either a well-formed struct with fuzzed fields (families, types, addr_len, addresses, flags,
 * proxy ports drawn from a few live ones) or fuzzed bytes of fuzzed length; a stream REQUEST to port 620; a pump of
 * the reactor; or the guest taking rx packets into buffers of fuzzed size. Real host sockets, on loopback only: the
 * outbound policy denies every destination and published listeners bind 127.0.0.1. Oracle: nothing throws; every
 * packet for the guest is from CID 2 to CID 3 and fits its buffer; control replies are a whole i32 or a whole
 * getname reply; proxies and host sockets stay within their caps; closing the muxer closes every host socket and
 * watch. Replayed from the committed inputs by every test run; fuzzed with {@code fuzz/run TsiControlFuzzTest}.
 */
class TsiControlFuzzTest {
    static final int MAX_PROXIES = 4, MAX_FDS = 3, CTL = 5000;
    static final int[] PORTS = {1, 2, 3, 0x7fffffff, -1};
    static final int[] FAMILIES = {SockAddr.AF_INET, SockAddr.AF_INET6, SockAddr.AF_UNIX, 0, 46, 0xffff};
    static final int[] ADDR_LENS = {16, 28, 110, 0, 1, 2, 8, 24, 127, 128, 129, -1, Integer.MIN_VALUE};

    @FuzzTest(maxDuration = "1h")
    void hostileControlMessagesNeverBreakTsi(FuzzedDataProvider data) {
        int fdsBefore = FileDescriptor.openCount();
        TestReactor reactor = new TestReactor(false);
        TsiConfig tsi = new TsiConfig(TsiConfig.HIJACK_INET | TsiConfig.HIJACK_UNIX,
                List.of(new PortMapping(1, 8080)), OutboundPolicy.DENY_ALL,
                java.util.Optional.of(InetAddress.getLoopbackAddress()), true, MAX_PROXIES, MAX_FDS);
        VsockMuxer mux = new VsockMuxer(VsockConfig.of(List.of()).withTsi(tsi).withRxBacklog(4),
                UnixHostSockets.INSTANCE, reactor);
        mux.start();
        byte[] rxBuf = new byte[VsockHeader.MAX_PAYLOAD];
        try {
            int steps = data.consumeInt(1, 32);
            for (int step = 0; step < steps && data.remainingBytes() > 0; step++) {
                switch (data.consumeInt(0, 5)) {
                    case 0, 1, 2 -> control(data, mux);
                    case 3 -> mux.send(VsockPacket.of(new VsockHeader(VsockHeader.GUEST_CID, VsockHeader.HOST_CID,
                            data.pickValue(PORTS), TsiMessages.DEFAULT_PORT, 0, VsockHeader.TYPE_STREAM,
                            data.consumeInt(0, 8), 0, 65536, 0)));
                    case 4 -> reactor.pump();
                    default -> rx(data, mux, rxBuf);
                }
                assertTrue(mux.tsi().proxyCount() <= MAX_PROXIES, "proxies " + mux.tsi().proxyCount());
                assertTrue(mux.tsi().hostFdCount() <= MAX_FDS, "host fds " + mux.tsi().hostFdCount());
                assertEquals(0, mux.tsi().internalErrors(), "a control message failed unexpectedly");
            }
            rx(data, mux, rxBuf);
        } catch (Throwable t) {
            throw new AssertionError("TSI threw", t);
        } finally {
            mux.close();
        }
        assertEquals(0, reactor.watchCount(), "watches left");
        assertEquals(fdsBefore, FileDescriptor.openCount(), "host sockets left open");
    }

    private static void control(FuzzedDataProvider data, VsockMuxer mux) {
        int dst = data.consumeInt(0, 7) == 0 ? data.consumeInt() : data.consumeInt(TsiMessages.PROXY_CREATE,
                TsiMessages.PROXY_RELEASE);
        int src = data.consumeInt(0, 3) == 0 ? data.pickValue(PORTS) : CTL;
        byte[] payload;
        if (data.consumeInt(0, 3) == 0) {
            payload = data.consumeBytes(data.consumeInt(0, 300));
        } else {
            ByteBuffer b = ByteBuffer.allocate(16 + TsiMessages.ADDR_LEN).order(ByteOrder.LITTLE_ENDIAN);
            b.putInt(data.pickValue(PORTS));
            switch (dst) {
                case TsiMessages.PROXY_CREATE -> b.putShort((short) data.pickValue(FAMILIES))
                        .putShort((short) data.consumeInt(0, 3));
                case TsiMessages.CONNECT, TsiMessages.SENDTO_ADDR -> addr(data, b.putInt(data.pickValue(ADDR_LENS)));
                case TsiMessages.LISTEN -> addr(data, b.putInt(data.consumeInt()).putInt(data.consumeInt())
                        .putInt(data.pickValue(ADDR_LENS)));
                default -> b.putInt(data.consumeInt()).putInt(data.consumeInt());
            }
            payload = java.util.Arrays.copyOf(b.array(), data.consumeBoolean() ? b.position()
                    : data.consumeInt(0, b.capacity()));
        }
        int type = data.consumeInt(0, 15) == 0 ? data.consumeInt(0, 0xffff) : VsockHeader.TYPE_DGRAM;
        int op = data.consumeInt(0, 15) == 0 ? data.consumeInt(0, 0xffff) : VsockHeader.OP_RW;
        mux.send(new VsockPacket(new VsockHeader(VsockHeader.GUEST_CID, VsockHeader.HOST_CID, src, dst,
                payload.length, type, op, 0, 0, 0), payload));
    }

    /** A sockaddr of a fuzzed family: loopback and wildcard addresses, fuzzed ports, or fuzzed bytes. */
    private static void addr(FuzzedDataProvider data, ByteBuffer b) {
        int family = data.pickValue(FAMILIES);
        b.order(ByteOrder.nativeOrder()).putShort((short) family).order(ByteOrder.BIG_ENDIAN)
                .putShort((short) data.pickValue(new int[] {0, 8080, 1, data.consumeInt(0, 0xffff)}));
        if (family == SockAddr.AF_INET) {
            b.put(data.pickValue(new byte[][] {{127, 0, 0, 1}, {0, 0, 0, 0}, {(byte) 192, 0, 2, 1}}));
        } else if (family == SockAddr.AF_INET6) {
            b.putInt(0).put(data.consumeBoolean() ? new byte[16] : new byte[] {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    0, 0, 1});
        } else {
            b.put(data.consumeBytes(data.consumeInt(0, 40)));
        }
        b.order(ByteOrder.LITTLE_ENDIAN);
    }

    private static void rx(FuzzedDataProvider data, VsockMuxer mux, byte[] buf) {
        int room = data.consumeInt(0, 3) == 0 ? data.consumeInt(0, 200) : 4096;
        for (int i = 0; i < 64 && mux.hasRx(); i++) {
            VsockHeader h = mux.nextRx(buf, room);
            if (h == null) {
                return;
            }
            assertEquals(VsockHeader.HOST_CID, h.srcCid());
            assertEquals(VsockHeader.GUEST_CID, h.dstCid());
            assertTrue(h.lenUnsigned() <= room, "len " + h.lenUnsigned() + " in a buffer of " + room);
            if (h.type() == VsockHeader.TYPE_DGRAM && TsiMessages.isControlPort(h.srcPort())) {
                int want = h.srcPort() == TsiMessages.GETNAME ? TsiMessages.GETNAME_REPLY_SIZE : 4;
                assertEquals(Math.min(want, room), h.len(), "reply size from " + h.srcPort());
            }
        }
    }
}
