package dev.jkrun.vmm.vstate;

import dev.jkrun.vmm.StopReason;
import java.util.OptionalInt;

/**
 * The control sink devices talk to: the guest command's exit status, whether the host asked for an orderly stop,
 * and the guest's own stop or reset. It exists before the devices (they get it when they are built) and before the
 * {@link Vmm}, which binds to it once built; a stop that comes before the binding (it cannot while no vCPU runs, but
 * nothing depends on that) is handed over then.
 */
public final class VmControl {
    /** Where stops go: the {@link Vmm}. */
    public interface Stops {
        void guestStopped(StopReason reason);

        void guestReset();
    }

    private volatile OptionalInt exitStatus = OptionalInt.empty();
    private volatile boolean stopRequested;
    private Stops stops;
    private StopReason earlyStop;
    private boolean earlyReset;

    /** Records the guest command's exit status (test exit port, virtio-fs exit ioctl) for the stop that follows. */
    public void reportExitStatus(int status) { exitStatus = OptionalInt.of(status); }

    public OptionalInt exitStatus() { return exitStatus; }

    /** Whether the host asked the guest to power off (the test guests' power button reads it). */
    public boolean stopRequested() { return stopRequested; }

    void markStopRequested() { stopRequested = true; }

    /** The guest stopped (test exit port, triple fault...); the first reason wins, in the {@link Vmm}. */
    public void guestStopped(StopReason reason) {
        Stops s;
        synchronized (this) {
            s = stops;
            if (s == null) {
                if (earlyStop == null) {
                    earlyStop = reason;
                }
                return;
            }
        }
        s.guestStopped(reason);
    }

    /** The guest reset the machine (i8042 0xFE). */
    public void guestReset() {
        Stops s;
        synchronized (this) {
            s = stops;
            if (s == null) {
                earlyReset = true;
                return;
            }
        }
        s.guestReset();
    }

    void bind(Stops s) {
        StopReason early;
        boolean reset;
        synchronized (this) {
            if (stops != null) {
                throw new IllegalStateException("control sink already bound");
            }
            stops = s;
            early = earlyStop;
            reset = earlyReset;
        }
        if (early != null) {
            s.guestStopped(early);
        } else if (reset) {
            s.guestReset();
        }
    }
}
