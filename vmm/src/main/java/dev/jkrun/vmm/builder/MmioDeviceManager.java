package dev.jkrun.vmm.builder;

import dev.jkrun.arch.x86_64.MmioPlacement;
import dev.jkrun.devices.bus.Bus;
import dev.jkrun.devices.virtio.MmioTransport;
import dev.jkrun.devices.virtio.SharedLine;
import dev.jkrun.devices.virtio.VirtioDevice;
import dev.jkrun.kvm.IoEventAddress;
import dev.jkrun.kvm.Vm;
import dev.jkrun.libc.EventFd;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.vmm.ConfigurationException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.TreeMap;

/**
 * Places virtio devices on the MMIO bus by {@link MmioPlacement}: device k in the 4 KiB window at 0xD000_0000 +
 * 0x1000·k on IOAPIC pin 5 + k mod 19 (libkrun's IRQ 5 + k for the first 11), one ioeventfd per queue on the notify
 * register (datamatch = queue index). A device with a line of its own raises it through an irqfd (an edge); devices
 * sharing a line drive it as one level through {@link SharedLine} and {@link IrqLines} (the MP table says which lines
 * are level-triggered: {@link #levelIrqs}). Each placement becomes a {@code virtio_mmio.device=} word for the kernel
 * command line.
 */
final class MmioDeviceManager {
    private static final int QUEUE_NOTIFY = 0x50;
    private final Vm vm;
    private final IrqLines lines;
    private final Bus mmio;
    private final GuestMemory memory;
    private final List<AutoCloseable> resources;
    private final List<MmioPlacement.Slot> placement;
    private final Map<Integer, SharedLine> sharedLines = new TreeMap<>();
    private final List<String> cmdlineWords = new ArrayList<>();
    private final List<MmioTransport> transports = new ArrayList<>();
    private int next;

    /** A manager for exactly {@code devices} devices (the placement of each depends on how many share its line). */
    MmioDeviceManager(Vm vm, IrqLines lines, Bus mmio, GuestMemory memory, List<AutoCloseable> resources, int devices) {
        this.vm = vm;
        this.lines = lines;
        this.mmio = mmio;
        this.memory = memory;
        this.resources = resources;
        this.placement = placement(devices);
    }

    /** The x86_64 placement of {@code devices} devices, or the configuration error naming the limit. */
    static List<MmioPlacement.Slot> placement(int devices) {
        if (devices > MmioPlacement.MAX_DEVICES) {
            throw new ConfigurationException("devices", devices + " virtio devices (the console, shares, disks and "
                    + "others together): at most " + MmioPlacement.MAX_DEVICES + " fit in one VM");
        }
        return MmioPlacement.place(devices);
    }

    MmioTransport attach(VirtioDevice device) {
        if (next >= placement.size()) {
            throw new IllegalStateException("device " + (next + 1) + " attached, " + placement.size() + " placed");
        }
        MmioPlacement.Slot slot = placement.get(next++);
        long base = slot.base();
        MmioTransport transport;
        if (slot.shared()) {
            int irq = slot.irq();
            SharedLine line = sharedLines.computeIfAbsent(irq, i -> new SharedLine(high -> lines.set(i, high)));
            transport = line.attach(device, memory);
        } else {
            EventFd irqfd = new EventFd();
            resources.add(irqfd);
            lines.irqfdOn(slot.irq());
            vm.registerIrqfd(irqfd, slot.irq());
            transport = new MmioTransport(device, memory, irqfd::signal);
        }
        resources.add(transport::close);
        List<EventFd> events = transport.queueEvents();
        for (int q = 0; q < events.size(); q++) {
            vm.registerIoeventfd(events.get(q), IoEventAddress.MMIO, base + QUEUE_NOTIFY, 4, OptionalLong.of(q));
        }
        mmio.register(base, slot.size(), transport);
        transports.add(transport);
        cmdlineWords.add(word(slot));
        return transport;
    }

    /**
     * The kernel's description of one device: {@code virtio_mmio.device=4K@0xd0000000:5}. Its base goes through the
     * kernel's sscanf("%lli"), so no memparse suffix shortens it; only the size does ("4K").
     */
    static String word(MmioPlacement.Slot slot) {
        return String.format("virtio_mmio.device=4K@0x%08x:%d", slot.base(), slot.irq());
    }

    List<String> cmdlineWords() { return cmdlineWords; }

    /** The IOAPIC pins that carry more than one device: level-triggered, active high in the MP table. */
    Set<Integer> levelIrqs() { return MmioPlacement.sharedLines(placement); }

    /** Every device's threads that are still alive. */
    List<Thread> liveThreads() {
        List<Thread> live = new ArrayList<>();
        for (MmioTransport t : transports) {
            live.addAll(t.liveThreads());
        }
        return live;
    }
}
