package dev.jkrun.devices.virtio.net;

/**
 * The 12-byte {@code struct virtio_net_hdr_v1} in front of every frame on the queues (virtio 1.2 §5.1.6):
 * {@code u8 flags; u8 gso_type; le16 hdr_len; le16 gso_size; le16 csum_start; le16 csum_offset; le16 num_buffers}.
 * Only what the device acts on is decoded here; the checksum completion is what a backend that drops the header
 * (the socket ones) needs so that a frame whose checksum the guest left to the device still arrives correct.
 */
public final class NetHeader {
    /** Bytes of the header with VERSION_1 (with or without MRG_RXBUF). */
    public static final int SIZE = 12;
    /** flags bit 0: csum_start/csum_offset describe a checksum the device must complete (§5.1.6.2). */
    public static final int F_NEEDS_CSUM = 1;
    public static final int GSO_NONE = 0;
    static final int FLAGS = 0, GSO_TYPE = 1, CSUM_START = 6, CSUM_OFFSET = 8, NUM_BUFFERS = 10;

    private NetHeader() {}

    public static int flags(byte[] b, int off) { return b[off + FLAGS] & 0xFF; }

    public static int gsoType(byte[] b, int off) { return b[off + GSO_TYPE] & 0xFF; }

    public static int csumStart(byte[] b, int off) { return le16(b, off + CSUM_START); }

    public static int csumOffset(byte[] b, int off) { return le16(b, off + CSUM_OFFSET); }

    /** A header for a frame from a backend that carries none: no offload, num_buffers 1 (§5.1.6.4). */
    public static void writePlain(byte[] b, int off) {
        java.util.Arrays.fill(b, off, off + SIZE, (byte) 0);
        b[off + NUM_BUFFERS] = 1;
    }

    /**
     * Completes the checksum the driver left to the device (§5.1.6.2, VIRTIO_NET_HDR_F_NEEDS_CSUM): the ones'
     * complement of the 16-bit sum from {@code csumStart} to the end of the frame, whose checksum field already
     * holds the pseudo-header sum, stored at {@code csumStart + csumOffset}. {@code frame}..{@code frame+len} is the
     * Ethernet frame. Returns false, leaving the frame alone, when the offsets do not lie inside it.
     */
    public static boolean completeChecksum(byte[] b, int frame, int len, int csumStart, int csumOffset) {
        long field = (long) csumStart + csumOffset;
        if (csumStart < 0 || csumOffset < 0 || csumStart >= len || field + 2 > len) {
            return false;
        }
        long sum = 0;
        int i = frame + csumStart, end = frame + len;
        for (; i + 1 < end; i += 2) {
            sum += ((b[i] & 0xFF) << 8) | (b[i + 1] & 0xFF);
        }
        if (i < end) {
            sum += (b[i] & 0xFF) << 8;
        }
        while ((sum >>> 16) != 0) {
            sum = (sum & 0xFFFF) + (sum >>> 16);
        }
        int c = (int) (~sum & 0xFFFF);
        int at = frame + (int) field;
        b[at] = (byte) (c >>> 8);
        b[at + 1] = (byte) c;
        return true;
    }

    private static int le16(byte[] b, int at) { return (b[at] & 0xFF) | (b[at + 1] & 0xFF) << 8; }
}
