package dev.jkrun.devices.block;

/** How hard a guest FLUSH pushes data to stable storage (libkrun's {@code KRUN_SYNC_*}). */
public enum SyncMode {
    /** Flush does nothing: fastest, loses data on a host crash. */
    NONE,
    /** Flush syncs at most once every {@link #RELAXED_INTERVAL_NANOS}; in between it is a no-op. */
    RELAXED,
    /** Every flush is an fdatasync ({@code FileChannel.force(false)}). */
    FULL;

    /** The least time between two real syncs in RELAXED mode. */
    public static final long RELAXED_INTERVAL_NANOS = 5_000_000_000L;
}
