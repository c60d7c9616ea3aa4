package dev.jkrun.devices.virtio.console;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Path;
import java.util.List;

/** Ready-made console devices. */
public final class Consoles {
    private Consoles() {}

    /** krun_set_console_output: one console port, empty input, output appended to {@code path}. */
    public static VirtioConsole toFile(Path path) throws IOException {
        return new VirtioConsole(List.of(ConsolePort.console(PortInput.empty(), PortOutput.toFile(path))), 0, 0);
    }

    /**
     * One console port over streams (tests, embedding). {@code in} is closed with the device; {@code out} is
     * flushed but stays open.
     */
    public static VirtioConsole streams(InputStream in, OutputStream out) {
        return new VirtioConsole(List.of(ConsolePort.console(PortInput.of(in), PortOutput.of(out))), 0, 0);
    }
}
