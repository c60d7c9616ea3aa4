package dev.jkrun.devices.fs;

/**
 * A looked-up name ({@code struct fuse_entry_out}): every Entry returned by LOOKUP-like operations counts one
 * lookup on {@code nodeId}, which the guest later releases with FORGET. Timeouts are in nanoseconds.
 */
public record Entry(long nodeId, long generation, Attr attr, long entryTimeoutNanos, long attrTimeoutNanos) {}
