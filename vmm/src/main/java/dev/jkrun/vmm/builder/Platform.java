package dev.jkrun.vmm.builder;

import dev.jkrun.devices.bus.Bus;
import dev.jkrun.hypervisor.Hypervisor;
import dev.jkrun.hypervisor.VcpuDiagnosis;
import dev.jkrun.loader.KernelPayload;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.memory.MemoryRegion;
import dev.jkrun.vmm.ConfigurationException;
import dev.jkrun.vmm.VmConfig;
import dev.jkrun.vmm.vstate.DebugLog;
import dev.jkrun.vmm.vstate.VmControl;
import dev.jkrun.vmm.vstate.Vmm;
import java.io.PrintStream;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * What differs between architectures when a {@link VmConfig} becomes a {@link Vmm} (Firecracker's and libkrun's
 * {@code arch} modules draw the same line). {@link VmmBuilder} makes one platform object per VM and calls it in this
 * order, the generic steps in between:
 * <ol>
 *   <li>{@link #deviceSpace()}: the device count is checked before anything is opened;</li>
 *   <li>{@link #load}: the kernel (or firmware) is read, and {@link #memoryRegions()} says where RAM goes;</li>
 *   <li>{@link #setUpVm}: the interrupt controller and timers, and how devices drive lines ({@link IrqLines});</li>
 *   <li>{@link #writePayload}: kernel and initramfs into guest memory;</li>
 *   <li>{@link #attachLegacyDevices}: what every VM of the architecture has beside virtio;</li>
 *   <li>the virtio devices, each at its {@link MmioPlacement.Slot} of {@link #deviceSpace()};</li>
 *   <li>{@link #writeBootData}: command line and boot structures (x86: zero page, MP table, SMBIOS);</li>
 *   <li>{@link #configureVcpu} for each vCPU, then {@link #vcpusCreated};</li>
 *   <li>{@link #finish} on the built {@link Vmm}.</li>
 * </ol>
 * The platform also says how to read its vCPUs' registers ({@link #diagnosis()}: stateless, so that a running VM
 * keeps nothing of the build, such as the kernel image, alive).
 */
interface Platform {

    /** The platform of the host this JVM runs on; a clear error where jkrun has none. */
    static Platform forHost(VmConfig config) {
        String arch = System.getProperty("os.arch");
        return switch (arch) {
            case "amd64", "x86_64" -> new X86_64Platform(config);
            case "aarch64" -> new Aarch64Platform(config);
            default -> throw new ConfigurationException("machine", "jkrun has no platform for the host architecture "
                    + arch + " (x86_64 and aarch64)");
        };
    }

    /** Where virtio-mmio devices go and how many fit. */
    MmioPlacement.Space deviceSpace();

    /** Reads the kernel or firmware the configuration names (progress: a fetch of libkrunfw). */
    void load(PrintStream progress);

    /** Guest RAM (and any other memory slot the boot needs), ascending: valid after {@link #load}. */
    List<MemoryRegion> memoryRegions();

    /** The loaded kernel, when it is one (a firmware finds its own way). */
    Optional<KernelPayload> kernel();

    /**
     * Creates the interrupt controller (and timers) on {@code vm}, before any vCPU; returns its lines. What it opens
     * goes into {@code resources} (closed with the VM).
     */
    IrqLines setUpVm(Hypervisor hypervisor, Hypervisor.Vm vm, List<AutoCloseable> resources);

    /** Writes kernel, initramfs (or firmware) into guest memory. */
    void writePayload(GuestMemory memory);

    /** Devices every VM of this architecture has beside virtio, on the port-I/O or MMIO bus. */
    void attachLegacyDevices(Bus pio, Bus mmio, IrqLines lines, VmControl control, DebugLog debugLog,
                             List<AutoCloseable> resources);

    /**
     * Where the guest-physical windows of DAX shares go: from {@code start} (above RAM), each aligned to
     * {@code alignment}, all below {@code limit}.
     */
    record SharedMemorySpace(long start, long limit, long alignment) {}

    SharedMemorySpace sharedMemorySpace();

    /** The command-line words that tell the kernel where {@code devices} are (none where a device tree does). */
    List<String> deviceWords(List<MmioPlacement.Slot> devices);

    /**
     * Command line and boot structures. {@code cmdline} is complete (device words included); {@code levelLines} are
     * the interrupt lines several devices share (level-triggered).
     */
    void writeBootData(GuestMemory memory, String cmdline, List<MmioPlacement.Slot> devices, Set<Integer> levelLines);

    /** Sets up vCPU {@code id} of {@code count} to start the kernel (or firmware). */
    void configureVcpu(Hypervisor.Vcpu vcpu, int id, int count);

    /** After every vCPU exists (an aarch64 GIC is initialized only then). */
    default void vcpusCreated(List<Hypervisor.Vcpu> vcpus) { }

    /** How a vCPU's whereabouts are read, for stop reasons and samples (holds no state of this build). */
    VcpuDiagnosis diagnosis();

    /** Hooks the built VM may need (x86's split irqchip: end-of-interrupt to its IOAPIC). */
    default void finish(Vmm vmm) { }
}
