package dev.jkrun.vmm.builder;

import dev.jkrun.arch.x86_64.BootCpu;
import dev.jkrun.arch.x86_64.Cmdline;
import dev.jkrun.arch.x86_64.Cpuid;
import dev.jkrun.arch.x86_64.Gdt;
import dev.jkrun.arch.x86_64.Layout;
import dev.jkrun.arch.x86_64.MpTable;
import dev.jkrun.arch.x86_64.PageTables;
import dev.jkrun.arch.x86_64.RamLayout;
import dev.jkrun.arch.x86_64.Smbios;
import dev.jkrun.arch.x86_64.X86Diagnosis;
import dev.jkrun.arch.x86_64.ZeroPage;
import dev.jkrun.devices.bus.Bus;
import dev.jkrun.devices.legacy.Cmos;
import dev.jkrun.devices.legacy.DebugPort;
import dev.jkrun.devices.legacy.I8042;
import dev.jkrun.devices.legacy.IoApic;
import dev.jkrun.hypervisor.Hypervisor;
import dev.jkrun.kvm.CpuidEntry;
import dev.jkrun.kvm.Kvm;
import dev.jkrun.kvm.LapicState;
import dev.jkrun.kvm.Sregs;
import dev.jkrun.kvm.Vcpu;
import dev.jkrun.kvm.Vm;
import dev.jkrun.loader.BzImage;
import dev.jkrun.loader.Initramfs;
import dev.jkrun.loader.KernelFormatException;
import dev.jkrun.loader.KernelPayload;
import dev.jkrun.loader.Kernels;
import dev.jkrun.loader.KrunfwBundle;
import dev.jkrun.loader.RawKernel;
import dev.jkrun.loader.krunfw.Krunfw;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.memory.MemoryRegion;
import dev.jkrun.vmm.ConfigurationException;
import dev.jkrun.vmm.KernelConfig;
import dev.jkrun.vmm.MachineConfig;
import dev.jkrun.vmm.VmConfig;
import dev.jkrun.vmm.vstate.DebugLog;
import dev.jkrun.vmm.vstate.VmControl;
import dev.jkrun.vmm.vstate.Vmm;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * x86_64 on KVM, as libkrun builds it (src/arch/src/x86_64 and src/vmm/src/builder.rs): RAM below the 0xC000_0000
 * MMIO gap and above 4 GiB, the in-kernel PIC/IOAPIC and PIT (or the split irqchip with jkrun's IOAPIC), the PC's
 * i8042, CMOS and COM ports, virtio-mmio devices from 0xD000_0000 on IOAPIC pins 5–23 named on the command line, the
 * zero page, MP table and SMBIOS, and vCPUs started in 64-bit mode at the kernel's entry (or at the reset vector of
 * a firmware).
 */
public final class X86_64Platform implements Platform {
    /** The most virtio-mmio devices one x86_64 VM takes. */
    public static final int MAX_DEVICES = 64;
    /** 4 KiB windows from 0xD000_0000 (below the IOAPIC), IOAPIC pins 5–23. */
    public static final MmioPlacement.Space DEVICES = new MmioPlacement.Space(Layout.MMIO_START, Layout.IOAPIC,
            Layout.MMIO_SLOT_SIZE, Layout.FIRST_IRQ, Layout.LAST_IRQ, MAX_DEVICES);
    /** The test-guest toolkit's exit port. */
    private static final long TEST_EXIT_PORT = 0xF4;
    /** Where a firmware image ends: 4 GiB, so that its last 16 bytes hold the reset vector. */
    static final long FIRMWARE_END = 0x1_0000_0000L;

    private final VmConfig config;
    private final MachineConfig machine;
    private byte[] firmware;
    private KernelPayload payload;
    private RamLayout layout;
    private List<MemoryRegion> regions;
    private Kvm kvm;
    private IoApic ioapic;
    private List<CpuidEntry> supportedCpuid;

    X86_64Platform(VmConfig config) {
        this.config = config;
        this.machine = config.machine();
    }

    @Override
    public MmioPlacement.Space deviceSpace() { return DEVICES; }

