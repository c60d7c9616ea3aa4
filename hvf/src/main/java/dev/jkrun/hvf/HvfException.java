package dev.jkrun.hvf;

/** A Hypervisor.framework call that did not return HV_SUCCESS: which call, and its hv_return_t. */
public final class HvfException extends RuntimeException {
    private final String call;
    private final int code;

    public HvfException(String call, int code) {
        super(call + ": " + HvReturn.name(code) + hint(code));
        this.call = call;
        this.code = code;
    }

    private static String hint(int code) {
        return code == HvReturn.DENIED
                ? " (the process lacks the com.apple.security.hypervisor entitlement: see `jkrun check`)" : "";
    }

    public String call() { return call; }

    public int code() { return code; }
}
