package dev.jkrun.devices.fs;

/**
 * Where READDIR/READDIRPLUS entries go. The backend asks {@link #fits} before doing any work for an entry
 * (READDIRPLUS: before the lookup that the entry's {@link Entry} counts), then {@link #add}s it.
 * {@code nextOffset} is the cookie the guest passes back to continue after this entry.
 */
public interface DirSink {
    /** Whether an entry with a name of {@code nameLength} bytes still fits into the reply. */
    boolean fits(int nameLength);

    /** Whether the guest asked for READDIRPLUS (entries must then carry an {@link Entry}). */
    boolean plus();

    /**
     * Adds one entry; {@code entry} is required with {@link #plus()} (it may have nodeId 0, which counts no lookup
     * and makes the guest look the name up itself: "." and "..", or entries the backend does not look up). Returns
     * false when it did not fit (then nothing was added).
     */
    boolean add(long ino, long nextOffset, int type, byte[] name, Entry entry);
}
