package dev.jkrun.memory;

/** An access the guest memory cannot satisfy. Devices catch it and answer the guest with an error status. */
public final class GuestMemoryException extends RuntimeException {
    public enum Reason {
        /** The range is not inside one RAM region. */
        OUT_OF_BOUNDS,
        /** Address + length overflows 64 bits. */
        OVERFLOW,
        /** The length is negative or too large for the requested view. */
        BAD_LENGTH
    }

    private final Reason reason;

    public GuestMemoryException(Reason reason, GuestAddress address, long length) {
        super(reason + ": " + address + " + " + length);
        this.reason = reason;
    }

    public Reason reason() { return reason; }
}
