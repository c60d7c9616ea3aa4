package dev.jkrun.vmm.builder;

import dev.jkrun.arch.aarch64.Aarch64Diagnosis;
import dev.jkrun.arch.aarch64.DeviceTree;
import dev.jkrun.arch.aarch64.Layout;
import dev.jkrun.devices.bus.Bus;
import dev.jkrun.devices.legacy.DebugPort;
import dev.jkrun.devices.legacy.Pl031;
import dev.jkrun.hypervisor.Arm64Vm;
import dev.jkrun.hypervisor.Hypervisor;
import dev.jkrun.loader.Arm64Image;
import dev.jkrun.loader.Initramfs;
import dev.jkrun.loader.KernelFormatException;
import dev.jkrun.loader.KernelPayload;
import dev.jkrun.loader.Kernels;
import dev.jkrun.loader.KrunfwBundle;
import dev.jkrun.loader.RawKernel;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.memory.MemoryRegion;
import dev.jkrun.vmm.ConfigurationException;
import dev.jkrun.vmm.MachineConfig;
import dev.jkrun.vmm.VmConfig;
import dev.jkrun.vmm.vstate.DebugLog;
import dev.jkrun.vmm.vstate.VmControl;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * aarch64, laid out as libkrun does (src/arch/src/aarch64, src/vmm/src/builder.rs), on KVM or Hypervisor.framework
 * alike (each through its {@link Arm64Vm}): RAM from 2 GiB with the kernel Image at its start, the device tree in
 * RAM's last 2 MiB and the initramfs below it, the hypervisor's GICv3 (GICv2 where KVM has no v3) just below the
 * device area, the 8250-compatible serial consoles and a PL031 RTC as MMIO devices, virtio-mmio devices each on an
 * SPI of its own and named in the device tree (not the command line), and PSCI: the boot CPU starts at the kernel's
 * entry with X0 at the device tree, the others powered off until the guest starts them with CPU_ON; SYSTEM_OFF and
 * SYSTEM_RESET reach jkrun as system events (KVM answers PSCI in the kernel, the hvf module in jkrun).
 */
final class Aarch64Platform implements Platform {
    /** The most virtio-mmio devices one aarch64 VM takes: each has an SPI of its own. */
    static final int MAX_DEVICES = 64;
    static final MmioPlacement.Space DEVICES = new MmioPlacement.Space(Layout.VIRTIO_START, Layout.VIRTIO_END,
            Layout.MMIO_SLOT_SIZE, Layout.FIRST_VIRTIO_IRQ, Layout.LAST_VIRTIO_IRQ, MAX_DEVICES);
    private static final int EM_AARCH64 = 183;

    private final VmConfig config;
    private final MachineConfig machine;
    private KernelPayload payload;
    private long ramEnd;
    private Optional<long[]> initrd = Optional.empty();
    private Arm64Vm arm64;
    private DeviceTree.GicVersion gicVersion;
    private final List<DeviceTree.Device> serials = new ArrayList<>();
    private DeviceTree.Device rtc;
    private String cmdline = "";
    private List<MmioPlacement.Slot> devices = List.of();

    Aarch64Platform(VmConfig config) {
        this.config = config;
        this.machine = config.machine();
    }

    @Override
    public MmioPlacement.Space deviceSpace() { return DEVICES; }

