package dev.jkrun.vmm.builder;

import dev.jkrun.devices.legacy.IoApic;
import dev.jkrun.kvm.Vm;

/**
 * The IOAPIC input lines of a VM: the levels jkrun drives itself, and which pins KVM drives from irqfds. KVM_IRQ_LINE
 * on the in-kernel IOAPIC, or jkrun's own IOAPIC under a split irqchip.
 */
interface IrqLines {
    /** Drives {@code gsi} to a level. */
    void set(int gsi, boolean high);

    /** Called before an irqfd is registered on {@code gsi}. */
    default void irqfdOn(int gsi) { }

    /** The hypervisor's number for line {@code line} in an irqfd (x86: the same; aarch64: the SPI's index). */
    default int gsi(int line) { return line; }

    static IrqLines inKernel(Vm vm) { return vm::irqLine; }

    static IrqLines of(IoApic ioapic) {
        return new IrqLines() {
            @Override
            public void set(int gsi, boolean high) { ioapic.setLevel(gsi, high); }

            @Override
            public void irqfdOn(int gsi) { ioapic.carriesIrqfd(gsi); }
        };
    }
}
