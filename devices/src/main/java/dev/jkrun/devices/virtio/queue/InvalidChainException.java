package dev.jkrun.devices.virtio.queue;

/**
 * A driver broke a virtqueue rule. For a chain-level error {@link #headIndex()} is the head of the chain that the
 * device must give back with {@code queue.addUsed(mem, e.headIndex(), 0)}; for a queue-level error it is -1 and the
 * queue is marked broken ({@link Queue#isBroken()}). Checked, so that no device forgets to handle it: a malformed
 * chain never escapes a device.
 */
public final class InvalidChainException extends Exception {
    private final QueueError error;
    private final int headIndex;

    public InvalidChainException(QueueError error, int headIndex, String detail) {
        super(error + (headIndex >= 0 ? " (head " + headIndex + ")" : "") + (detail == null ? "" : ": " + detail), null, false, false);
        this.error = error;
        this.headIndex = headIndex;
    }

    public QueueError error() { return error; }

    /** The chain's head descriptor index, or -1 for a queue-level error. */
    public int headIndex() { return headIndex; }

    /** Whether the device can return the chain and go on ({@code headIndex() >= 0}). */
    public boolean isChainError() { return headIndex >= 0; }
}