    @Override
    public void load(PrintStream progress) {
        if (config.kernel().firmware().isPresent()) {
            throw new ConfigurationException("kernel.firmware", "firmware boot is not supported on aarch64 yet");
        }
        if (machine.vcpus() > Layout.MAX_VCPUS) {
            throw new ConfigurationException("machine.vcpus", machine.vcpus() + " vCPUs: at most " + Layout.MAX_VCPUS
                    + " on aarch64 (their GIC redistributors lie below the device area)");
        }
        if (config.kernel().kernel().isPresent()) {
            payload = Kernels.open(config.kernel().kernel().get(), config.kernel().kernelFormat(), machine.memoryBytes());
        } else {
            // no fetch here: the package jkrun fetches holds an x86_64 build; an aarch64 one is the user's (distributions)
            java.nio.file.Path lib = dev.jkrun.loader.krunfw.KrunfwLocator.find(config.kernel().krunfw().orElse(null),
                    System.getenv()).map(dev.jkrun.loader.krunfw.KrunfwLocator.Found::path).orElseThrow(() ->
                    new ConfigurationException("kernel.krunfw", "no aarch64 libkrunfw found (jkrun fetches only the"
                            + " x86_64 build): install your distribution's libkrunfw, name it (--krunfw, JKRUN_KRUNFW),"
                            + " or boot a kernel of your own (--kernel IMAGE --initramfs FILE)"));
            if (dev.jkrun.loader.krunfw.KrunfwLocator.elfMachine(lib) != EM_AARCH64) {
                throw new ConfigurationException("kernel.krunfw", lib + " is not an aarch64 libkrunfw (ELF machine "
                        + dev.jkrun.loader.krunfw.KrunfwLocator.elfMachine(lib) + ", not 183)");
            }
            payload = KrunfwBundle.load(lib);
        }
        if (!(payload instanceof Arm64Image || payload instanceof KrunfwBundle || payload instanceof RawKernel)) {
            throw new ConfigurationException("kernel", payload.description() + " is not an aarch64 kernel (an arm64 Image,"
                    + " gzip-compressed or not, a raw image, or libkrunfw's aarch64 bundle)");
        }
        long size = machine.memoryBytes();
        if (size > Layout.RAM_LIMIT - Layout.RAM_START) {
            throw new ConfigurationException("machine.memory", "at most " + ((Layout.RAM_LIMIT - Layout.RAM_START) >> 20)
                    + " MiB on aarch64");
        }
        ramEnd = Layout.RAM_START + size;
        if (payload.loadAddress() < Layout.RAM_START || payload.end() > Layout.fdtAddress(ramEnd)) {
            throw new ConfigurationException("machine.memory", payload.description() + " does not fit in "
                    + (size >> 20) + " MiB of RAM beside the device tree: give the VM more memory");
        }
    }

    @Override
    public List<MemoryRegion> memoryRegions() {
        return List.of(new MemoryRegion(GuestAddress.of(Layout.RAM_START), ramEnd - Layout.RAM_START));
    }

    @Override
    public Optional<KernelPayload> kernel() { return Optional.of(payload); }

    @Override
    public IrqLines setUpVm(Hypervisor hypervisor, Hypervisor.Vm hvVm, List<AutoCloseable> resources) {
        arm64 = hvVm.arm64().orElseThrow(() -> new ConfigurationException("machine", hypervisor.name()
                + " gives this host no aarch64 VMs"));
        int n = machine.vcpus();
        try {
            gicVersion = arm64.createGic(n, new Arm64Vm.GicPlacement(Layout.GIC_DIST, Layout.GIC_DIST_SIZE,
                    Layout.gicRedistributors(n), Layout.GIC_REDIST_SIZE_PER_CPU, Layout.GIC_V2_CPU, Layout.GIC_NR_IRQS),
                    resources) == Arm64Vm.Gic.V3 ? DeviceTree.GicVersion.V3 : DeviceTree.GicVersion.V2;
        } catch (IllegalArgumentException e) { // no GIC for this many vCPUs
            throw new ConfigurationException("machine.vcpus", e.getMessage());
        } catch (IllegalStateException e) { // what the host lacks (PSCI 0.2, a GIC)
            throw new ConfigurationException("machine", e.getMessage());
        }
        Arm64Vm vm = arm64;
        return new IrqLines() {
            @Override
            public void set(int line, boolean high) { vm.setSpi(line, high); }

            @Override
            public int gsi(int line) { return vm.irqfdGsi(line); }
        };
    }

    private long[] gicRegions() {
        int n = machine.vcpus();
        return gicVersion == DeviceTree.GicVersion.V3
                ? new long[] {Layout.GIC_DIST, Layout.GIC_DIST_SIZE, Layout.gicRedistributors(n), Layout.GIC_REDIST_SIZE_PER_CPU * n}
                : new long[] {Layout.GIC_DIST, Layout.GIC_DIST_SIZE, Layout.GIC_V2_CPU, Layout.GIC_V2_CPU_SIZE};
    }

    @Override
    public void writePayload(GuestMemory memory) {
        payload.writeInto(memory);
        if (config.kernel().initramfs().isEmpty()) {
            return;
        }
        Initramfs initramfs;
        try {
            initramfs = Initramfs.open(config.kernel().initramfs().get());
        } catch (KernelFormatException e) {
            throw new ConfigurationException("kernel.initramfs", e.getMessage());
        }
        long size = initramfs.size();
        long at = (Layout.fdtAddress(ramEnd) - size) & ~0xFFFL; // right below the device tree, page-aligned
        if (size > Layout.fdtAddress(ramEnd) - payload.end() || at < payload.end()) {
            throw new ConfigurationException("kernel.initramfs", initramfs.path() + " (" + size + " bytes) does not fit"
                    + " in guest RAM between the kernel (ending at 0x" + Long.toHexString(payload.end())
                    + ") and the device tree: give the VM more memory");
        }
        initramfs.writeInto(memory, at);
        initrd = Optional.of(new long[] {at, at + size});
    }

