package dev.jkrun.devices.block;

import java.io.IOException;
import java.nio.channels.FileChannel;

/** Applies a {@link SyncMode} to one file: FULL always fdatasyncs, RELAXED at most every few seconds. */
final class Syncer {
    private long lastSync = System.nanoTime();

    /** Returns whether it synced. */
    synchronized boolean flush(FileChannel ch, SyncMode mode) throws IOException {
        switch (mode) {
            case NONE -> {
                return false;
            }
            case RELAXED -> {
                long now = System.nanoTime();
                if (now - lastSync < SyncMode.RELAXED_INTERVAL_NANOS) {
                    return false;
                }
                ch.force(false);
                lastSync = now;
                return true;
            }
            case FULL -> {
                ch.force(false); // fdatasync
                lastSync = System.nanoTime();
                return true;
            }
        }
        return false;
    }
}
