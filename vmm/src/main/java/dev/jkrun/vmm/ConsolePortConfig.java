package dev.jkrun.vmm;

import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * A named virtio-console port besides the implicit console (msb_krun's {@code port}/{@code port_tty}, libkrun's
 * krun_add_console_port_inout/_tty). The guest finds it by name in /sys/class/virtio-ports/vportNpM/name; a port on
 * the implicit console device must have a name, one of a {@link VirtioConsolePortsConfig} device may have none ("").
 */
public sealed interface ConsolePortConfig {
    /** Bytes a port name may have: the guest driver takes a name from one control message. */
    int MAX_NAME_BYTES = 255;

    String name();

    /** Host descriptors the caller keeps owning; {@code tty} puts {@code inputFd} in raw mode while the VM runs. */
    record Fds(String name, int inputFd, int outputFd, boolean tty) implements ConsolePortConfig {
        public Fds {
            checkName(name);
            if (inputFd < 0 && outputFd < 0) {
                throw new ConfigurationException("console.port", "port '" + name + "' needs an input or an output descriptor");
            }
        }
    }

    /** Java streams the caller keeps owning; either may be null for a one-way port. */
    record Streams(String name, InputStream input, OutputStream output) implements ConsolePortConfig {
        public Streams { checkName(name); }
    }

    /** Whether the port has no name (only a port of a {@link VirtioConsolePortsConfig} device may be unnamed). */
    default boolean unnamed() { return name().isEmpty(); }

    private static void checkName(String name) {
        Objects.requireNonNull(name, "name");
        int n = name.getBytes(StandardCharsets.UTF_8).length;
        if (n > MAX_NAME_BYTES || name.indexOf('\0') >= 0 || name.indexOf('/') >= 0) {
            throw new ConfigurationException("console.port", "name must be at most " + MAX_NAME_BYTES + " bytes without NUL or '/', got '" + name + "'");
        }
    }
}