    @Override
    public void attachLegacyDevices(Bus pio, Bus mmio, IrqLines lines, VmControl control, DebugLog debugLog,
                                    List<AutoCloseable> resources) {
        int n = config.serialConsoles().size();
        long[] bases = new long[Layout.MAX_SERIALS];
        int[] irqs = new int[Layout.MAX_SERIALS];
        for (int i = 0; i < bases.length; i++) {
            bases[i] = Layout.SERIAL_START + Layout.MMIO_SLOT_SIZE * i;
            irqs[i] = Layout.FIRST_SERIAL_IRQ + i;
        }
        SerialPorts.attach(config.serialConsoles(), lines, mmio, bases, irqs, resources);
        for (int i = 0; i < n; i++) {
            serials.add(new DeviceTree.Device(bases[i], Layout.MMIO_SLOT_SIZE, irqs[i], true));
        }
        if (n == 0) { // the first UART's place without a UART: early output only, as COM1 on x86
            mmio.register(Layout.SERIAL_START, 8, new DebugPort(debugLog::accept));
        }
        mmio.register(Layout.RTC, Layout.MMIO_SLOT_SIZE, new Pl031());
        rtc = new DeviceTree.Device(Layout.RTC, Layout.MMIO_SLOT_SIZE, Layout.RTC_IRQ, true);
        if (config.testExitPort()) {
            mmio.register(Layout.TEST_EXIT, 4, VmmBuilder.testExitDevice(control));
        }
    }

    @Override
    public SharedMemorySpace sharedMemorySpace() {
        return new SharedMemorySpace(Layout.sharedMemoryStart(ramEnd), Layout.SHM_LIMIT, Layout.SHM_ALIGNMENT);
    }

    /** None: the device tree names every device. */
    @Override
    public List<String> deviceWords(List<MmioPlacement.Slot> devices) { return List.of(); }

    /** Remembered: the device tree is written once the vCPUs exist and their MPIDRs are known. */
    @Override
    public void writeBootData(GuestMemory memory, String cmdline, List<MmioPlacement.Slot> devices, Set<Integer> levelLines) {
        if (cmdline.indexOf('\0') >= 0) {
            throw new ConfigurationException("kernel.cmdline", "a NUL in the command line");
        }
        this.cmdline = cmdline;
        this.devices = devices;
        this.levelLines = Set.copyOf(levelLines);
        this.memory = memory;
    }

    private Set<Integer> levelLines = Set.of();

    private GuestMemory memory;

    @Override
    public void configureVcpu(Hypervisor.Vcpu vcpu, int id, int count) {
        arm64.initVcpu(vcpu, id, payload.entry(), Layout.fdtAddress(ramEnd));
    }

    /** Completes the GIC (now that every vCPU exists) and writes the device tree with the vCPUs' MPIDRs. */
    @Override
    public void vcpusCreated(List<Hypervisor.Vcpu> vcpus) {
        arm64.vcpusCreated(vcpus);
        List<Long> mpidrs = new ArrayList<>();
        for (Hypervisor.Vcpu v : vcpus) {
            mpidrs.add(arm64.mpidr(v));
        }
        List<DeviceTree.Device> virtio = devices.stream()
                .map(s -> new DeviceTree.Device(s.base(), s.size(), s.irq(), levelLines.contains(s.irq()))).toList();
        byte[] fdt;
        try {
            fdt = DeviceTree.build(new DeviceTree.Machine(Layout.RAM_START, ramEnd - Layout.RAM_START, mpidrs, cmdline,
                    initrd, gicVersion, gicRegions(), virtio, serials, Optional.ofNullable(rtc)));
        } catch (IllegalStateException e) { // only a command line of megabytes makes the tree outgrow its 2 MiB
            throw new ConfigurationException("kernel.cmdline", e.getMessage());
        }
        memory.write(GuestAddress.of(Layout.fdtAddress(ramEnd)), fdt);
    }

    @Override
    public dev.jkrun.hypervisor.VcpuDiagnosis diagnosis() { return Aarch64Diagnosis.INSTANCE; }
}
