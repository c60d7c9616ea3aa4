package dev.jkrun.devices.virtio.vsock;

import dev.jkrun.devices.virtio.queue.DescriptorChain;
import dev.jkrun.devices.virtio.queue.InvalidChainException;
import dev.jkrun.devices.virtio.queue.Reader;
import dev.jkrun.devices.virtio.queue.Writer;

/**
 * One packet: header and payload ({@code header.len()} bytes). The codec between packets and descriptor chains:
 * the header and payload may share a descriptor or spread over several (5.10.6.1 leaves the layout to the driver).
 */
public record VsockPacket(VsockHeader header, byte[] payload) {
    private static final byte[] EMPTY = {};

    public VsockPacket {
        if (payload.length != header.len()) {
            throw new IllegalArgumentException("payload of " + payload.length + " bytes for len " + header.lenUnsigned());
        }
    }

    public static VsockPacket of(VsockHeader header) {
        if (header.len() != 0) {
            throw new IllegalArgumentException("header without payload has len " + header.lenUnsigned());
        }
        return new VsockPacket(header, EMPTY);
    }

    /**
     * Reads the packet of a tx chain. The header's len is untrusted: it must not exceed {@link
     * VsockHeader#MAX_PAYLOAD} and the chain's readable bytes must hold it (compared as unsigned). Bytes beyond
     * it are ignored.
     */
    public static VsockPacket readTx(DescriptorChain chain) throws MalformedPacketException {
        Reader r = chain.reader();
        long readable = r.available();
        if (readable < VsockHeader.SIZE) {
            throw new MalformedPacketException(MalformedPacketException.Reason.SHORT_HEADER, null,
                    readable + " readable bytes");
        }
        byte[] hb = new byte[VsockHeader.SIZE];
        r.read(hb, 0, hb.length);
        VsockHeader h = VsockHeader.decode(hb);
        long len = h.lenUnsigned();
        if (len > VsockHeader.MAX_PAYLOAD) {
            throw new MalformedPacketException(MalformedPacketException.Reason.PAYLOAD_TOO_LARGE, h, "len " + len);
        }
        if (len > readable - VsockHeader.SIZE) {
            throw new MalformedPacketException(MalformedPacketException.Reason.PAYLOAD_BEYOND_CHAIN, h,
                    "len " + len + " with " + (readable - VsockHeader.SIZE) + " payload bytes in the chain");
        }
        byte[] payload = len == 0 ? EMPTY : new byte[(int) len];
        r.read(payload, 0, payload.length);
        return new VsockPacket(h, payload);
    }

    /**
     * Writes a host-to-guest packet into an rx chain's writable part: header, then {@code header.len()} bytes of
     * {@code payload}. The caller sized the packet to the chain ({@link #rxRoom}). Returns the used length.
     */
    public static int writeRx(Writer w, VsockHeader h, byte[] payload) throws InvalidChainException {
        w.writeExact(h.encode());
        w.writeExact(payload, 0, h.len());
        return w.usedLength();
    }

    /** The payload an rx chain with {@code writable} bytes can take: -1 when not even a header fits. */
    public static int rxRoom(long writable) {
        return writable < VsockHeader.SIZE ? -1 : (int) Math.min(writable - VsockHeader.SIZE, VsockHeader.MAX_PAYLOAD);
    }
}
