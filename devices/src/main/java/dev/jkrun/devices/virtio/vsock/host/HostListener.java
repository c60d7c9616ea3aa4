package dev.jkrun.devices.virtio.vsock.host;

import java.io.IOException;

/** A non-blocking host listening socket. */
public interface HostListener extends AutoCloseable {
    int fd();

    /** The next pending connection, or null when none is pending. */
    HostStream accept() throws IOException;

    /** Closes the socket and removes its file-system node. */
    @Override
    void close();
}
