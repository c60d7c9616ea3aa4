package dev.jkrun.kvm;

/** KVM refused something without an errno to show for it (a partial KVM_SET_MSRS, a wrong API version). */
public class KvmException extends RuntimeException {
    public KvmException(String message) { super(message); }

    public KvmException(String message, Throwable cause) { super(message, cause); }
}
