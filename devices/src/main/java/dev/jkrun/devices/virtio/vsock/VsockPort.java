package dev.jkrun.devices.virtio.vsock;

import dev.jkrun.libc.SockAddr;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * A host unix-socket bridge, as libkrun's {@code krun_add_vsock_port2(port, path, listen)}. With {@code listen}
 * false, a guest connecting to host CID 2 on {@code port} is connected to the unix socket at {@code path}; with
 * {@code listen} true, the VMM listens on {@code path} and every host connection there becomes a connection to
 * the guest's vsock listener on {@code port}.
 *
 * @param port an unsigned 32-bit vsock port; -1 (VMADDR_PORT_ANY) is not a port
 */
public record VsockPort(int port, Path path, boolean listen) {
    /** VMADDR_PORT_ANY in {@code <linux/vm_sockets.h>}. */
    public static final int PORT_ANY = -1;

    public VsockPort {
        if (port == PORT_ANY) {
            throw new IllegalArgumentException("vsock port: " + Integer.toUnsignedString(port) + " is VMADDR_PORT_ANY");
        }
        if (path == null) {
            throw new IllegalArgumentException("vsock port " + Integer.toUnsignedString(port) + ": path is missing");
        }
        if (!path.isAbsolute()) {
            throw new IllegalArgumentException("vsock port " + Integer.toUnsignedString(port)
                    + ": path must be absolute: " + path);
        }
        int bytes = path.toString().getBytes(StandardCharsets.UTF_8).length;
        if (bytes > SockAddr.SUN_PATH_SIZE - 1) {
            throw new IllegalArgumentException("vsock port " + Integer.toUnsignedString(port) + ": path is " + bytes
                    + " bytes, a unix socket path holds at most " + (SockAddr.SUN_PATH_SIZE - 1) + ": " + path);
        }
    }

    @Override
    public String toString() { return Integer.toUnsignedString(port) + "=" + path + (listen ? ":listen" : ""); }
}
