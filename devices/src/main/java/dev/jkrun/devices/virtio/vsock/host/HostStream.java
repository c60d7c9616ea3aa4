package dev.jkrun.devices.virtio.vsock.host;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * A non-blocking host stream socket as a vsock connection uses it. Counts follow non-blocking
 * {@code SocketChannel}: 0 means it would block, -1 (read) end of stream; a real failure is an IOException.
 */
public interface HostStream extends AutoCloseable {
    /** The descriptor an event loop watches. */
    int fd();

    int read(ByteBuffer dst) throws IOException;

    int write(ByteBuffer src) throws IOException;

    /** shutdown(2) of the receive side. */
    void shutdownInput() throws IOException;

    /** shutdown(2) of the send side: the host peer reads end of stream. */
    void shutdownOutput() throws IOException;

    /** For a connect that was in progress and became writable: throws when it failed. */
    void finishConnect() throws IOException;

    @Override
    void close();
}
