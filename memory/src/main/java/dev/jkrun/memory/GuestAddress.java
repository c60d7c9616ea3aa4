package dev.jkrun.memory;

/** A guest physical address: not a host address, not an offset. Arithmetic is checked and never wraps. */
public record GuestAddress(long value) implements Comparable<GuestAddress> {
    public static final GuestAddress ZERO = new GuestAddress(0);

    public static GuestAddress of(long value) { return new GuestAddress(value); }

    /** {@code this + delta} as an unsigned 64-bit address; throws on overflow. */
    public GuestAddress checkedAdd(long delta) {
        if (delta < 0) {
            throw new GuestMemoryException(GuestMemoryException.Reason.OVERFLOW, this, delta);
        }
        long r = value + delta;
        if (Long.compareUnsigned(r, value) < 0) {
            throw new GuestMemoryException(GuestMemoryException.Reason.OVERFLOW, this, delta);
        }
        return new GuestAddress(r);
    }

    /**
     * {@code this - base} modulo 2^64: the unsigned distance when this address is at or above base (decide that
     * with {@link #compareTo}); a negative result does not mean "below" (addresses at or above 2^63).
     */
    public long offsetFrom(GuestAddress base) { return value - base.value; }

    public boolean isAligned(long alignment) { return (value & (alignment - 1)) == 0; }

    @Override
    public int compareTo(GuestAddress o) { return Long.compareUnsigned(value, o.value); }

    @Override
    public String toString() { return String.format("0x%x", value); }
}
