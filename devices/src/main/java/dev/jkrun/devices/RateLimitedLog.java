package dev.jkrun.devices;

import org.slf4j.Logger;

/**
 * Log lines a guest can cause at will (a driver writing bad registers, bad requests, dead chains), at most
 * {@link #PER_SECOND} a second per instance; keep one instance per device so that one guest cannot flood the host's
 * log nor hide another device's messages. What is held back is counted, and the count is logged ahead of the next
 * line that gets through.
 */
public final class RateLimitedLog {
    /** Lines let through per second per instance. */
    public static final int PER_SECOND = 10;
    private static final long WINDOW_NS = 1_000_000_000L;

    private final Logger log;
    private final String what;
    private long windowStart = System.nanoTime() - WINDOW_NS;
    private int inWindow;
    private long suppressed;

    /** @param what names the device in the "suppressed" line */
    public RateLimitedLog(Logger log, String what) {
        this.log = log;
        this.what = what;
    }

    public void warn(String format, Object... args) {
        long dropped = admit();
        if (dropped >= 0) {
            log.warn(format, args);
        }
    }

    public void error(String format, Object... args) {
        long dropped = admit();
        if (dropped >= 0) {
            log.error(format, args);
        }
    }

    /** Logs how many lines were held back since the last one that got through, if any (at close). */
    public void flush() {
        long dropped;
        synchronized (this) {
            dropped = suppressed;
            suppressed = 0;
        }
        if (dropped > 0) {
            log.warn("{}: {} more messages suppressed (at most {} a second are logged)", what, dropped, PER_SECOND);
        }
    }

    /** -1 when this line is held back; else how many were held back before it (and says so). */
    private long admit() {
        long dropped = 0;
        synchronized (this) {
            long now = System.nanoTime();
            if (now - windowStart >= WINDOW_NS) {
                windowStart = now;
                inWindow = 0;
                dropped = suppressed;
                suppressed = 0;
            }
            if (inWindow >= PER_SECOND) {
                suppressed++;
                return -1;
            }
            inWindow++;
        }
        if (dropped > 0) {
            log.warn("{}: {} more messages suppressed (at most {} a second are logged)", what, dropped, PER_SECOND);
        }
        return dropped;
    }
}
