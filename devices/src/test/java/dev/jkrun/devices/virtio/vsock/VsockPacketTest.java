package dev.jkrun.devices.virtio.vsock;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.devices.testing.DriverQueue;
import dev.jkrun.devices.virtio.queue.DescriptorChain;
import dev.jkrun.memory.HeapGuestMemory;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The 44-byte header and the tx chain codec; the config records' checks. */
class VsockPacketTest {
    final HeapGuestMemory mem = HeapGuestMemory.of(0, 1 << 20);
    final DriverQueue dq = new DriverQueue(mem, 64, 0, 0x10000, 0xf0000, () -> { });
    final dev.jkrun.devices.virtio.queue.Queue q = dq.deviceQueue(64);

    DescriptorChain chain(List<byte[]> readable) throws Exception {
        dq.add(readable);
        return q.pop(mem).orElseThrow();
    }

    static byte[] cat(byte[] a, byte[] b) {
        byte[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    @Test
    void headersRoundTripLittleEndianWithUnsignedFields() {
        VsockHeader h = new VsockHeader(3, 2, -5, 0x80000000, 7, 1, 5, 2, -1, 0x12345678);
        byte[] b = h.encode();
        assertEquals(44, b.length);
        assertEquals(3, b[0]);
        assertEquals(2, b[8]);
        assertEquals(7, b[24]);
        assertEquals(0x78, b[40] & 0xff);
        assertEquals(h, VsockHeader.decode(b));
        assertEquals(0xFFFFFFFFL, new VsockHeader(3, 2, 0, 0, -1, 1, 5, 0, 0, 0).lenUnsigned());
    }

    @Test
    void thePayloadMayShareTheHeadersDescriptorOrFollowIt() throws Exception {
        byte[] hdr = TestGuest.hdr(VsockHeader.OP_RW, 9, 1234, 5, 0, 0, 0).encode();
        VsockPacket one = VsockPacket.readTx(chain(List.of(cat(hdr, "hello".getBytes()))));
        VsockPacket two = VsockPacket.readTx(chain(List.of(hdr, "he".getBytes(), "llo".getBytes())));
        assertArrayEquals("hello".getBytes(), one.payload());
        assertArrayEquals("hello".getBytes(), two.payload());
        VsockPacket extra = VsockPacket.readTx(chain(List.of(cat(hdr, "hello, and more".getBytes()))));
        assertArrayEquals("hello".getBytes(), extra.payload(), "bytes past len are ignored");
    }

    @Test
    void lengthsAreCheckedUnsignedAgainstTheChain() throws Exception {
        MalformedPacketException e = assertThrows(MalformedPacketException.class,
                () -> VsockPacket.readTx(chain(List.of(new byte[43]))));
        assertEquals(MalformedPacketException.Reason.SHORT_HEADER, e.reason());
        assertNull(e.header());
        for (int len : new int[] {-1, Integer.MIN_VALUE, 65537}) {
            byte[] h = TestGuest.hdr(VsockHeader.OP_RW, 9, 1234, len, 0, 0, 0).encode();
            e = assertThrows(MalformedPacketException.class, () -> VsockPacket.readTx(chain(List.of(h))));
            assertEquals(MalformedPacketException.Reason.PAYLOAD_TOO_LARGE, e.reason());
            assertEquals(len, e.header().len());
        }
        byte[] h = TestGuest.hdr(VsockHeader.OP_RW, 9, 1234, 6, 0, 0, 0).encode();
        e = assertThrows(MalformedPacketException.class, () -> VsockPacket.readTx(chain(List.of(h, new byte[5]))));
        assertEquals(MalformedPacketException.Reason.PAYLOAD_BEYOND_CHAIN, e.reason());
        byte[] max = TestGuest.hdr(VsockHeader.OP_RW, 9, 1234, 65536, 0, 0, 0).encode();
        assertEquals(65536, VsockPacket.readTx(chain(List.of(max, new byte[65536]))).payload().length);
    }

    @Test
    void rxRoomIsWhatAChainTakesAfterTheHeader() {
        assertEquals(-1, VsockPacket.rxRoom(43));
        assertEquals(0, VsockPacket.rxRoom(44));
        assertEquals(4096, VsockPacket.rxRoom(44 + 4096));
        assertEquals(65536, VsockPacket.rxRoom(1L << 32));
    }

    @Test
    void configErrorsNameTheField() {
        Path a = Path.of("/run/a.sock"), b = Path.of("/run/b.sock");
        assertTrue(msg(() -> VsockConfig.of(List.of(new VsockPort(1, a, false), new VsockPort(1, b, true))))
                .startsWith("vsock.ports[1].port"));
        assertTrue(msg(() -> VsockConfig.of(List.of(new VsockPort(1, a, false), new VsockPort(2, a, true))))
                .startsWith("vsock.ports[1].path"));
        assertTrue(msg(() -> new VsockPort(1, Path.of("rel.sock"), false)).contains("must be absolute"));
        assertTrue(msg(() -> new VsockPort(1, Path.of("/" + "x".repeat(120)), false)).contains("at most 107"));
        assertTrue(msg(() -> new VsockPort(-1, a, false)).contains("VMADDR_PORT_ANY"));
        assertTrue(msg(() -> VsockConfig.of(List.of()).withMaxConnections(0)).startsWith("vsock.maxConnections"));
        assertTrue(msg(() -> VsockConfig.of(List.of()).withBufAlloc(1000)).startsWith("vsock.bufAlloc"));
        assertTrue(msg(() -> VsockConfig.of(List.of()).withRxBacklog(0)).startsWith("vsock.rxBacklog"));
        assertTrue(msg(() -> VsockConfig.of(List.of()).withListenRetryMillis(-1)).startsWith("vsock.listenRetryMillis"));
    }

    static String msg(Runnable r) { return assertThrows(IllegalArgumentException.class, r::run).getMessage(); }
}
