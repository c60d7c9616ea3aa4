package dev.jkrun.vmm;

/**
 * A further virtio-console device on three host descriptors, each negative for none (libkrun's
 * krun_add_virtio_console_default): laid out as the implicit console lays out stdin/stdout/stderr (port 0, the
 * guest's next hvc, on the terminal among them; a krun-stdin/-stdout/-stderr port for each that is not one). The
 * caller keeps the descriptors. It takes a virtio-mmio slot in {@link VmConfig#devices()}'s order.
 */
public record VirtioConsoleConfig(int inputFd, int outputFd, int errorFd) implements DeviceConfig {}
