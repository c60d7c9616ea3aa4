package dev.jkrun.devices.virtio.vsock;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * {@code struct virtio_vsock_hdr} (virtio 1.2 section 5.10.6): 44 bytes, little-endian. Ports, len, flags,
 * buf_alloc and fwd_cnt are unsigned 32-bit values held in ints; type and op are u16 held in ints.
 */
public record VsockHeader(long srcCid, long dstCid, int srcPort, int dstPort, int len, int type, int op, int flags,
                          int bufAlloc, int fwdCnt) {
    public static final int SIZE = 44;
    /** Well-known CIDs (5.10.4): the host is 2; jkrun's guest is always 3, as libkrun's. */
    public static final long HOST_CID = 2, GUEST_CID = 3;
    /** 5.10.6: type 1 is a stream socket; 3, DGRAM, is libkrunfw's extension that TSI's control protocol rides on. */
    public static final int TYPE_STREAM = 1, TYPE_DGRAM = 3;
    public static final int OP_REQUEST = 1, OP_RESPONSE = 2, OP_RST = 3, OP_SHUTDOWN = 4, OP_RW = 5,
            OP_CREDIT_UPDATE = 6, OP_CREDIT_REQUEST = 7;
    /** SHUTDOWN flags: the sender will receive no more (RCV) / send no more (SEND). */
    public static final int SHUTDOWN_RCV = 1, SHUTDOWN_SEND = 2;
    /** The largest payload one packet carries, as Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE. */
    public static final int MAX_PAYLOAD = 64 * 1024;

    public static VsockHeader decode(byte[] b) {
        if (b.length < SIZE) {
            throw new IllegalArgumentException("vsock header of " + b.length + " bytes");
        }
        ByteBuffer h = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        return new VsockHeader(h.getLong(0), h.getLong(8), h.getInt(16), h.getInt(20), h.getInt(24),
                Short.toUnsignedInt(h.getShort(28)), Short.toUnsignedInt(h.getShort(30)), h.getInt(32), h.getInt(36),
                h.getInt(40));
    }

    public byte[] encode() {
        return ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN).putLong(srcCid).putLong(dstCid)
                .putInt(srcPort).putInt(dstPort).putInt(len).putShort((short) type).putShort((short) op)
                .putInt(flags).putInt(bufAlloc).putInt(fwdCnt).array();
    }

    /** A host-to-guest stream packet from host port {@code local} to guest port {@code peer}. */
    static VsockHeader toGuest(int local, int peer, int op, int flags, int len, int bufAlloc, int fwdCnt) {
        return new VsockHeader(HOST_CID, GUEST_CID, local, peer, len, TYPE_STREAM, op, flags, bufAlloc, fwdCnt);
    }

    /** The RST answering this guest packet (addresses swapped). */
    VsockHeader resetReply() { return toGuest(dstPort, srcPort, OP_RST, 0, 0, 0, 0); }

    public long lenUnsigned() { return Integer.toUnsignedLong(len); }

    public static String opName(int op) {
        return switch (op) {
            case OP_REQUEST -> "REQUEST"; case OP_RESPONSE -> "RESPONSE"; case OP_RST -> "RST";
            case OP_SHUTDOWN -> "SHUTDOWN"; case OP_RW -> "RW"; case OP_CREDIT_UPDATE -> "CREDIT_UPDATE";
            case OP_CREDIT_REQUEST -> "CREDIT_REQUEST"; default -> "op " + op;
        };
    }

    @Override
    public String toString() {
        return String.format("%s %d:%s -> %d:%s len %d type %d flags %d buf_alloc %d fwd_cnt %d", opName(op), srcCid,
                Integer.toUnsignedString(srcPort), dstCid, Integer.toUnsignedString(dstPort), lenUnsigned(), type, flags,
                Integer.toUnsignedLong(bufAlloc), Integer.toUnsignedLong(fwdCnt));
    }
}
