package dev.jkrun.vmm;

/**
 * A legacy serial console: a 16550A UART on the next free COM port (COM1 at I/O port 0x3F8 on IRQ 4, then COM2
 * 0x2F8/IRQ 3, COM3 0x3E8/IRQ 4, COM4 0x2E8/IRQ 3, as libkrun places them), the guest's ttyS0..ttyS3 in the order they
 * are listed (libkrun's krun_add_serial_console_default). Guest output goes to {@code outputFd}, host input comes
 * from {@code inputFd}; either may be negative for none. The caller keeps owning both; an input that is a terminal
 * is put in raw mode while the VM runs. The kernel logs to it when its command line says {@code console=ttyS0}.
 */
public record SerialConsoleConfig(int inputFd, int outputFd) implements DeviceConfig {
    /** COM1 to COM4. */
    public static final int MAX = 4;
}
