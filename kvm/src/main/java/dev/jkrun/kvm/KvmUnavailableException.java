package dev.jkrun.kvm;

/** This host cannot run jkrun's VMs: /dev/kvm is missing, not accessible, too old, or lacks a capability. */
public final class KvmUnavailableException extends KvmException {
    public KvmUnavailableException(String message) { super(message); }

    public KvmUnavailableException(String message, Throwable cause) { super(message, cause); }
}
