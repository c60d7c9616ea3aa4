package dev.jkrun.vmm.vstate;

import dev.jkrun.devices.LogText;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Bytes the guest writes to the debug sink port (0x3F8), split into lines: logged at debug level, kept (bounded)
 * for {@code VirtualMachine.debugOutput()}, and passed to an optional listener. Test guests report through it.
 */
public final class DebugLog {
    private static final Logger LOG = LoggerFactory.getLogger("dev.jkrun.guest.debug");
    private static final int MAX_KEPT = 1 << 20;
    private final StringBuilder kept = new StringBuilder();
    private final ByteArrayOutputStream line = new ByteArrayOutputStream();
    private final Consumer<String> listener;

    public DebugLog(Consumer<String> listener) { this.listener = listener; }

    public synchronized void accept(int b) {
        if (b == '\n') {
            flush();
        } else if (line.size() < 4096) {
            line.write(b);
        }
    }

    public synchronized void flush() {
        if (line.size() == 0) {
            return;
        }
        String s = line.toString(StandardCharsets.UTF_8);
        line.reset();
        if (LOG.isDebugEnabled()) {
            LOG.debug("{}", LogText.escape(s)); // guest bytes: no terminal escapes into the log
        }
        if (kept.length() + s.length() < MAX_KEPT) {
            kept.append(s).append('\n');
        }
        if (listener != null) {
            listener.accept(s);
        }
    }

    public synchronized String text() { return kept.toString(); }
}
