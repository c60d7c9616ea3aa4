package dev.jkrun.vmm.builder;

import dev.jkrun.arch.aarch64.Aarch64Diagnosis;
import dev.jkrun.arch.aarch64.DeviceTree;
import dev.jkrun.arch.aarch64.Layout;
import dev.jkrun.devices.bus.Bus;
import dev.jkrun.devices.legacy.DebugPort;
import dev.jkrun.devices.legacy.Pl031;
import dev.jkrun.hypervisor.Hypervisor;
import dev.jkrun.kvm.Arm64Regs;
import dev.jkrun.kvm.KvmCap;
import dev.jkrun.kvm.KvmDevice;
import dev.jkrun.kvm.Vcpu;
import dev.jkrun.kvm.Vm;
import dev.jkrun.libc.NativeCallException;
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
 * aarch64 on KVM, laid out as libkrun does (src/arch/src/aarch64, src/vmm/src/builder.rs): RAM from 2 GiB with the
 * kernel Image at its start, the device tree in RAM's last 2 MiB and the initramfs below it, an in-kernel GICv3
 * (GICv2 where the host has no v3) just below the device area, the 8250-compatible serial consoles and a PL031 RTC
 * as MMIO devices, virtio-mmio devices each on an SPI of its own and named in the device tree (not the command
 * line), and every vCPU started through KVM_ARM_VCPU_INIT with PSCI 0.2: the boot CPU at the kernel's entry with X0
 * at the device tree, the others powered off until the guest starts them with PSCI CPU_ON. PSCI SYSTEM_OFF and
 * SYSTEM_RESET reach jkrun as KVM_EXIT_SYSTEM_EVENT.
 */
final class Aarch64Platform implements Platform {
    /** The most virtio-mmio devices one aarch64 VM takes: each has an SPI of its own. */
    static final int MAX_DEVICES = 64;
    static final MmioPlacement.Space DEVICES = new MmioPlacement.Space(Layout.VIRTIO_START, Layout.VIRTIO_END,
            Layout.MMIO_SLOT_SIZE, Layout.FIRST_VIRTIO_IRQ, Layout.LAST_VIRTIO_IRQ, MAX_DEVICES);
    /** KVM_DEV_ARM_VGIC_GRP_* and their attributes (arm-vgic-v3.rst). */
    private static final int VGIC_GRP_ADDR = 0, VGIC_GRP_NR_IRQS = 3, VGIC_GRP_CTRL = 4;
    private static final long VGIC_V2_ADDR_DIST = 0, VGIC_V2_ADDR_CPU = 1, VGIC_V3_ADDR_DIST = 2,
            VGIC_V3_ADDR_REDIST = 3, VGIC_CTRL_INIT = 0;
    private static final int EM_AARCH64 = 183;
    /** KVM_IRQ_LINE's irq field for an SPI: type 1 in bits 24–27, the INTID in bits 0–15. */
    private static final int IRQ_TYPE_SPI = 1 << 24;

    private final VmConfig config;
    private final MachineConfig machine;
    private KernelPayload payload;
    private long ramEnd;
    private Optional<long[]> initrd = Optional.empty();
    private Vm vm;
    private KvmDevice gic;
    private DeviceTree.GicVersion gicVersion;
    private Vm.ArmVcpuInit vcpuInit;
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
        if (!(hvVm instanceof Vm kvmVm)) {
            throw new ConfigurationException("machine", "aarch64 guests run on KVM here, not " + hypervisor.name());
        }
        vm = kvmVm;
        if (vm.checkExtension(KvmCap.ARM_PSCI_0_2) <= 0) {
            throw new ConfigurationException("machine", "this host's KVM has no PSCI 0.2 (KVM_CAP_ARM_PSCI_0_2)");
        }
        if (vm.checkExtension(KvmCap.ARM_NISV_TO_USER) > 0) { // a data abort without syndrome becomes a stop reason
            vm.enableCap(KvmCap.ARM_NISV_TO_USER);
        }
        vcpuInit = vm.armPreferredTarget().with(Arm64Regs.FEATURE_PSCI_0_2);
        createGic(resources);
        return new IrqLines() {
            @Override
            public void set(int line, boolean high) { vm.irqLine(IRQ_TYPE_SPI | line, high); }

            /** KVM's default arm64 routing: GSI n is SPI n, INTID 32 + n. */
            @Override
            public int gsi(int line) { return line - 32; }
        };
    }

    /**
     * The in-kernel GICv3, or GICv2 where the host cannot make a v3 at all (a vGIC, once made, stays with the VM even
     * when its fd is closed: a v3 that fails later is an error, not a reason to try v2). The device goes into
     * {@code resources} as soon as it exists; the vCPUs must exist before it is initialized.
     */
    private void createGic(List<AutoCloseable> resources) {
        int n = machine.vcpus();
        try {
            gic = vm.createDevice(KvmDevice.ARM_VGIC_V3);
            gicVersion = DeviceTree.GicVersion.V3;
        } catch (NativeCallException e) {
            if (n > 8) {
                throw new ConfigurationException("machine.vcpus", "this host has no GICv3 (" + e.getMessage()
                        + "), and a GICv2 serves at most 8 vCPUs, not " + n);
            }
            try {
                gic = vm.createDevice(KvmDevice.ARM_VGIC_V2);
            } catch (RuntimeException v2) {
                v2.addSuppressed(e);
                throw v2;
            }
            gicVersion = DeviceTree.GicVersion.V2;
        }
        resources.add(gic);
        if (gicVersion == DeviceTree.GicVersion.V3) {
            gic.setAttr(VGIC_GRP_ADDR, VGIC_V3_ADDR_DIST, Layout.GIC_DIST);
            gic.setAttr(VGIC_GRP_ADDR, VGIC_V3_ADDR_REDIST, Layout.gicRedistributors(n));
        } else {
            gic.setAttr(VGIC_GRP_ADDR, VGIC_V2_ADDR_DIST, Layout.GIC_DIST);
            gic.setAttr(VGIC_GRP_ADDR, VGIC_V2_ADDR_CPU, Layout.GIC_V2_CPU);
        }
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
    public void configureVcpu(Hypervisor.Vcpu hvVcpu, int id, int count) {
        Vcpu vcpu = (Vcpu) hvVcpu; // setUpVm made sure this is KVM
        vcpu.armInit(id == 0 ? vcpuInit : vcpuInit.with(Arm64Regs.FEATURE_POWER_OFF));
        vcpu.setOneReg(Arm64Regs.PSTATE, Arm64Regs.PSTATE_EL1H_DAIF_MASKED);
        if (id == 0) {
            vcpu.setOneReg(Arm64Regs.PC, payload.entry());
            vcpu.setOneReg(Arm64Regs.x(0), Layout.fdtAddress(ramEnd));
            for (int r = 1; r <= 3; r++) {
                vcpu.setOneReg(Arm64Regs.x(r), 0); // booting.rst: x1–x3 reserved, 0
            }
        }
    }

    /** Initializes the GIC (now that every vCPU exists) and writes the device tree with the vCPUs' MPIDRs. */
    @Override
    public void vcpusCreated(List<Hypervisor.Vcpu> vcpus) {
        gic.setAttr32(VGIC_GRP_NR_IRQS, 0, Layout.GIC_NR_IRQS);
        gic.control(VGIC_GRP_CTRL, VGIC_CTRL_INIT);
        List<Long> mpidrs = new ArrayList<>();
        for (Hypervisor.Vcpu v : vcpus) {
            mpidrs.add(((Vcpu) v).getOneReg(Arm64Regs.MPIDR_EL1) & 0xFF_00FF_FFFFL);
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
