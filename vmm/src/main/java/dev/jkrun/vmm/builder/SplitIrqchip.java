package dev.jkrun.vmm.builder;

import dev.jkrun.devices.legacy.IoApic;
import dev.jkrun.kvm.Kvm;
import dev.jkrun.kvm.KvmCap;
import dev.jkrun.kvm.Vm;
import dev.jkrun.vmm.ConfigurationException;
import java.util.ArrayList;
import java.util.List;

/**
 * KVM's split irqchip (libkrun's {@code krun_split_irqchip}): the LAPICs in the kernel, {@link IoApic} in jkrun, no
 * PIC and no PIT. Each IOAPIC pin n is GSI n with an MSI route the IOAPIC keeps current, so the devices' irqfds work
 * as with the in-kernel IOAPIC; lines jkrun drives itself go through {@link IoApic#setLevel}. With no PIT, the
 * guest keeps time with its LAPIC's TSC-deadline mode, which its CPUID then offers on AMD hosts too.
 */
final class SplitIrqchip {
    private SplitIrqchip() {}

    /** Enables the split irqchip on {@code vm} (before any vCPU exists) and returns its IOAPIC. */
    static IoApic enable(Kvm kvm, Vm vm) {
        if (kvm.checkExtension(KvmCap.SPLIT_IRQCHIP) <= 0) {
            throw new ConfigurationException("machine.split_irqchip", "this host's KVM has no KVM_CAP_SPLIT_IRQCHIP");
        }
        if (kvm.checkExtension(KvmCap.TSC_DEADLINE_TIMER) <= 0) { // without a PIT, the guest's only timer
            throw new ConfigurationException("machine.split_irqchip",
                    "this host's KVM has no TSC-deadline timer (KVM_CAP_TSC_DEADLINE_TIMER), the guest's timer without a PIT");
        }
        vm.enableSplitIrqchip(IoApic.PINS);
        return new IoApic(new IoApic.Sink() {
            @Override
            public void routes(IoApic.Msi[] routes) {
                List<Vm.MsiRoute> table = new ArrayList<>(routes.length);
                for (int gsi = 0; gsi < routes.length; gsi++) {
                    table.add(new Vm.MsiRoute(gsi, routes[gsi].address(), routes[gsi].data()));
                }
                vm.setMsiRoutes(table);
            }

            @Override
            public boolean deliver(IoApic.Msi msi) {
                return vm.signalMsi(msi.address(), msi.data()) != 0; // 0: LAPICs matched, none took it
            }
        });
    }
}
