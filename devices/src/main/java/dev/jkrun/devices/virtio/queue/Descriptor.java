package dev.jkrun.devices.virtio.queue;

import dev.jkrun.memory.GuestAddress;

/**
 * One buffer of a validated chain: {@code [addr, addr+len)} lies inside guest RAM. {@code len} is an unsigned
 * 32-bit value held in an int; use {@link #length()} for arithmetic.
 */
public record Descriptor(GuestAddress addr, int len, boolean writable) {
    /** The length as an unsigned value. */
    public long length() { return Integer.toUnsignedLong(len); }
}
