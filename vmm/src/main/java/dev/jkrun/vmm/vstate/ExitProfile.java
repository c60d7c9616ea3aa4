package dev.jkrun.vmm.vstate;

import dev.jkrun.kvm.Vcpu;
import java.util.concurrent.atomic.LongAdder;

/**
 * Where the time of the vCPU loop's port and MMIO exits goes, for benchmarks ({@code -Djkrun.exitProfile=true},
 * {@link Vcpu#PROFILE}): KVM_RUN (the ioctl through JNR-FFI, the kernel and the guest until its next exit), decoding
 * the exit from kvm_run, and dispatching it (bus lookup, the device, answering a read). All VMs of the JVM together.
 */
public final class ExitProfile {
    private static final LongAdder EXITS = new LongAdder(), IOCTL = new LongAdder(), DECODE = new LongAdder(),
            DISPATCH = new LongAdder();

    private ExitProfile() {}

    /** Totals so far: {exits, ioctl ns, decode ns, dispatch ns}. */
    public static long[] snapshot() { return new long[] {EXITS.sum(), IOCTL.sum(), DECODE.sum(), DISPATCH.sum()}; }

    public static void reset() {
        EXITS.reset();
        IOCTL.reset();
        DECODE.reset();
        DISPATCH.reset();
    }

    static void add(long enterStart, long ioctlReturned, long decoded, long dispatched) {
        EXITS.increment();
        IOCTL.add(ioctlReturned - enterStart);
        DECODE.add(decoded - ioctlReturned);
        DISPATCH.add(dispatched - decoded);
    }
}
