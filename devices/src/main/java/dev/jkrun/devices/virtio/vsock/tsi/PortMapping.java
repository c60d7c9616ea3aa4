package dev.jkrun.devices.virtio.vsock.tsi;

/**
 * One published port, as libkrun's {@code krun_set_port_map} entry {@code "HOST:GUEST"}: a guest TSI listener on
 * {@code guestPort} is exposed on the host at {@code hostPort}. Ports are 1..65535 (a guest listening on port 0 is
 * governed by {@link TsiConfig#exposeEphemeral()}).
 */
public record PortMapping(int hostPort, int guestPort) {
    public PortMapping {
        if (hostPort < 1 || hostPort > 0xffff) {
            throw new IllegalArgumentException("host port " + hostPort + " is not in 1..65535");
        }
        if (guestPort < 1 || guestPort > 0xffff) {
            throw new IllegalArgumentException("guest port " + guestPort + " is not in 1..65535");
        }
    }

    /** Parses {@code "HOST:GUEST"} (the CLI's {@code --port} and libkrun's string form). */
    public static PortMapping parse(String s) {
        int colon = s.indexOf(':');
        if (colon < 0 || colon != s.lastIndexOf(':')) {
            throw new IllegalArgumentException("port mapping \"" + s + "\" is not HOST:GUEST");
        }
        try {
            return new PortMapping(Integer.parseInt(s.substring(0, colon)), Integer.parseInt(s.substring(colon + 1)));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("port mapping \"" + s + "\" is not HOST:GUEST", e);
        }
    }

    @Override
    public String toString() { return hostPort + ":" + guestPort; }
}
