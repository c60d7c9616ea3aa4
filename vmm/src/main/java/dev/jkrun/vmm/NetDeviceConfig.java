package dev.jkrun.vmm;

import dev.jkrun.devices.virtio.net.VirtioNet;
import dev.jkrun.init.StaticIpv4;

import java.nio.file.Path;
import java.util.Objects;

/**
 * One virtio-net device (id 1): its backend, MAC and the offloads offered to the guest (a subset of
 * {@code VirtioNet.OFFLOADS}). The guest names NICs eth0, eth1... in the order they are listed in the VM.
 *
 * @param name    the NIC's name in logs (eth0...)
 * @param mac     six bytes
 * @param features offload feature bits
 * @param backend where its frames go
 * @param dhcp    whether jkrun's init configures the NIC from a DHCP server before the command (libkrun's
 *                NET_FLAG_DHCP_CLIENT)
 * @param ipv4    a static address jkrun's init gives the NIC before the command (its iface is {@code name}), or
 *                null; not with {@code dhcp}
 */
public record NetDeviceConfig(String name, byte[] mac, long features, Backend backend, boolean dhcp, StaticIpv4 ipv4)
        implements DeviceConfig {
    public NetDeviceConfig {
        Objects.requireNonNull(backend, "backend");
        mac = mac.clone();
        if (ipv4 != null && !ipv4.iface().equals(name)) {
            throw new ConfigurationException("net." + name + ".ipv4", "the address is for " + ipv4.iface());
        }
        if (ipv4 != null && dhcp) {
            throw new ConfigurationException("net." + name + ".ipv4", "a NIC is configured statically or over DHCP, not both");
        }
    }

    /** Without a static address. */
    public NetDeviceConfig(String name, byte[] mac, long features, Backend backend, boolean dhcp) {
        this(name, mac, features, backend, dhcp, null);
    }

    /** Without DHCP or a static address. */
    public NetDeviceConfig(String name, byte[] mac, long features, Backend backend) {
        this(name, mac, features, backend, false, null);
    }

    @Override
    public byte[] mac() { return mac.clone(); }

    /** libkrun's default MAC, 5a:94:ef:e4:0c:ee, its last byte plus the NIC's index, so NICs of one VM differ. */
    public static byte[] defaultMac(int index) {
        return new byte[] {0x5a, (byte) 0x94, (byte) 0xef, (byte) 0xe4, 0x0c, (byte) (0xee + index)};
    }

    /** The offloads offered unless the caller chooses: libkrun's legacy set, without HOST_TSO4/UFO for jkrun's passt. */
    public static long defaultFeatures(Backend backend) {
        return backend instanceof Passt ? VirtioNet.PASST_FEATURES : VirtioNet.COMPAT_FEATURES;
    }

    /** Whether init leases the address unless told: for the passt jkrun starts (it serves DHCP), not over a static one. */
    public static boolean defaultDhcp(Backend backend, StaticIpv4 ipv4) {
        return ipv4 == null && backend instanceof Passt;
    }

    /** libkrun's backends (unixstream, unixgram, tap), by path or descriptor. */
    public sealed interface Backend {}

    /** A stream socket to connect to (passt, socket_vmnet): 4-byte big-endian length before each frame. */
    public record UnixStreamPath(Path path) implements Backend {}

    /** A connected stream socket of the caller's (duplicated: the caller may close its own). */
    public record UnixStreamFd(int fd) implements Backend {}

    /**
     * A datagram peer to connect to (gvproxy's vfkit mode, vmnet-helper): jkrun binds a socket of its own next to the
     * VM's temporary files and connects it there; with {@code vfkitMagic} it first sends the 4 bytes "VFKT".
     */
    public record UnixGramPath(Path path, boolean vfkitMagic) implements Backend {}

    /** A connected datagram socket of the caller's (duplicated). */
    public record UnixGramFd(int fd) implements Backend {}

    /** A tap device (created when missing and allowed): frames with their virtio-net header, offloads honoured. */
    public record Tap(String name) implements Backend {}

    /** jkrun starts passt (Debian's {@code passt}) on one end of a socket pair and stops it with the VM. */
    public record Passt(Path executable) implements Backend {}
}
