package dev.jkrun.devices.virtio.console;

/**
 * One port of a virtio-console device: host input and output, an optional name (PORT_NAME, visible in the guest
 * as /sys/class/virtio-ports/vportNpM/name) and whether it is a console (hvc) port. Port 0 is always treated as
 * the console without MULTIPORT.
 */
public record ConsolePort(String name, PortInput input, PortOutput output, boolean console) {
    public ConsolePort {
        if (input == null || output == null) {
            throw new IllegalArgumentException("port input and output are required");
        }
    }

    /** A console (hvc) port without a name. */
    public static ConsolePort console(PortInput in, PortOutput out) { return new ConsolePort(null, in, out, true); }

    /** A plain named port (/dev/vportNpM). */
    public static ConsolePort named(String name, PortInput in, PortOutput out) { return new ConsolePort(name, in, out, false); }
}
