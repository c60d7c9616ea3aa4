package dev.jkrun.devices.virtio;

import dev.jkrun.devices.Trigger;
import dev.jkrun.memory.GuestMemory;
import java.util.List;

/**
 * What a device gets when the driver sets DRIVER_OK: guest memory, its queues in {@link VirtioDevice#queueMaxSizes()}
 * order (each with the EventFd the driver's notifications signal; queues the driver did not set up are not ready),
 * and its two interrupts (virtio 1.2 §2.3 and §4.2.2: "used buffer" sets interrupt status bit 0, "configuration
 * change" bit 1). Shared-memory regions (§2.10) join here when a device first needs one.
 */
public record ActivationContext(GuestMemory memory, List<ActiveQueue> queues, Trigger usedBuffer, Trigger configChanged) {
    public ActivationContext {
        queues = List.copyOf(queues);
    }

    public ActiveQueue queue(int index) { return queues.get(index); }
}
