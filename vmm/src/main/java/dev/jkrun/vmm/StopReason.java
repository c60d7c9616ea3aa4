package dev.jkrun.vmm;

import java.util.OptionalInt;

/**
 * Why a VM stopped, modelled on AVF's StopReason. {@code exitStatus} is the guest command's status when the guest
 * reported one; {@code detail} says what is known (the exit, RIP, instruction bytes, the error).
 */
public record StopReason(Kind kind, OptionalInt exitStatus, String detail) {
    public enum Kind {
        /** The guest powered off after reporting an exit status (or cleanly, with none). */
        SHUTDOWN,
        /** The guest reset itself without reporting a status (libkrunfw reboots on panic and when init exits). */
        REBOOT,
        /** The guest crashed: triple fault, KVM internal error, failed entry, kernel panic. */
        CRASH,
        /** The host stopped it: stop() after its grace period, or kill(). */
        KILLED,
        /**
         * start() could not bring the vCPUs up: its caller was interrupted, or a vCPU thread's set-up failed (a
         * configuration or set-up error is thrown by {@code VirtualMachine.create} instead, before there is a VM).
         */
        START_FAILED,
        /** The VMM's own code failed while the guest ran: a vCPU thread's exception (a listener of the caller's included). */
        INFRASTRUCTURE_ERROR
    }

    public static StopReason shutdown(int status) { return new StopReason(Kind.SHUTDOWN, OptionalInt.of(status), "guest powered off with status " + status); }

    public static StopReason of(Kind kind, String detail) { return new StopReason(kind, OptionalInt.empty(), detail); }

    /** The status a process running this VM should exit with, libkrun-style: the guest's, 0 for a bare reset, 1 otherwise. */
    public int processExitStatus() {
        if (exitStatus.isPresent()) {
            return exitStatus.getAsInt();
        }
        return switch (kind) {
            case SHUTDOWN, REBOOT -> 0;
            case KILLED -> 137;
            default -> 1;
        };
    }

    @Override
    public String toString() {
        return kind + (exitStatus.isPresent() ? " (status " + exitStatus.getAsInt() + ")" : "") + ": " + detail;
    }
}
