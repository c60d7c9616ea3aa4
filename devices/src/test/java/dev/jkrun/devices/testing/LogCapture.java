package dev.jkrun.devices.testing;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Captures what slf4j-simple prints (it writes to whatever {@code System.err} is at the time) while open, still
 * passing it through, so tests can count log lines.
 */
public final class LogCapture implements AutoCloseable {
    private final PrintStream saved = System.err;
    private final ByteArrayOutputStream buf = new ByteArrayOutputStream();

    public LogCapture() {
        PrintStream through = saved;
        System.setErr(new PrintStream(new OutputStream() {
            @Override
            public synchronized void write(int b) {
                buf.write(b);
                through.write(b);
            }

            @Override
            public synchronized void write(byte[] b, int off, int len) {
                buf.write(b, off, len);
                through.write(b, off, len);
            }
        }, true, StandardCharsets.UTF_8));
    }

    public List<String> lines() {
        synchronized (buf) {
            return buf.toString(StandardCharsets.UTF_8).lines().toList();
        }
    }

    /**
     * The most lines one {@link dev.jkrun.devices.RateLimitedLog} lets through during {@code elapsedMs}: the
     * one-second windows it overlaps, each with its quota and one "suppressed" line.
     */
    public static long rateLimitBound(long elapsedMs) {
        return (dev.jkrun.devices.RateLimitedLog.PER_SECOND + 1L) * (elapsedMs / 1000 + 2);
    }

    /** Lines containing {@code text}. */
    public long count(String text) { return lines().stream().filter(l -> l.contains(text)).count(); }

    @Override
    public void close() { System.setErr(saved); }
}
