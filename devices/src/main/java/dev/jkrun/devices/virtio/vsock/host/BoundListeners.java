package dev.jkrun.devices.virtio.vsock.host;

import dev.jkrun.devices.virtio.vsock.VsockConfig;
import dev.jkrun.devices.virtio.vsock.VsockPort;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * The listening bridges' sockets, bound once for the device's whole life rather than per driver activation: a path
 * that cannot be bound fails the VM's creation, naming the field, instead of a device that needs a reset later; host
 * clients may connect before the guest driver starts (they wait in the backlog); a driver reset keeps the sockets.
 * {@link #sockets()} hands each activation's muxer these listeners, and closing them there does not unbind them.
 */
public final class BoundListeners implements AutoCloseable {
    private final HostSockets delegate;
    private final Map<Path, HostListener> bound = new HashMap<>();

    /** Binds every listening bridge of {@code config}; on failure nothing stays bound. */
    public BoundListeners(VsockConfig config, HostSockets delegate, int backlog) {
        this.delegate = delegate;
        for (int i = 0; i < config.ports().size(); i++) {
            VsockPort p = config.ports().get(i);
            if (!p.listen()) {
                continue;
            }
            try {
                bound.put(p.path(), delegate.listen(p.path(), backlog));
            } catch (IOException e) {
                close();
                throw new IllegalArgumentException("vsock.ports[" + i + "].path: cannot listen on " + p.path() + ": "
                        + e.getMessage(), e);
            }
        }
    }

    /** Connects through the delegate; listens by handing out the bound socket of that path. */
    public HostSockets sockets() {
        return new HostSockets() {
            @Override
            public Connecting connect(Path path) throws IOException { return delegate.connect(path); }

            @Override
            public HostListener listen(Path path, int backlog) throws IOException {
                HostListener l = bound.get(path);
                if (l == null) {
                    throw new IOException("not a listening bridge: " + path);
                }
                return new HostListener() {
                    @Override
                    public int fd() { return l.fd(); }

                    @Override
                    public HostStream accept() throws IOException { return l.accept(); }

                    @Override
                    public void close() {
                        // the device owns the socket: an activation ending leaves it bound
                    }
                };
            }
        };
    }

    /** Unbinds every socket and removes its file. Idempotent. */
    @Override
    public synchronized void close() {
        bound.values().forEach(HostListener::close);
        bound.clear();
    }
}