    @Override
    public void load(PrintStream progress) {
        firmware = config.kernel().firmware().map(X86_64Platform::readFirmware).orElse(null);
        payload = firmware != null ? null : loadKernel(config, progress);
        if (payload instanceof dev.jkrun.loader.Arm64Image) {
            throw new ConfigurationException("kernel", payload.description() + " is an arm64 kernel; this host is x86_64");
        }
        // the bundle and a raw kernel lie in RAM of their own, as libkrun maps them: the guest's memory comes after
        boolean ownRam = payload instanceof KrunfwBundle || payload instanceof RawKernel;
        layout = RamLayout.of(machine.memoryBytes(), ownRam ? payload.end() : 0);
        List<MemoryRegion> r = new ArrayList<>(layout.regions());
        if (firmware != null) { // its own slot, ending at 4 GiB, where the reset vector (0xFFFF_FFF0) lies
            long slot = (firmware.length + 0xFFFL) & ~0xFFFL; // whole pages
            r.add(new MemoryRegion(new GuestAddress(FIRMWARE_END - slot), slot));
            r.sort(Comparator.comparingLong(m -> m.start().value()));
        }
        regions = List.copyOf(r);
    }

    @Override
    public List<MemoryRegion> memoryRegions() { return regions; }

    @Override
    public Optional<KernelPayload> kernel() { return Optional.ofNullable(payload); }

    @Override
    public IrqLines setUpVm(Hypervisor hypervisor, Hypervisor.Vm hvVm, List<AutoCloseable> resources) {
        if (!(hypervisor instanceof Kvm k) || !(hvVm instanceof Vm vm)) {
            throw new ConfigurationException("machine", "x86_64 guests run on KVM only, not " + hypervisor.name());
        }
        kvm = k;
        vm.setTssAddress(Layout.TSS_ADDRESS);
        if (machine.splitIrqchip()) {
            ioapic = SplitIrqchip.enable(kvm, vm);
        } else {
            vm.createIrqchip();
            vm.createPit2();
        }
        // lines jkrun drives as levels (shared virtio lines, UARTs): KVM's IOAPIC pins, or jkrun's
        return ioapic != null ? IrqLines.of(ioapic) : IrqLines.inKernel(vm);
    }

    @Override
    public void writePayload(GuestMemory memory) {
        if (firmware != null) {
            memory.write(new GuestAddress(FIRMWARE_END - firmware.length), firmware);
        } else {
            payload.writeInto(memory);
            initrd = loadInitramfs(memory);
        }
    }

    /** {address, size} of the initramfs, or {0, 0}. */
    private long[] initrd = {0, 0};

    @Override
    public void attachLegacyDevices(Bus pio, Bus mmio, IrqLines lines, VmControl control, DebugLog debugLog,
                                    List<AutoCloseable> resources) {
        if (ioapic != null) {
            mmio.register(Layout.IOAPIC, IoApic.WINDOW, ioapic);
        }
        pio.register(0x60, 5, new I8042(control::guestReset));
        pio.register(0x70, 2, new Cmos(Math.min(layout.lastAddress(), Layout.MMIO_START),
                Math.max(0, layout.lastAddress() - Layout.MMIO_GAP_END)));
        if (!SerialPorts.com1(config.serialConsoles())) {
            pio.register(0x3F8, 8, new DebugPort(debugLog::accept)); // COM1 without a UART: early output only
        }
        SerialPorts.attach(config.serialConsoles(), lines, pio, resources);
        if (config.testExitPort()) {
            pio.register(TEST_EXIT_PORT, 4, VmmBuilder.testExitDevice(control));
        }
    }

    @Override
    public SharedMemorySpace sharedMemorySpace() { return sharedMemorySpace(layout.lastAddress()); }

    /** DAX windows from the first GiB boundary above RAM and 4 GiB, below 512 GiB (libkrun's layout). */
    static SharedMemorySpace sharedMemorySpace(long ramEnd) {
        return new SharedMemorySpace(Layout.sharedMemoryStart(ramEnd), Layout.SHM_LIMIT, Layout.SHM_ALIGNMENT);
    }

    /** {@code virtio_mmio.device=4K@0xd0000000:5} for each device. */
    @Override
    public List<String> deviceWords(List<MmioPlacement.Slot> devices) {
        return devices.stream().map(X86_64Platform::word).toList();
    }

    /**
     * The kernel's description of one device: {@code virtio_mmio.device=4K@0xd0000000:5}. Its base goes through the
     * kernel's sscanf("%lli"), so no memparse suffix shortens it; only the size does ("4K").
     */
    static String word(MmioPlacement.Slot slot) {
        String hex = Long.toHexString(slot.base());   // as %08x, without a Formatter on every VM's start path
        return "virtio_mmio.device=4K@0x" + "0".repeat(Math.max(0, 8 - hex.length())) + hex + ":" + slot.irq();
    }

