package dev.jkrun.vmm.builder;

import dev.jkrun.arch.x86_64.BootCpu;
import dev.jkrun.arch.x86_64.Cmdline;
import dev.jkrun.arch.x86_64.Cpuid;
import dev.jkrun.arch.x86_64.Gdt;
import dev.jkrun.arch.x86_64.Layout;
import dev.jkrun.devices.fs.dax.DaxWindow;
import dev.jkrun.arch.x86_64.MpTable;
import dev.jkrun.arch.x86_64.PageTables;
import dev.jkrun.arch.x86_64.RamLayout;
import dev.jkrun.arch.x86_64.Smbios;
import dev.jkrun.arch.x86_64.ZeroPage;
import dev.jkrun.devices.bus.Bus;
import dev.jkrun.devices.bus.BusDevice;
import dev.jkrun.devices.legacy.Cmos;
import dev.jkrun.devices.legacy.DebugPort;
import dev.jkrun.devices.legacy.I8042;
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
import dev.jkrun.loader.krunfw.Krunfw;
import dev.jkrun.memory.MmapGuestMemory;
import dev.jkrun.devices.virtio.VirtioDevice;
import dev.jkrun.devices.virtio.balloon.VirtioBalloon;
import dev.jkrun.devices.virtio.console.VirtioConsole;
import dev.jkrun.init.GuestInit;
import dev.jkrun.init.InitConfig;
import dev.jkrun.vmm.ConfigurationException;
import dev.jkrun.vmm.DeviceConfig;
import dev.jkrun.vmm.FsShare;
import dev.jkrun.vmm.MachineConfig;
import java.util.Optional;
import dev.jkrun.vmm.VmConfig;
import dev.jkrun.vmm.VsockDeviceConfig;
import dev.jkrun.devices.virtio.vsock.tsi.TsiConfig;
import dev.jkrun.vmm.vstate.DebugLog;
import dev.jkrun.vmm.vstate.VmControl;
import dev.jkrun.vmm.vstate.Vmm;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The one function that turns a {@link VmConfig} into a ready-to-run {@link Vmm}, in libkrun's order
 * (libkrun's src/vmm/src/builder.rs): kernel, memory, VM + irqchip, payload, legacy devices, virtio devices, command line and
 * boot structures, vCPUs. Whatever was created is released again if a later step fails.
 */
public final class VmmBuilder {
    private static final long TEST_EXIT_PORT = 0xF4;

    private VmmBuilder() {}

    /** Build options that are not VM configuration: where set-up progress goes and who hears debug-port lines. */
    public record Options(String name, PrintStream progress, Consumer<String> debugListener) {}

    public static Vmm build(VmConfig config, Options options) {
        MmioDeviceManager.placement(virtioDevices(config)); // the device count's limit, before anything is opened
        List<AutoCloseable> resources = new ArrayList<>();
        MmapGuestMemory memory = null;
        try {
            byte[] firmware = config.kernel().firmware().map(VmmBuilder::readFirmware).orElse(null);
            KernelPayload payload = firmware != null ? null : loadKernel(config, options.progress());
            boolean bundle = payload instanceof KrunfwBundle;
            // the bundle and a raw kernel lie in RAM of their own, as libkrun maps them: the guest's memory comes after
            boolean ownRam = bundle || payload instanceof dev.jkrun.loader.RawKernel;
            RamLayout layout = RamLayout.of(config.machine().memoryBytes(), ownRam ? payload.end() : 0);
            List<dev.jkrun.memory.MemoryRegion> regions = new ArrayList<>(layout.regions());
            if (firmware != null) { // its own slot, ending at 4 GiB, where the reset vector (0xFFFF_FFF0) lies
                long slot = (firmware.length + 0xFFFL) & ~0xFFFL; // whole pages
                regions.add(new dev.jkrun.memory.MemoryRegion(new dev.jkrun.memory.GuestAddress(FIRMWARE_END - slot), slot));
                regions.sort(java.util.Comparator.comparingLong(r -> r.start().value()));
            }

            Kvm kvm = Kvm.open();
            resources.add(kvm);
            kvm.requireCapabilities();
            memory = config.machine().memfdBacked()
                    ? MmapGuestMemory.createOnMemfd(regions, dev.jkrun.memory.GuestMemoryImpl.preferred())
                    : MmapGuestMemory.create(regions);
            Vm vm = kvm.createVm();
            resources.add(vm);
            for (int slot = 0; slot < memory.slots().size(); slot++) {
                MmapGuestMemory.Slot s = memory.slots().get(slot);
                vm.setUserMemoryRegion(slot, s.region().start(), s.mapping());
            }
            vm.setTssAddress(Layout.TSS_ADDRESS);
            dev.jkrun.devices.legacy.IoApic ioapic = null;
            if (config.machine().splitIrqchip()) {
                ioapic = SplitIrqchip.enable(kvm, vm);
            } else {
                vm.createIrqchip();
                vm.createPit2();
            }
            // lines jkrun drives as levels (shared virtio lines, UARTs): KVM's IOAPIC pins, or jkrun's
            IrqLines lines = ioapic != null ? IrqLines.of(ioapic) : IrqLines.inKernel(vm);
            long[] initrd = {0, 0};
            if (firmware != null) {
                memory.write(new dev.jkrun.memory.GuestAddress(FIRMWARE_END - firmware.length), firmware);
            } else {
                payload.writeInto(memory);
                initrd = loadInitramfs(config, payload, layout, memory);
            }

            VmControl control = new VmControl(); // before the devices, which report into it
            DebugLog debugLog = new DebugLog(options.debugListener());
            Bus pio = new Bus();
            Bus mmio = new Bus();
            if (ioapic != null) {
                mmio.register(Layout.IOAPIC, dev.jkrun.devices.legacy.IoApic.WINDOW, ioapic);
            }
            pio.register(0x60, 5, new I8042(control::guestReset));
            pio.register(0x70, 2, new Cmos(lowRam(layout), highRam(layout)));
            if (!SerialPorts.com1(config.serialConsoles())) {
                pio.register(0x3F8, 8, new DebugPort(debugLog::accept)); // COM1 without a UART: early output only
            }
            SerialPorts.attach(config.serialConsoles(), lines, pio, resources);
            if (config.testExitPort()) {
                pio.register(TEST_EXIT_PORT, 4, testExitPort(control));
            }

            Consoles.Built consoles = Consoles.create(config.console(), config.consolePorts(), config.exec().isPresent(), resources);
            VirtioConsole console = consoles.device();
            MmioDeviceManager devices = new MmioDeviceManager(vm, lines, mmio, memory, resources, virtioDevices(config));
            if (console != null) {
                devices.attach(console);
            }
            Optional<InitConfig> exec = config.exec().map(e -> Shares.completeInit(e, config));
            Map<String, DaxWindow> daxWindows = DaxWindows.create(config.shares(), vm, memory.slots().size(),
                    layout.lastAddress(), resources);
            Devices.Context context = new Devices.Context(exec, config.kernel().initPath().isEmpty(), control, resources,
                    daxWindows);
            VirtioBalloon balloon = null;
            for (DeviceConfig device : config.attachOrder()) {
                VirtioDevice built = Devices.build(device, context);
                devices.attach(built);
                if (built instanceof VirtioBalloon b) {
                    balloon = b;
                }
            }

            if (firmware == null) { // a firmware finds its own way (CMOS, MP table, SMBIOS); a kernel is handed these
                String cmdline = commandLine(config, bundle, devices.cmdlineWords());
                checkCommandLine(cmdline, payload, devices.cmdlineWords());
                Cmdline.write(memory, cmdline);
                ZeroPage.write(memory, layout, Layout.CMDLINE, cmdline.length() + 1, initrd[0], initrd[1]);
                Gdt.write(memory);
                PageTables.write(memory, payload.end() > 1L << 30 ? 4 : 1);
            }
            MpTable.write(memory, config.machine().vcpus(), devices.levelIrqs());
            Smbios.write(memory, config.smbiosOemStrings());

            List<Vcpu> vcpus = new ArrayList<>();
            List<CpuidEntry> supported = kvm.supportedCpuid();
            int n = config.machine().vcpus();
            for (int id = 0; id < n; id++) {
                Vcpu vcpu = vm.createVcpu(id);
                resources.add(vcpu);
                vcpus.add(vcpu);
                if (firmware != null) { // libkrun: CPUID only; the rest stays KVM's reset state (CS:IP F000:FFF0)
                    vcpu.setCpuid(cpuid(supported, id, n, config.machine()));
                } else {
                    configureVcpu(vcpu, supported, id, n, config.machine(), payload.entry());
                }
            }
            Vmm vmm = new Vmm(options.name(), control, memory, vcpus, pio, mmio, resources, debugLog);
            vmm.setDeviceThreads(devices::liveThreads);
            if (ioapic != null) {
                vmm.setEndOfInterrupt(ioapic::endOfInterrupt);
            }
            if (balloon != null) {
                vmm.setBalloon(new BalloonHandle(balloon));
            }
            if (console != null) {
                vmm.setConsoleResizer(console::resize); // the device raises its own config interrupt
            }
            consoles.panicWatch().ifPresent(w -> vmm.setPanicSource(() -> {
                console.drainOutput(2000); // the panic line may still be in hvc0's queue when the reset exits
                return w.panic();
            }));
            consoles.control().ifPresent(c -> vmm.addStopRequester(() -> c.post("poweroff\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII))));
            if (config.testExitPort()) {
                vmm.addStopRequester(() -> { });   // the test exit port's read side tells the guest; see testExitPort
            }
            return vmm;
        } catch (RuntimeException | Error e) {
            for (int i = resources.size() - 1; i >= 0; i--) {
                try {
                    resources.get(i).close();
                } catch (Exception suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            if (memory != null) {
                memory.close();
            }
            throw e;
        }
    }

    /** Where a firmware image ends: 4 GiB, so that its last 16 bytes hold the reset vector. */
    static final long FIRMWARE_END = 0x1_0000_0000L;

    /** A firmware image's bytes (KernelConfig checked its size). */
    private static byte[] readFirmware(java.nio.file.Path p) {
        try {
            byte[] b = java.nio.file.Files.readAllBytes(p);
            if (b.length == 0 || b.length > dev.jkrun.vmm.KernelConfig.MAX_FIRMWARE) {
                throw new ConfigurationException("kernel.firmware", p + " is " + b.length + " bytes (1 to "
                        + dev.jkrun.vmm.KernelConfig.MAX_FIRMWARE + ")");
            }
            return b;
        } catch (java.io.IOException e) {
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
    private static long[] loadInitramfs(VmConfig config, KernelPayload payload, RamLayout layout, MmapGuestMemory memory) {
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

    static String commandLine(VmConfig config, boolean bundle, List<String> deviceWords) {
        String prolog = config.kernel().cmdline().orElse(bundle ? dev.jkrun.vmm.KernelConfig.DEFAULT_PROLOG : "");
        if (config.exec().isPresent() && config.kernel().cmdline().isEmpty()) {
            // The command reaches init through the virtual /.jkrun-config, never the cmdline (2048 bytes, 32 words).
            prolog += " init=" + config.kernel().initPath().orElse("/" + GuestInit.FILE_NAME);
            if (config.root().map(FsShare::readOnly).orElse(false)) {
                prolog = prolog.replace(" rw ", " ro ");
            }
        } else if (config.kernel().initPath().isPresent() && config.kernel().cmdline().isEmpty()) {
            prolog += " init=" + config.kernel().initPath().get();
        }
        StringBuilder sb = new StringBuilder(prolog);
        for (String w : config.kernel().extraCmdline()) {
            sb.append(' ').append(w);
        }
        for (String w : deviceWords) {
            sb.append(' ').append(w);
        }
        // libkrunfw's TSI patches: the kernel hijacks the guest's sockets only when told (libkrun's builder order)
        int scope = config.devices().stream().filter(d -> d instanceof VsockDeviceConfig)
                .mapToInt(d -> ((VsockDeviceConfig) d).vsock().tsi().scope()).findFirst().orElse(0);
        if ((scope & TsiConfig.HIJACK_INET) != 0) {
            sb.append(" tsi_hijack");
        }
        if ((scope & TsiConfig.HIJACK_UNIX) != 0) {
            sb.append(" tsi_hijack_unix");
        }
        return sb.toString().strip();
    }

    /** The VM's virtio-mmio devices: the console when it has a port, then every device of the attach order. */
    static int virtioDevices(VmConfig config) {
        boolean console = Consoles.present(config.console(), config.consolePorts(), config.exec().isPresent());
        return (console ? 1 : 0) + config.attachOrder().size();
    }

    /**
     * Refuses a command line the kernel would cut: Linux copies at most COMMAND_LINE_SIZE − 1 bytes of it (2047 on
     * x86, whatever the boot loader passes) and silently drops the rest, devices included. The limit is the kernel's
     * ({@link KernelPayload#commandLineLimit}); a kernel that does not say keeps libkrun's own bound (checked by
     * {@link Cmdline#write}).
     */
    static void checkCommandLine(String cmdline, KernelPayload kernel, List<String> deviceWords) {
        java.util.OptionalInt limit = kernel.commandLineLimit();
        if (limit.isEmpty() || cmdline.length() <= limit.getAsInt()) {
            return;
        }
        int words = deviceWords.stream().mapToInt(w -> w.length() + 1).sum();
        int rest = cmdline.length() - words;
        if (deviceWords.isEmpty() || rest > limit.getAsInt()) {
            throw new ConfigurationException("kernel.cmdline", "the command line is " + cmdline.length()
                    + " bytes; this kernel takes at most " + limit.getAsInt());
        }
        // each device is one word of about 35 bytes: say how many fit beside the rest of this command line
        int fit = 0;
        for (int used = rest; fit < deviceWords.size() && used + deviceWords.get(fit).length() + 1 <= limit.getAsInt(); fit++) {
            used += deviceWords.get(fit).length() + 1;
        }
        throw new ConfigurationException("devices", deviceWords.size() + " virtio devices need " + words
                + " bytes of kernel command line (one virtio_mmio.device= word each) beside the " + rest
                + " of the rest; this kernel takes at most " + limit.getAsInt() + " (" + kernel.description()
                + "): " + fit + " devices fit");
    }

    /** libkrun §1.8: CPUID, MSRs, registers, FPU, long-mode sregs, LAPIC LINT0/1 — for every vCPU. */
    /** A vCPU's CPUID; with the split irqchip (no PIT) the TSC-deadline timer on every vendor, not only Intel. */
    private static List<CpuidEntry> cpuid(List<CpuidEntry> supported, int id, int n, MachineConfig machine) {
        List<CpuidEntry> t = Cpuid.forVcpu(supported, id, n, machine.nestedVirt(), machine.hyperthreading());
        return machine.splitIrqchip() ? Cpuid.withTscDeadline(t) : t;
    }

    private static void configureVcpu(Vcpu vcpu, List<CpuidEntry> supported, int id, int n, MachineConfig machine, long entry) {
        vcpu.setCpuid(cpuid(supported, id, n, machine));
        vcpu.setMsrs(BootCpu.msrs());
        vcpu.setRegs(BootCpu.regs(entry));
        vcpu.setFpu(BootCpu.fpu());
        Sregs sregs = vcpu.getSregs();
        BootCpu.longModeSregs(sregs);
        vcpu.setSregs(sregs);
        LapicState lapic = vcpu.getLapic();
        BootCpu.setLint(lapic);
        vcpu.setLapic(lapic);
    }

    private static long lowRam(RamLayout layout) {
        return Math.min(layout.lastAddress(), Layout.MMIO_START);
    }

    private static long highRam(RamLayout layout) {
        return Math.max(0, layout.lastAddress() - Layout.MMIO_GAP_END);
    }

    /**
     * The test-guest toolkit's exit port: a 32-bit OUT of a status stops the VM with that status; a 32-bit IN reads
     * 1 once the host asked for an orderly stop (the test guests' "power button"), else 0.
     */
    private static BusDevice testExitPort(VmControl control) {
        return new BusDevice() {
            @Override
            public void read(long offset, byte[] data) {
                java.util.Arrays.fill(data, (byte) 0);
                if (offset == 0 && data.length == 4 && control.stopRequested()) {
                    data[0] = 1;
                }
            }

            @Override
            public void write(long offset, byte[] data) {
                if (offset == 0 && data.length == 4) {
                    int status = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).getInt();
                    control.reportExitStatus(status);
                    control.guestStopped(dev.jkrun.vmm.StopReason.shutdown(status));
                }
            }
        };
    }

}
