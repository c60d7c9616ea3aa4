package dev.jkrun.devices.virtio.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.Sockets;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The parsers of virtio-net's untrusted input. (1) The guest's checksum offsets (NEEDS_CSUM csum_start/csum_offset)
 * on frames of any length: completion never throws, refuses exactly the offsets outside the frame, and otherwise
 * leaves a frame whose ones'-complement sum from csum_start is 0xFFFF and whose other bytes are unchanged. (2) A
 * unixstream peer's byte stream (lengths of any value, frames cut anywhere, the stream ending anywhere): the backend
 * yields exactly the frames a reference reading of the stream finds, drops exactly the empty and over-long ones, and
 * ends with EOF. Replayed from the committed inputs by every test run; fuzzed with {@code fuzz/run NetFramingFuzzTest}.
 */
class NetFramingFuzzTest {

    @FuzzTest(maxDuration = "1h")
    void checksumOffsetsFromTheGuest(FuzzedDataProvider data) {
        int len = data.consumeInt(0, 2000);
        int start = data.consumeBoolean() ? data.consumeInt(0, 0xFFFF) : data.consumeInt(Math.max(0, len - 4), len + 2);
        int offset = data.consumeBoolean() ? data.consumeInt(0, 0xFFFF) : data.consumeInt(0, 20);
        byte[] b = new byte[len + 8];
        byte[] body = data.consumeBytes(len);
        System.arraycopy(body, 0, b, 4, body.length);
        byte[] before = b.clone();
        boolean inside = start < len && (long) start + offset + 2 <= len;
        assertEquals(inside, NetHeader.completeChecksum(b, 4, len, start, offset));
        if (!inside) {
            assertArrayEquals(before, b, "a refused frame is left alone");
            return;
        }
        if (offset % 2 == 0) { // a checksum field is 16-bit aligned within what it covers in every real header
            // the receiver's view: the pseudo-header sum (what the field held) plus the segment now sums to all ones
            int field = 4 + start + offset;
            long sum = ((before[field] & 0xFF) << 8) | (before[field + 1] & 0xFF);
            for (int i = start; i < len; i += 2) {
                sum += ((b[4 + i] & 0xFF) << 8) | (i + 1 < len ? b[4 + i + 1] & 0xFF : 0);
            }
            while ((sum >>> 16) != 0) {
                sum = (sum & 0xFFFF) + (sum >>> 16);
            }
            assertEquals(0xFFFF, sum, "start " + start + " offset " + offset + " len " + len);
        }
        for (int i = 0; i < b.length; i++) {
            if (i != 4 + start + offset && i != 4 + start + offset + 1) {
                assertEquals(before[i], b[i], "byte " + i);
            }
        }
    }

    @FuzzTest(maxDuration = "1h")
    void aStreamPeersBytes(FuzzedDataProvider data) throws IOException {
        // the stream: records of (length, bytes), the length sometimes a lie, cut at the end anywhere
        ByteBuffer wire = ByteBuffer.allocate(1 << 20);
        int records = data.consumeInt(0, 12);
        for (int r = 0; r < records && data.remainingBytes() > 0; r++) {
            int kind = data.consumeInt(0, 3);
            int len = switch (kind) {
                case 0 -> 0;
                case 1 -> NetBackend.MAX_FRAME + data.consumeInt(1, 3);
                case 2 -> data.consumeInt();
                default -> data.consumeInt(1, 3000);
            };
            if (wire.remaining() < 4) {
                break;
            }
            wire.putInt(len);
            long body = Integer.toUnsignedLong(len);
            int n = (int) Math.min(Math.min(body, wire.remaining()), kind == 2 ? data.consumeInt(0, 5000) : body);
            byte[] fill = new byte[n];
            Arrays.fill(fill, (byte) r);
            wire.put(fill);
        }
        wire.flip();
        byte[] stream = Arrays.copyOf(wire.array(), wire.limit());
        List<byte[]> expected = new ArrayList<>();
        int expectedDrops = reference(stream, expected);

        FileDescriptor[] pair = Sockets.socketPair(Sockets.SOCK_STREAM, false);
        try (StreamBackend b = new StreamBackend(pair[0], "fuzz"); FileDescriptor peer = pair[1]) {
            ByteBuffer out = ByteBuffer.wrap(stream);
            List<byte[]> got = new ArrayList<>();
            int drops = 0;
            ByteBuffer dst = ByteBuffer.allocate(NetBackend.MAX_FRAME);
            boolean ended = false;
            while (!ended) {
                if (out.hasRemaining()) {
                    Sockets.write(peer, out);
                    if (!out.hasRemaining()) {
                        Sockets.shutdown(peer, Sockets.SHUT_WR);
                    }
                } else if (stream.length == 0) {
                    Sockets.shutdown(peer, Sockets.SHUT_WR);
                }
                try {
                    dst.clear();
                    int n = b.read(dst);
                    if (n == NetBackend.DROPPED) {
                        drops++;
                    } else if (n > 0) {
                        got.add(Arrays.copyOf(dst.array(), n));
                    }
                } catch (EOFException e) {
                    ended = true;
                }
            }
            assertEquals(expected.size(), got.size(), "frames");
            for (int i = 0; i < got.size(); i++) {
                assertArrayEquals(expected.get(i), got.get(i), "frame " + i);
            }
            assertEquals(expectedDrops, drops, "drops");
        } finally {
            pair[0].close();
        }
    }

    /** Reads the stream as the spec says: whole frames of 1..MAX_FRAME bytes; returns the refused lengths' count. */
    static int reference(byte[] s, List<byte[]> frames) {
        ByteBuffer b = ByteBuffer.wrap(s);
        int drops = 0;
        while (b.remaining() >= 4) {
            long len = Integer.toUnsignedLong(b.getInt());
            if (len == 0 || len > NetBackend.MAX_FRAME) {
                drops++;
                b.position((int) Math.min(b.limit(), b.position() + len));
                continue;
            }
            if (b.remaining() < len) {
                break; // cut short by the end of the stream: never delivered
            }
            byte[] f = new byte[(int) len];
            b.get(f);
            frames.add(f);
        }
        assertTrue(drops >= 0);
        return drops;
    }
}
