package dev.jkrun.devices.virtio.console;

import dev.jkrun.devices.LogText;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Optional;

/**
 * Passes a console's output through while watching it for Linux's panic line ("Kernel panic - not syncing: ..."),
 * so that a guest that resets after a panic (libkrun's {@code panic=-1}) is reported as a crash with the reason,
 * not as a reboot. Lines are scanned in a bounded buffer; output is never held back.
 */
public final class PanicWatch implements PortOutput {
    static final String MARKER = "Kernel panic - not syncing: ";
    private static final int MAX_LINE = 512;
    private final PortOutput out;
    private final byte[] line = new byte[MAX_LINE];
    private int lineLen;
    private volatile String panic;

    public PanicWatch(PortOutput out) { this.out = out; }

    /** The first panic message seen (the text after the marker, control characters escaped), if any. */
    public Optional<String> panic() { return Optional.ofNullable(panic); }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
        scan(b, off, len);
        out.write(b, off, len);
    }

    private void scan(byte[] b, int off, int len) {
        for (int i = off; i < off + len; i++) {
            byte c = b[i];
            if (c == '\n' || c == '\r') {
                check();
                lineLen = 0;
            } else if (lineLen < MAX_LINE) {
                line[lineLen++] = c;
            }
        }
    }

    private void check() {
        if (panic != null || lineLen < MARKER.length()) {
            return;
        }
        String s = new String(line, 0, lineLen, StandardCharsets.UTF_8);
        int at = s.indexOf(MARKER);
        if (at >= 0) {
            panic = LogText.escape(s.substring(at + MARKER.length()).strip()); // it ends up in logs and on terminals
        }
    }

    @Override
    public int writeSome(byte[] b, int off, int len) throws IOException {
        int n = out.writeSome(b, off, len);
        scan(b, off, n); // only what went out: the rest comes again
        return n;
    }

    @Override
    public int pollFd() { return out.pollFd(); }

    @Override
    public void flush() throws IOException { out.flush(); }

    @Override
    public void close() { out.close(); }
}
