package dev.jkrun.devices.bus;

/**
 * A device on the port-I/O or MMIO bus. Called on the vCPU thread that exited; {@code offset} is relative to the
 * device's base and {@code data.length} is the access width (1, 2, 4 or 8). A read fills {@code data}; bytes it
 * leaves alone read as what the bus pre-filled (zero). Implementations must not throw for any guest access.
 */
public interface BusDevice {
    void read(long offset, byte[] data);

    void write(long offset, byte[] data);
}
