package dev.jkrun.devices.block;

import java.io.IOException;
import java.nio.channels.FileChannel;

/** Applies a {@link SyncMode} to one file: FULL always fdatasyncs, RELAXED at most every few seconds. */
final class Syncer {
    private long lastSync = System.nanoTime();

    synchronized void flush(FileChannel ch, SyncMode mode) throws IOException {
        switch (mode) {
            case NONE -> { }
            case RELAXED -> {
                long now = System.nanoTime();
                if (now - lastSync >= SyncMode.RELAXED_INTERVAL_NANOS) {
                    ch.force(false);
                    lastSync = now;
                }
            }
            case FULL -> {
                ch.force(false); // fdatasync
                lastSync = System.nanoTime();
            }
        }
    }
}
