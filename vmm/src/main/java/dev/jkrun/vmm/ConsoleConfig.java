package dev.jkrun.vmm;

import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Path;

/** Where the implicit console (hvc0, virtio-console port 0) reads and writes. */
public sealed interface ConsoleConfig {
    /** The host's stdin/stdout; raw mode when stdin is a terminal, restored on every exit path. */
    record Stdio() implements ConsoleConfig {}

    /**
     * The host descriptors the caller gives (each negative for none), laid out as {@link Stdio} lays out 0, 1, 2: hvc0
     * on the terminal among them, a krun-stdin/-stdout/-stderr port for each that is not one. The caller keeps them.
     */
    record Fds(int input, int output, int error) implements ConsoleConfig {}

    /** Output appended to a file; no input (krun_set_console_output). */
    record ToFile(Path path) implements ConsoleConfig {}

    /** Java streams, for embedding and tests. */
    record Streams(InputStream input, OutputStream output) implements ConsoleConfig {}

    /**
     * Java streams for the command's stdin, stdout and stderr, carried separately on the console ports
     * krun-stdin/krun-stdout/krun-stderr (the guest's hvc0 gets no input and its output is discarded).
     */
    record Piped(InputStream stdin, OutputStream stdout, OutputStream stderr) implements ConsoleConfig {}

    /** No console device at all (krun_disable_implicit_console). */
    record None() implements ConsoleConfig {}
}
