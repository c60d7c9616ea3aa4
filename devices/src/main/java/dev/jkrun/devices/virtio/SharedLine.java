package dev.jkrun.devices.virtio;

import dev.jkrun.memory.GuestMemory;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntSupplier;

/**
 * A level-triggered interrupt line that several virtio-mmio transports share. Linux's virtio-mmio driver requests its
 * IRQ with IRQF_SHARED and, on each interrupt, reads every sharer's InterruptStatus and acknowledges what it read;
 * this line is high exactly while some member has InterruptStatus bits set, as a wired-OR of level outputs would be.
 *
 * <p>Why level: an edge on a shared line is lost when a second device raises it while the first one's is still
 * pending (the IOAPIC sees one edge); a level stays up until the last device's bits are acknowledged, and an
 * interrupt that arrives between the driver's read and its EOI keeps the line up, so the IOAPIC delivers it again
 * after the EOI.
 *
 * <p>{@link #update} recomputes the level from the members' status registers and drives the line only when it
 * changes: a device raising an already high line costs nothing. Members call it after every change of their status
 * (a bit set by a device thread, bits cleared by the driver's InterruptAck or a reset on a vCPU thread); the
 * recomputation and the drive happen under this object's lock, so the last update to run always leaves the line at
 * the level of the statuses it saw, which include every change made before it was called.
 */
public final class SharedLine {
    /** Drives the line; under KVM, KVM_IRQ_LINE on the line's GSI. */
    @FunctionalInterface
    public interface Level {
        void set(boolean high);
    }

    private final Level level;
    private final List<IntSupplier> members = new ArrayList<>();
    private boolean high;
    private long raised;

    public SharedLine(Level level) { this.level = level; }

    /**
     * A transport for {@code device} on this line. Its InterruptStatus joins the line's level; nothing else about the
     * transport changes.
     */
    public MmioTransport attach(VirtioDevice device, GuestMemory memory) {
        MmioTransport t = new MmioTransport(device, memory, this::update, this::update);
        add(t::interruptStatus);
        return t;
    }

    /** Adds a member whose interrupt status {@code status} reads (non-zero: it wants the line up). */
    public synchronized void add(IntSupplier status) {
        members.add(status);
        update();
    }

    /** Drives the line to whether any member has status bits set, if that differs from its current level. */
    public synchronized void update() {
        boolean want = false;
        for (IntSupplier m : members) {
            if (m.getAsInt() != 0) {
                want = true;
                break;
            }
        }
        if (want != high) {
            level.set(want);
            high = want;
            if (want) {
                raised++;
            }
        }
    }

    public synchronized boolean isHigh() { return high; }

    /** How many times the line went up. */
    public synchronized long timesRaised() { return raised; }

    public synchronized int members() { return members.size(); }
}
