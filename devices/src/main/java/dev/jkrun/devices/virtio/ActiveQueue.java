package dev.jkrun.devices.virtio;

import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.libc.EventFd;

/**
 * One queue of an activated device and the EventFd that the driver's notifications for it signal (the ioeventfd on
 * QueueNotify, or the transport itself without one). Not named {@code notify}: records cannot shadow
 * {@link Object#notify()}.
 */
public record ActiveQueue(Queue queue, EventFd notification) {}
