package dev.jkrun.devices.virtio.vsock;

/**
 * A tx chain that does not hold a well-formed packet. {@link #header()} is the header when one could be read (the
 * packet may then be answered with RST), else null (the chain is dropped).
 */
public final class MalformedPacketException extends Exception {
    public enum Reason { SHORT_HEADER, PAYLOAD_TOO_LARGE, PAYLOAD_BEYOND_CHAIN }

    private final Reason reason;
    private final VsockHeader header;

    MalformedPacketException(Reason reason, VsockHeader header, String detail) {
        super(reason + ": " + detail, null, false, false);
        this.reason = reason;
        this.header = header;
    }

    public Reason reason() { return reason; }

    public VsockHeader header() { return header; }
}
