package dev.jkrun.vmm.builder;

import dev.jkrun.devices.bus.Bus;
import dev.jkrun.devices.virtio.MmioTransport;
import dev.jkrun.devices.virtio.SharedLine;
import dev.jkrun.devices.virtio.VirtioDevice;
import dev.jkrun.hypervisor.Hypervisor;
import dev.jkrun.libc.EventFd;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.vmm.ConfigurationException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.TreeMap;

/**
 * Places virtio devices on the MMIO bus by {@link MmioPlacement} in the platform's device space (x86_64: device k in
 * the 4 KiB window at 0xD000_0000 + 0x1000·k on IOAPIC pin 5 + k mod 19, libkrun's IRQ 5 + k for the first 11), one
 * ioeventfd per queue on the notify register (datamatch = queue index) where the hypervisor has them. A device with a
 * line of its own raises it through an irqfd (an edge); devices sharing a line, and every device where the hypervisor
 * has no irqfds, drive their line as one level through {@link SharedLine} and {@link IrqLines} (the platform tells
 * the guest which lines are level-triggered: {@link #levelIrqs}). The platform says where the kernel learns of them
 * ({@link #slots}: command-line words or device-tree nodes).
 */
final class MmioDeviceManager {
    private static final int QUEUE_NOTIFY = 0x50;
    private final Optional<Hypervisor.IoEvents> ioEvents;
    private final IrqLines lines;
    private final Bus mmio;
    private final GuestMemory memory;
    private final List<AutoCloseable> resources;
    private final List<MmioPlacement.Slot> placement;
    private final Map<Integer, SharedLine> sharedLines = new TreeMap<>();
    private final List<MmioPlacement.Slot> placed = new ArrayList<>();
    private final List<MmioTransport> transports = new ArrayList<>();
    private int next;

    /** A manager for exactly {@code devices} devices (the placement of each depends on how many share its line). */
    MmioDeviceManager(Hypervisor.Vm vm, IrqLines lines, Bus mmio, GuestMemory memory, List<AutoCloseable> resources,
                      MmioPlacement.Space space, int devices) {
        this.ioEvents = vm.ioEvents();
        this.lines = lines;
        this.mmio = mmio;
        this.memory = memory;
        this.resources = resources;
        this.placement = placement(space, devices);
    }

    /** The placement of {@code devices} devices in {@code space}, or the configuration error naming the limit. */
    static List<MmioPlacement.Slot> placement(MmioPlacement.Space space, int devices) {
        if (devices > space.maxDevices()) {
            throw new ConfigurationException("devices", devices + " virtio devices (the console, shares, disks and "
                    + "others together): at most " + space.maxDevices() + " fit in one VM");
        }
        return MmioPlacement.place(space, devices);
    }

    MmioTransport attach(VirtioDevice device) {
        if (next >= placement.size()) {
            throw new IllegalStateException("device " + (next + 1) + " attached, " + placement.size() + " placed");
        }
        MmioPlacement.Slot slot = placement.get(next++);
        long base = slot.base();
        MmioTransport transport;
        if (slot.shared() || ioEvents.isEmpty()) {
            int irq = slot.irq();
            SharedLine line = sharedLines.computeIfAbsent(irq, i -> new SharedLine(high -> lines.set(i, high)));
            transport = line.attach(device, memory);
        } else {
            EventFd irqfd = new EventFd();
            resources.add(irqfd);
            pendingIrqfds.add(new PendingIrqfd(irqfd, slot.irq()));
            transport = new MmioTransport(device, memory, irqfd::signal);
        }
        resources.add(transport::close);
        if (ioEvents.isPresent()) { // without, the transport hears QUEUE_NOTIFY as an MMIO write
            List<EventFd> events = transport.queueEvents();
            for (int q = 0; q < events.size(); q++) {
                ioEvents.get().registerMmioNotify(events.get(q), base + QUEUE_NOTIFY, 4, OptionalLong.of(q));
            }
        }
        mmio.register(base, slot.size(), transport);
        transports.add(transport);
        placed.add(slot);
        return transport;
    }

    private record PendingIrqfd(EventFd fd, int line) {}

    private final List<PendingIrqfd> pendingIrqfds = new ArrayList<>();

    /**
     * Wires each device's irqfd to its line, once the interrupt controller is complete (on aarch64 the GIC is
     * initialized only after the vCPUs exist, and KVM refuses an irqfd before: EAGAIN). No device runs before.
     */
    void registerIrqfds() {
        for (PendingIrqfd p : pendingIrqfds) {
            lines.irqfdOn(p.line());
            ioEvents.orElseThrow().registerIrqfd(p.fd(), lines.gsi(p.line()));
        }
        pendingIrqfds.clear();
    }

    /** The devices attached so far, in attach order, where they are. */
    List<MmioPlacement.Slot> slots() { return List.copyOf(placed); }

    /**
     * The lines that carry more than one device, or every device line where the hypervisor has no irqfds:
     * level-triggered, active high (x86: in the MP table).
     */
    Set<Integer> levelIrqs() {
        if (ioEvents.isEmpty()) {
            return new java.util.TreeSet<>(placement.stream().map(MmioPlacement.Slot::irq).toList());
        }
        return MmioPlacement.sharedLines(placement);
    }

    /** Each device's transport state ({@link MmioTransport#describe}), with its window and line. */
    List<String> describe() {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < transports.size(); i++) {
            MmioPlacement.Slot slot = placed.get(i);
            SharedLine line = sharedLines.get(slot.irq());
            out.add("virtio-mmio 0x" + Long.toHexString(slot.base()) + " irq " + slot.irq()
                    + (line != null ? " (level line " + (line.isHigh() ? "high" : "low") + ")" : "") + " "
                    + transports.get(i).describe());
        }
        return out;
    }

    /** Every device's threads that are still alive. */
    List<Thread> liveThreads() {
        List<Thread> live = new ArrayList<>();
        for (MmioTransport t : transports) {
            live.addAll(t.liveThreads());
        }
        return live;
    }
}
