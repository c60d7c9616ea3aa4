package dev.jkrun.vmm.builder;

import dev.jkrun.devices.bus.Bus;
import dev.jkrun.devices.legacy.SerialConsole;
import dev.jkrun.devices.virtio.SharedLine;
import dev.jkrun.devices.virtio.console.PortInput;
import dev.jkrun.devices.virtio.console.PortOutput;
import dev.jkrun.libc.Terminal;
import dev.jkrun.vmm.SerialConsoleConfig;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Places the legacy serial consoles on the PIO bus as the PC's COM ports (libkrun's PortIODeviceManager): COM1 at
 * 0x3F8 and COM3 at 0x3E8 on IRQ 4, COM2 at 0x2F8 and COM4 at 0x2E8 on IRQ 3, where Linux's 8250 driver looks for
 * them (arch/x86/include/asm/serial.h). UARTs on one IRQ drive it as a wired-OR ({@link SharedLine}); the MP table
 * leaves IRQs 3 and 4 edge-triggered (ISA), so the IOAPIC takes the line's rising edges, as from a real UART.
 */
final class SerialPorts {
    static final long[] BASES = {0x3F8, 0x2F8, 0x3E8, 0x2E8};
    static final int[] IRQS = {4, 3, 4, 3};
    static final int PORTS = 8;

    private SerialPorts() {}

    /** Whether COM1 has a UART (then the debug port does not sit at 0x3F8). */
    static boolean com1(List<SerialConsoleConfig> serials) { return !serials.isEmpty(); }

    /** Builds, registers and starts each console; each is added to {@code resources} (stopped with the VM). */
    static void attach(List<SerialConsoleConfig> serials, IrqLines irqLines, Bus pio, List<AutoCloseable> resources) {
        attach(serials, irqLines, pio, BASES, IRQS, resources);
    }

    /**
     * Builds each console as UART i at {@code bases[i]} of {@code bus} (8 byte registers) on line {@code irqs[i]}:
     * the PC's COM ports above, or an architecture's MMIO UARTs.
     */
    static void attach(List<SerialConsoleConfig> serials, IrqLines irqLines, Bus bus, long[] bases, int[] irqs,
                       List<AutoCloseable> resources) {
        if (serials.size() > bases.length) {
            throw new dev.jkrun.vmm.ConfigurationException("serial_consoles", serials.size()
                    + " serial consoles: at most " + bases.length);
        }
        Map<Integer, SharedLine> lines = new TreeMap<>();
        for (int i = 0; i < serials.size(); i++) {
            SerialConsoleConfig c = serials.get(i);
            int irq = irqs[i];
            SharedLine line = lines.computeIfAbsent(irq, n -> new SharedLine(high -> irqLines.set(n, high)));
            if (c.inputFd() >= 0 && Terminal.isTerminal(c.inputFd())) {
                resources.add(Terminal.enterRaw(c.inputFd(), false)); // as libkrun does for a serial tty
            }
            SerialConsole console = new SerialConsole("ttyS" + i,
                    c.inputFd() >= 0 ? PortInput.ofFd(c.inputFd()) : PortInput.empty(),
                    c.outputFd() >= 0 ? PortOutput.ofFd(c.outputFd()) : PortOutput.discard(), line::update);
            resources.add(console);
            line.add(() -> console.uart().interruptPending() ? 1 : 0);
            bus.register(bases[i], PORTS, console.uart());
            console.start();
        }
    }
}
