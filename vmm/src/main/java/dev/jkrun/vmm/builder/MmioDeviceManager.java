package dev.jkrun.vmm.builder;

import dev.jkrun.arch.x86_64.Layout;
import dev.jkrun.devices.bus.Bus;
import dev.jkrun.devices.virtio.MmioTransport;
import dev.jkrun.devices.virtio.VirtioDevice;
import dev.jkrun.kvm.IoEventAddress;
import dev.jkrun.kvm.Vm;
import dev.jkrun.libc.EventFd;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.vmm.ConfigurationException;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;

/**
 * Places virtio devices on the MMIO bus as libkrun does: slot k at 0xD000_0000 + 0x1000·k with IRQ 5 + k (at most
 * 11 devices), one ioeventfd per queue on the notify register (datamatch = queue index) and one irqfd per device.
 * Each placement becomes a {@code virtio_mmio.device=} word for the kernel command line.
 */
final class MmioDeviceManager {
    private static final int QUEUE_NOTIFY = 0x50;
    private final Vm vm;
    private final Bus mmio;
    private final GuestMemory memory;
    private final List<AutoCloseable> resources;
    private final List<String> cmdlineWords = new ArrayList<>();
    private final List<MmioTransport> transports = new ArrayList<>();
    private int next;

    MmioDeviceManager(Vm vm, Bus mmio, GuestMemory memory, List<AutoCloseable> resources) {
        this.vm = vm;
        this.mmio = mmio;
        this.memory = memory;
        this.resources = resources;
    }

    MmioTransport attach(VirtioDevice device) {
        int irq = Layout.FIRST_IRQ + next;
        if (irq > Layout.LAST_IRQ) {
            throw new ConfigurationException("devices", "at most " + (Layout.LAST_IRQ - Layout.FIRST_IRQ + 1) + " virtio devices fit on x86 (IRQs 5-15)");
        }
        long base = Layout.MMIO_START + (long) Layout.MMIO_SLOT_SIZE * next;
        next++;
        EventFd irqfd = new EventFd();
        resources.add(irqfd);
        vm.registerIrqfd(irqfd, irq);
        MmioTransport transport = new MmioTransport(device, memory, irqfd::signal);
        resources.add(transport::close);
        List<EventFd> events = transport.queueEvents();
        for (int q = 0; q < events.size(); q++) {
            vm.registerIoeventfd(events.get(q), IoEventAddress.MMIO, base + QUEUE_NOTIFY, 4, OptionalLong.of(q));
        }
        mmio.register(base, Layout.MMIO_SLOT_SIZE, transport);
        transports.add(transport);
        cmdlineWords.add(String.format("virtio_mmio.device=4K@0x%08x:%d", base, irq));
        return transport;
    }

    List<String> cmdlineWords() { return cmdlineWords; }

    /** Every device's threads that are still alive. */
    List<Thread> liveThreads() {
        List<Thread> live = new ArrayList<>();
        for (MmioTransport t : transports) {
            live.addAll(t.liveThreads());
        }
        return live;
    }
}