    @Override
    public void writeBootData(GuestMemory memory, String cmdline, List<MmioPlacement.Slot> devices, Set<Integer> levelLines) {
        if (firmware == null) { // a firmware finds its own way (CMOS, MP table, SMBIOS); a kernel is handed these
            Cmdline.write(memory, cmdline);
            ZeroPage.write(memory, layout, Layout.CMDLINE, cmdline.length() + 1, initrd[0], initrd[1]);
            Gdt.write(memory);
            PageTables.write(memory, payload.end() > 1L << 30 ? 4 : 1);
        }
        MpTable.write(memory, machine.vcpus(), levelLines);
        Smbios.write(memory, config.smbiosOemStrings());
    }

    /** libkrun §1.8: CPUID, MSRs, registers, FPU, long-mode sregs, LAPIC LINT0/1 — for every vCPU. */
    @Override
    public void configureVcpu(Hypervisor.Vcpu hvVcpu, int id, int count) {
        Vcpu vcpu = (Vcpu) hvVcpu; // setUpVm made sure this is KVM
        if (supportedCpuid == null) {
            supportedCpuid = kvm.supportedCpuid();
        }
        vcpu.setCpuid(cpuid(supportedCpuid, id, count));
        if (firmware != null) { // libkrun: CPUID only; the rest stays KVM's reset state (CS:IP F000:FFF0)
            return;
        }
        vcpu.setMsrs(BootCpu.msrs());
        vcpu.setRegs(BootCpu.regs(payload.entry()));
        vcpu.setFpu(BootCpu.fpu());
        Sregs sregs = vcpu.getSregs();
        BootCpu.longModeSregs(sregs);
        vcpu.setSregs(sregs);
        LapicState lapic = vcpu.getLapic();
        BootCpu.setLint(lapic);
        vcpu.setLapic(lapic);
    }

    /** A vCPU's CPUID; with the split irqchip (no PIT) the TSC-deadline timer on every vendor, not only Intel. */
    private List<CpuidEntry> cpuid(List<CpuidEntry> supported, int id, int n) {
        List<CpuidEntry> t = Cpuid.forVcpu(supported, id, n, machine.nestedVirt(), machine.hyperthreading());
        return machine.splitIrqchip() ? Cpuid.withTscDeadline(t) : t;
    }

    @Override
    public void finish(Vmm vmm) {
        if (ioapic != null) {
            vmm.setEndOfInterrupt(ioapic::endOfInterrupt);
            vmm.addStateReporter(ioapic::describe);
        }
    }

    @Override
    public dev.jkrun.hypervisor.VcpuDiagnosis diagnosis() { return X86Diagnosis.INSTANCE; }

    /** A firmware image's bytes (KernelConfig checked its size). */
    private static byte[] readFirmware(Path p) {
        try {
            byte[] b = Files.readAllBytes(p);
            if (b.length == 0 || b.length > KernelConfig.MAX_FIRMWARE) {
                throw new ConfigurationException("kernel.firmware", p + " is " + b.length + " bytes (1 to "
                        + KernelConfig.MAX_FIRMWARE + ")");
            }
            return b;
        } catch (IOException e) {
            throw new ConfigurationException("kernel.firmware", p + ": " + e.getMessage());
        }
    }

    private static KernelPayload loadKernel(VmConfig config, PrintStream progress) {
        if (config.kernel().kernel().isPresent()) {
            // a compressed kernel may not inflate beyond the guest's RAM, where it has to fit anyway
            return Kernels.open(config.kernel().kernel().get(), config.kernel().kernelFormat(), config.machine().memoryBytes());
        }
        return KrunfwBundle.load(Krunfw.locateOrFetch(config.kernel().krunfw().orElse(null), System.getenv(), progress));
    }

    /**
     * Copies the initramfs to the top of RAM above everything the kernel occupies (for a bzImage, its whole
     * {@code init_size}, where it decompresses itself); returns {address, size}, or {0, 0} without one.
     */
    private long[] loadInitramfs(GuestMemory memory) {
        if (config.kernel().initramfs().isEmpty()) {
            return new long[] {0, 0};
        }
        Initramfs initramfs;
        try {
            initramfs = Initramfs.open(config.kernel().initramfs().get());
        } catch (KernelFormatException e) {
            throw new ConfigurationException("kernel.initramfs", e.getMessage());
        }
        long kernelEnd = payload instanceof BzImage b ? Math.max(b.end(), b.loadAddress() + b.initSize()) : payload.end();
        long size = initramfs.size();
        long at = layout.initrdAddress(size, kernelEnd).orElseThrow(() -> new ConfigurationException("kernel.initramfs",
                initramfs.path() + " (" + size + " bytes) does not fit in guest RAM above the kernel (which ends at 0x"
                        + Long.toHexString(kernelEnd) + "; RAM " + layout.regions() + "): give the VM more memory"));
        initramfs.writeInto(memory, at);
        return new long[] {at, size};
    }
}
