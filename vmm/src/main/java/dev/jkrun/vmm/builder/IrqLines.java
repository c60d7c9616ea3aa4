package dev.jkrun.vmm.builder;

/**
 * IOAPIC input lines that jkrun drives as levels: KVM_IRQ_LINE on the in-kernel IOAPIC, or jkrun's own IOAPIC under
 * a split irqchip.
 */
@FunctionalInterface
interface IrqLines {
    void set(int gsi, boolean high);
}
