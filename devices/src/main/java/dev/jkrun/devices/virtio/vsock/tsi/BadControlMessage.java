package dev.jkrun.devices.virtio.vsock.tsi;

/** A control message that cannot be served as sent: the errno its reply carries (negated on the wire). */
public final class BadControlMessage extends Exception {
    private final int errno;

    BadControlMessage(int errno, String detail) {
        super(detail, null, false, false);
        this.errno = errno;
    }

    public int errno() { return errno; }
}
