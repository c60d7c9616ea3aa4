package dev.jkrun.cli;

import dev.jkrun.vmm.StopReason;
import dev.jkrun.vmm.VirtualMachine;
import java.io.PrintStream;
import java.time.Duration;
import java.util.Optional;

/** Starting a VM and waiting for it with a deadline, for the commands that have one. */
final class Stops {
    private Stops() {}

    /** Starts {@code vm} and waits; empty (after killing it and saying so on {@code err}) when it outlives the timeout. */
    static Optional<StopReason> runFor(VirtualMachine vm, long timeoutSeconds, PrintStream err) {
        vm.start();
        Optional<StopReason> r;
        try {
            r = vm.waitForStop(Duration.ofSeconds(timeoutSeconds));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            r = Optional.empty();
        }
        if (r.isEmpty()) {
            vm.kill();
            err.println("jkrun: the guest did not stop within " + timeoutSeconds + " s; killed it");
        }
        return r;
    }
}
