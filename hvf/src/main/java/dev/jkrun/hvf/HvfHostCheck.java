package dev.jkrun.hvf;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * What `jkrun check` reports on macOS: whether the framework loads, whether the Mac offers virtualization
 * (kern.hv_support), whether this process holds the com.apple.security.hypervisor entitlement (hv_vm_create answers
 * HV_DENIED without it), whether the framework has the GIC jkrun needs (macOS 15), and how many vCPUs a VM may have.
 */
public final class HvfHostCheck {
    private HvfHostCheck() {}

    /** One finding; {@code fix} is empty when {@code ok}. */
    public record Finding(String subject, boolean ok, String value, String fix) {}

    public static final String ENTITLEMENT = "com.apple.security.hypervisor";
    /** How to give the JVM the entitlement (README.md, "macOS", says more). */
    public static final String SIGN = "sign the java that runs jkrun with the entitlement: codesign --sign - --force"
            + " --entitlements hvf/jkrun.entitlements \"$JAVA_HOME/bin/java\" (a copy of the JDK is best: this replaces"
            + " its signature)";

    /** The findings for the framework {@code calls} supplies (which throws where it cannot be loaded). */
    public static List<Finding> run(Supplier<HvfCalls> calls) {
        List<Finding> f = new ArrayList<>();
        HvfCalls hv;
        try {
            hv = calls.get();
            f.add(new Finding("Hypervisor.framework", true, "loaded", ""));
        } catch (RuntimeException | LinkageError e) {
            f.add(new Finding("Hypervisor.framework", false, "cannot be loaded: " + e.getMessage(),
                    "jkrun needs macOS 11 or newer on Apple silicon"));
            return f;
        }
        int support = hv.hvSupport();
        f.add(support == 1 ? new Finding("kern.hv_support", true, "1", "")
                : new Finding("kern.hv_support", false, support == 0 ? "0: this Mac offers no virtualization" : "unreadable",
                        "run on Apple silicon (in a macOS VM, nested virtualization needs macOS 15 on an M3 or newer)"));
        try {
            hv.vmCreate(Hvf.IPA_BITS);
            hv.vmDestroy();
            f.add(new Finding("entitlement " + ENTITLEMENT, true, "granted (a VM was created and destroyed)", ""));
        } catch (HvfException e) {
            if (e.code() == HvReturn.DENIED) {
                f.add(new Finding("entitlement " + ENTITLEMENT, false, "missing (hv_vm_create: HV_DENIED)", SIGN));
            } else if (e.code() == HvReturn.BUSY) {
                f.add(new Finding("entitlement " + ENTITLEMENT, true, "granted (this process already runs a VM)", ""));
            } else {
                f.add(new Finding("VM creation", false, e.getMessage(), "see the message; kern.hv_support above"));
            }
        }
        boolean gic = hv.hasGic();
        f.add(new Finding("GIC (hv_gic_create)", gic, gic ? "present (macOS 15 or newer)" : "missing",
                gic ? "" : "update to macOS 15 or newer: jkrun uses the framework's GICv3 and has none of its own"));
        try {
            f.add(new Finding("vCPUs per VM", true, Integer.toString(hv.maxVcpus()), ""));
        } catch (HvfException e) {
            f.add(new Finding("vCPUs per VM", false, e.getMessage(), ""));
        }
        return f;
    }
}
