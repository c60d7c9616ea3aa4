package dev.jkrun.devices.virtio.vsock.host;

import java.io.IOException;
import java.nio.file.Path;

/** Where vsock connections meet the host: unix sockets for the bridges ({@link UnixHostSockets}), fakes in tests. */
public interface HostSockets {
    /** A stream being connected: {@code connected} false means wait until it is writable, then finishConnect. */
    record Connecting(HostStream stream, boolean connected) {}

    /** Starts a non-blocking connect to the unix socket at {@code path}. */
    Connecting connect(Path path) throws IOException;

    /** Binds and listens on {@code path}, which must not exist. */
    HostListener listen(Path path, int backlog) throws IOException;
}
