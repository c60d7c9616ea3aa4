package dev.jkrun.hvf;

import dev.jkrun.hypervisor.Hypervisor;

/**
 * Hypervisor.framework on Apple silicon as a {@link Hypervisor}. The framework allows one VM per process: jkrun's
 * VMs in one JVM therefore run one at a time on macOS ({@link #createVm()} refuses a second while one is open). It has
 * no ioeventfd or irqfd: devices hear queue notifications as MMIO writes and raise their lines as levels through the
 * framework's GIC (macOS 15). jkrun has no GIC of its own for older macOS: see README.md, "macOS".
 */
public final class Hvf implements Hypervisor {
    /** The IPA space jkrun asks for: 40 bits, aarch64's layout (RAM to 1022 GiB, DAX windows below 1 TiB). */
    static final int IPA_BITS = 40;
    /** Why a Mac without the framework's GIC is refused. */
    static final String NO_GIC = "Hypervisor.framework has no GIC (hv_gic_create) before macOS 15, and jkrun has no GIC"
            + " of its own: macOS 15 or newer is needed";
    private static final Object PROCESS_VM = new Object();
    /** The open VM of each framework (the native one is a single instance: one VM per process). */
    private static final java.util.Map<HvfCalls, HvfVm> current = new java.util.IdentityHashMap<>();

    private final HvfCalls calls;

    private Hvf(HvfCalls calls) { this.calls = calls; }

    /** The framework of this Mac. */
    public static Hvf open() { return new Hvf(NativeHvf.instance()); }

    /** Over any {@link HvfCalls} (tests replay exits through one). */
    public static Hvf over(HvfCalls calls) { return new Hvf(calls); }

    @Override
    public String name() { return "Hypervisor.framework"; }

    /** The GIC of macOS 15: jkrun's aarch64 platform needs it. */
    @Override
    public void requireCapabilities() {
        if (!calls.hasGic()) {
            throw new IllegalStateException(NO_GIC);
        }
    }

    @Override
    public int maxVcpus() { return calls.maxVcpus(); }

    @Override
    public HvfVm createVm() {
        synchronized (PROCESS_VM) {
            if (current.containsKey(calls)) {
                throw new IllegalStateException("Hypervisor.framework runs one VM per process, and this JVM's is"
                        + " still open: close it first");
            }
            HvfVm vm = new HvfVm(calls, calls.vmCreate(IPA_BITS), this::released);
            current.put(calls, vm);
            return vm;
        }
    }

    private void released(HvfVm vm) {
        synchronized (PROCESS_VM) {
            current.values().remove(vm);
        }
    }

    @Override
    public void close() { }
}
