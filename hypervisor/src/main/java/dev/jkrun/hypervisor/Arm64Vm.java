package dev.jkrun.hypervisor;

import java.util.List;

/**
 * What the aarch64 platform asks of a hypervisor beyond {@link Hypervisor.Vm}: an interrupt controller at the
 * platform's addresses, its SPIs, each vCPU's start state and MPIDR. KVM and Hypervisor.framework each implement it,
 * so the platform (layout, device tree, boot protocol) is one piece of code for both.
 */
public interface Arm64Vm {
    /** The GIC architecture the hypervisor gave the VM (the device tree names it). */
    enum Gic { V2, V3 }

    /**
     * Where the platform puts the GIC's frames: the distributor, the GICv3 redistributors (one frame pair of
     * {@code redistributorSizePerCpu} per vCPU, from {@code redistributors}) or the GICv2 CPU interface, and the
     * INTIDs the GIC serves ({@code nrIrqs}, SGIs and PPIs included).
     */
    record GicPlacement(long distributor, long distributorSize, long redistributors, long redistributorSizePerCpu,
                        long v2CpuInterface, int nrIrqs) {}

    /**
     * Creates the interrupt controller for {@code vcpus} vCPUs, before any vCPU exists; what it opens goes into
     * {@code resources}. Throws {@link IllegalArgumentException} where the host's GIC cannot serve that many vCPUs,
     * {@link IllegalStateException} naming anything else the host lacks.
     */
    Gic createGic(int vcpus, GicPlacement at, List<AutoCloseable> resources);

    /** Drives SPI {@code intid} (32 and up) to a level. */
    void setSpi(int intid, boolean level);

    /** The number an irqfd names SPI {@code intid} by (used only where {@link Hypervisor.Vm#ioEvents()} exist). */
    default int irqfdGsi(int intid) { return intid - 32; }

    /**
     * Prepares vCPU {@code id}: the boot CPU (0) starts at {@code entry} in EL1h with interrupts masked and
     * {@code x0} in X0 (X1–X3 zero, as booting.rst asks); the others stay powered off until the guest starts them
     * with PSCI CPU_ON.
     */
    void initVcpu(Hypervisor.Vcpu vcpu, int id, long entry, long x0);

    /** After every vCPU exists (KVM initializes its vGIC only then). */
    default void vcpusCreated(List<Hypervisor.Vcpu> vcpus) { }

    /** The MPIDR of {@code vcpu} without its RES1 bit: the affinity the device tree's cpu node names. */
    long mpidr(Hypervisor.Vcpu vcpu);
}
