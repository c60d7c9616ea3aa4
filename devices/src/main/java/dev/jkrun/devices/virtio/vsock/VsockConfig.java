package dev.jkrun.devices.virtio.vsock;

import dev.jkrun.devices.virtio.vsock.tsi.TsiConfig;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * A virtio-vsock device: its unix-socket bridges and the limits that keep a guest (or host clients) from taking
 * unbounded host memory or descriptors.
 *
 * @param ports the bridges; each port and each path at most once
 * @param maxConnections connections (each holds one host socket) at once; more are answered with RST, or an
 *     accepted host connection is closed at once
 * @param bufAlloc the receive buffer each connection advertises to the guest (buf_alloc, 5.10.6.3): the most guest
 *     data buffered for a host socket that does not keep up; a guest that sends more is reset
 * @param rxBacklog control packets (RST) waiting for guest rx buffers; while it is full the tx queue waits
 * @param listenRetryMillis how long an accepted host connection waits for the guest to listen on its port, with
 *     REQUESTs retried meanwhile
 * @param tsi TSI networking ({@link TsiConfig#disabled()} for none)
 */
public record VsockConfig(List<VsockPort> ports, int maxConnections, int bufAlloc, int rxBacklog,
                          long listenRetryMillis, TsiConfig tsi) {
    public static final int DEFAULT_MAX_CONNECTIONS = 1024;
    public static final int DEFAULT_BUF_ALLOC = 256 * 1024;
    public static final int DEFAULT_RX_BACKLOG = 256;
    public static final long DEFAULT_LISTEN_RETRY_MILLIS = 30_000;

    public VsockConfig {
        ports = List.copyOf(ports);
        Set<Integer> seenPorts = new HashSet<>();
        Set<Path> seenPaths = new HashSet<>();
        for (int i = 0; i < ports.size(); i++) {
            VsockPort p = ports.get(i);
            if (!seenPorts.add(p.port())) {
                throw new IllegalArgumentException("vsock.ports[" + i + "].port: port "
                        + Integer.toUnsignedString(p.port()) + " is bridged twice");
            }
            if (!seenPaths.add(p.path().normalize())) {
                throw new IllegalArgumentException("vsock.ports[" + i + "].path: " + p.path() + " is used twice");
            }
        }
        if (maxConnections < 1 || maxConnections > 65536) {
            throw new IllegalArgumentException("vsock.maxConnections: " + maxConnections + " is not in 1..65536");
        }
        if (bufAlloc < VsockHeader.MAX_PAYLOAD || bufAlloc > 64 << 20) {
            throw new IllegalArgumentException("vsock.bufAlloc: " + bufAlloc + " is not in 64 KiB..64 MiB");
        }
        if (rxBacklog < 1 || rxBacklog > 65536) {
            throw new IllegalArgumentException("vsock.rxBacklog: " + rxBacklog + " is not in 1..65536");
        }
        if (tsi == null) {
            throw new IllegalArgumentException("vsock.tsi: missing (TsiConfig.disabled() for none)");
        }
        if (listenRetryMillis < 0) {
            throw new IllegalArgumentException("vsock.listenRetryMillis: " + listenRetryMillis + " is negative");
        }
    }

    /** The bridges with the default limits. */
    public static VsockConfig of(List<VsockPort> ports) {
        return new VsockConfig(ports, DEFAULT_MAX_CONNECTIONS, DEFAULT_BUF_ALLOC, DEFAULT_RX_BACKLOG,
                DEFAULT_LISTEN_RETRY_MILLIS, TsiConfig.disabled());
    }

    public VsockConfig withMaxConnections(int n) {
        return new VsockConfig(ports, n, bufAlloc, rxBacklog, listenRetryMillis, tsi);
    }

    public VsockConfig withBufAlloc(int n) {
        return new VsockConfig(ports, maxConnections, n, rxBacklog, listenRetryMillis, tsi);
    }

    public VsockConfig withRxBacklog(int n) {
        return new VsockConfig(ports, maxConnections, bufAlloc, n, listenRetryMillis, tsi);
    }

    public VsockConfig withListenRetryMillis(long ms) {
        return new VsockConfig(ports, maxConnections, bufAlloc, rxBacklog, ms, tsi);
    }

    /** TSI on this device (its scope 0: off). */
    public VsockConfig withTsi(TsiConfig t) {
        return new VsockConfig(ports, maxConnections, bufAlloc, rxBacklog, listenRetryMillis, t);
    }

    /**
     * What must hold on the host before the device starts: a listen path must not exist yet (libkrun answers
     * -EEXIST). Called at construction and again when the listeners are bound.
     */
    public void checkListenPaths() {
        for (int i = 0; i < ports.size(); i++) {
            VsockPort p = ports.get(i);
            if (p.listen() && Files.exists(p.path(), LinkOption.NOFOLLOW_LINKS)) {
                throw new IllegalArgumentException("vsock.ports[" + i + "].path: " + p.path()
                        + " already exists (a listening bridge creates its socket)");
            }
        }
    }
}
