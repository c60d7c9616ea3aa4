package dev.jkrun.vmm.builder;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * Where each virtio-mmio device goes, as a pure function of how many there are: device k gets the k-th MMIO window
 * of the architecture's device space and interrupt line {@code firstLine + k mod lines}. While there are no more
 * devices than lines every device has a line of its own (on x86_64 device k keeps libkrun's IRQ 5 + k for k &lt; 11);
 * past that the lines are shared round-robin, so no line carries more than one device above any other.
 *
 * <p>A shared line must be level-triggered (an edge is lost when two devices raise it together); a line of its own
 * stays edge-triggered. The platform tells the guest which (x86_64: the MP table), and the VMM drives each line to
 * match.
 *
 * <p>Each architecture brings its own {@link Space} ({@link Platform#deviceSpace()}); on aarch64 the GIC has enough
 * SPIs that no line need be shared.
 */
public final class MmioPlacement {
    private MmioPlacement() {}


    /**
     * An architecture's room for devices: windows of {@code slotSize} bytes from {@code windowStart}, interrupt lines
     * {@code firstLine..lastLine} inclusive, at most {@code maxDevices} devices (their windows must end by
     * {@code windowEnd}).
     */
    public record Space(long windowStart, long windowEnd, long slotSize, int firstLine, int lastLine, int maxDevices) {
        public Space {
            if (slotSize <= 0 || firstLine < 0 || lastLine < firstLine || maxDevices < 0) {
                throw new IllegalArgumentException("bad device space " + this);
            }
            if (windowStart < 0 || windowEnd - windowStart < slotSize * maxDevices) {
                throw new IllegalArgumentException("device space " + this + " has no room for " + maxDevices + " windows");
            }
        }

        public int lines() { return lastLine - firstLine + 1; }
    }

    /** Device {@code index}'s window {@code [base, base + size)} and line; {@code shared}: other devices use it too. */
    public record Slot(int index, long base, long size, int irq, boolean shared) {}

    /**
     * The placement of {@code devices} devices in {@code space}, in attach order.
     *
     * @throws IllegalArgumentException when {@code devices} is negative or above the space's {@code maxDevices}
     */
    public static List<Slot> place(Space space, int devices) {
        if (devices < 0 || devices > space.maxDevices()) {
            throw new IllegalArgumentException("at most " + space.maxDevices() + " virtio devices fit, not " + devices);
        }
        int lines = space.lines();
        List<Slot> slots = new ArrayList<>(devices);
        for (int k = 0; k < devices; k++) {
            int line = k % lines;
            // devices / lines on every line, one more on the first devices % lines of them
            int onLine = devices / lines + (line < devices % lines ? 1 : 0);
            slots.add(new Slot(k, space.windowStart() + space.slotSize() * k, space.slotSize(), space.firstLine() + line,
                    onLine > 1));
        }
        return List.copyOf(slots);
    }

    /** The lines more than one of {@code slots} use, ascending. */
    public static Set<Integer> sharedLines(List<Slot> slots) {
        Set<Integer> shared = new TreeSet<>();
        for (Slot s : slots) {
            if (s.shared()) {
                shared.add(s.irq());
            }
        }
        return shared;
    }
}
