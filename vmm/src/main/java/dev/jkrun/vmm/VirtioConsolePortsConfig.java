package dev.jkrun.vmm;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * A further virtio-console device with exactly these ports, in order (libkrun's krun_add_virtio_console_multiport with
 * krun_add_console_port_tty/_inout): a terminal port ({@link ConsolePortConfig.Fds#tty()}) is a console port (hvc,
 * resizable), the others plain ports (/dev/vportNpM); names are optional and, where given, distinct on the device.
 * It takes a virtio-mmio slot in {@link VmConfig#devices()}'s order.
 */
public record VirtioConsolePortsConfig(List<ConsolePortConfig> ports) implements DeviceConfig {
    public VirtioConsolePortsConfig {
        ports = List.copyOf(ports);
        if (ports.isEmpty()) {
            throw new ConfigurationException("console.port", "a multiport console device needs at least one port");
        }
        Set<String> names = new HashSet<>();
        for (ConsolePortConfig p : ports) {
            if (!p.unnamed() && !names.add(p.name())) {
                throw new ConfigurationException("console.port", "name '" + p.name() + "' is used twice on one device");
            }
        }
    }
}
