package dev.jkrun.devices.virtio.vsock.tsi;

import java.net.InetAddress;

/**
 * Which host addresses a guest may make the VMM connect or send to. libkrun allows everything; a test or a locked-down
 * VM allows less. Asked for every TSI connect and sendto destination (and for the sources of datagrams delivered to
 * the guest), never for AF_UNIX paths, which the scope flag HIJACK_UNIX governs.
 */
@FunctionalInterface
public interface OutboundPolicy {
    boolean allows(InetAddress ip, int port);

    /** Everything, as libkrun. */
    OutboundPolicy ALLOW_ALL = (ip, port) -> true;

    /** The host's loopback only (127.0.0.0/8 and ::1): tests, and VMs that may reach host services but no network. */
    OutboundPolicy LOOPBACK_ONLY = (ip, port) -> ip.isLoopbackAddress();

    /** Nothing outbound (a VM that only serves mapped ports). */
    OutboundPolicy DENY_ALL = (ip, port) -> false;
}
