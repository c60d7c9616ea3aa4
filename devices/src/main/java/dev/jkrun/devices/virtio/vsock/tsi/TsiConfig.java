package dev.jkrun.devices.virtio.vsock.tsi;

import java.net.InetAddress;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * TSI (libkrunfw's Transparent Socket Impersonation) on a vsock device: which guest sockets the host proxies, which
 * guest listeners it publishes, where the guest may reach, and how many host resources it may hold.
 *
 * @param scope {@link #HIJACK_INET} | {@link #HIJACK_UNIX} as libkrun's {@code krun_set_tsi_scope}; 0 disables TSI
 *     (the DGRAM feature is then not offered and the control ports are not served)
 * @param ports published ports; a guest listener is exposed on the host only on these (each guest and each host port
 *     at most once)
 * @param outbound where guest connects and datagrams may go
 * @param listenHost when present, published listeners bind this host address instead of the guest's (e.g. loopback,
 *     so a guest binding 0.0.0.0 is reachable from this host only)
 * @param exposeEphemeral whether a guest listening on port 0 is published on an ephemeral host port (reported by
 *     TSI_GETNAME with peer 0 and {@link TsiProxies#published()}); else it stays inside the guest
 * @param maxProxies proxies at once (each a guest TSI socket the host tracks); more are refused with ENOBUFS
 * @param maxHostFds host sockets TSI holds at once (proxies' and their streams'); more are refused with EMFILE
 * @param publishAll whether a guest listener on a port the map does not name is published on the same host port
 *     (libkrun's {@code krun_set_port_map(NULL)}); the guest's loopback and port 0 stay inside as ever
 */
public record TsiConfig(int scope, List<PortMapping> ports, OutboundPolicy outbound, Optional<InetAddress> listenHost,
                        boolean exposeEphemeral, int maxProxies, int maxHostFds, boolean publishAll) {
    public static final int HIJACK_INET = 1, HIJACK_UNIX = 2;
    public static final int DEFAULT_MAX_PROXIES = 1024, DEFAULT_MAX_HOST_FDS = 1024;

    /** Publishing only what {@code ports} names. */
    public TsiConfig(int scope, List<PortMapping> ports, OutboundPolicy outbound, Optional<InetAddress> listenHost,
                     boolean exposeEphemeral, int maxProxies, int maxHostFds) {
        this(scope, ports, outbound, listenHost, exposeEphemeral, maxProxies, maxHostFds, false);
    }

    public TsiConfig {
        if ((scope & ~(HIJACK_INET | HIJACK_UNIX)) != 0) {
            throw new IllegalArgumentException("tsi.scope: " + scope + " has bits beyond HIJACK_INET | HIJACK_UNIX");
        }
        ports = List.copyOf(ports);
        Set<Integer> guest = new HashSet<>();
        Set<Integer> host = new HashSet<>();
        for (int i = 0; i < ports.size(); i++) {
            PortMapping m = ports.get(i);
            if (!guest.add(m.guestPort())) {
                throw new IllegalArgumentException("tsi.ports[" + i + "].guestPort: guest port " + m.guestPort()
                        + " is mapped twice");
            }
            if (!host.add(m.hostPort())) {
                throw new IllegalArgumentException("tsi.ports[" + i + "].hostPort: host port " + m.hostPort()
                        + " is mapped twice");
            }
        }
        if (outbound == null) {
            throw new IllegalArgumentException("tsi.outbound: missing");
        }
        listenHost = listenHost == null ? Optional.empty() : listenHost;
        if (maxProxies < 1 || maxProxies > 65536) {
            throw new IllegalArgumentException("tsi.maxProxies: " + maxProxies + " is not in 1..65536");
        }
        if (maxHostFds < 1 || maxHostFds > 65536) {
            throw new IllegalArgumentException("tsi.maxHostFds: " + maxHostFds + " is not in 1..65536");
        }
    }

    /** TSI off: libkrun's state with a NIC configured or {@code krun_set_tsi_scope(0)}. */
    public static TsiConfig disabled() { return of(0, List.of()); }

    /** {@code scope} and published {@code ports}, outbound to anywhere (as libkrun), default caps. */
    public static TsiConfig of(int scope, List<PortMapping> ports) {
        return new TsiConfig(scope, ports, OutboundPolicy.ALLOW_ALL, Optional.empty(), false, DEFAULT_MAX_PROXIES,
                DEFAULT_MAX_HOST_FDS);
    }

    public boolean enabled() { return scope != 0; }

    /** The published host port of {@code guestPort} (1..65535), or -1 when it is not published. */
    public int hostPort(int guestPort) {
        for (PortMapping m : ports) {
            if (m.guestPort() == guestPort) {
                return m.hostPort();
            }
        }
        if (!publishAll || guestPort <= 0 || guestPort > 65535) {
            return -1;
        }
        for (PortMapping m : ports) {
            if (m.hostPort() == guestPort) {
                return -1; // that host port belongs to the mapped guest port: no other guest listener may take it
            }
        }
        return guestPort;
    }

    public TsiConfig withOutbound(OutboundPolicy p) {
        return new TsiConfig(scope, ports, p, listenHost, exposeEphemeral, maxProxies, maxHostFds, publishAll);
    }

    public TsiConfig withListenHost(InetAddress a) {
        return new TsiConfig(scope, ports, outbound, Optional.of(a), exposeEphemeral, maxProxies, maxHostFds, publishAll);
    }

    public TsiConfig withExposeEphemeral(boolean b) {
        return new TsiConfig(scope, ports, outbound, listenHost, b, maxProxies, maxHostFds, publishAll);
    }

    public TsiConfig withMaxProxies(int n) {
        return new TsiConfig(scope, ports, outbound, listenHost, exposeEphemeral, n, maxHostFds, publishAll);
    }

    public TsiConfig withMaxHostFds(int n) {
        return new TsiConfig(scope, ports, outbound, listenHost, exposeEphemeral, maxProxies, n, publishAll);
    }

    /**
     * The same with every guest listener published on its own port number unless the map names it (libkrun's
     * {@code krun_set_port_map(NULL)}).
     */
    public TsiConfig withPublishAll(boolean b) {
        return new TsiConfig(scope, ports, outbound, listenHost, exposeEphemeral, maxProxies, maxHostFds, b);
    }

    /** The port map as libkrun keeps it (guest port to host port), for logs. */
    public Map<Integer, Integer> portMap() {
        Map<Integer, Integer> m = new HashMap<>();
        for (PortMapping p : ports) {
            m.put(p.guestPort(), p.hostPort());
        }
        return m;
    }
}
