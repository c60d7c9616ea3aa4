package dev.jkrun.vmm.builder;

import dev.jkrun.devices.bus.Bus;
import dev.jkrun.devices.bus.BusDevice;
import dev.jkrun.devices.fs.dax.DaxWindow;
import dev.jkrun.devices.virtio.VirtioDevice;
import dev.jkrun.devices.virtio.balloon.VirtioBalloon;
import dev.jkrun.devices.virtio.console.VirtioConsole;
import dev.jkrun.devices.virtio.vsock.tsi.TsiConfig;
import dev.jkrun.hypervisor.Hypervisor;
import dev.jkrun.init.GuestInit;
import dev.jkrun.init.InitConfig;
import dev.jkrun.loader.KernelPayload;
import dev.jkrun.loader.KrunfwBundle;
import dev.jkrun.memory.MemoryRegion;
import dev.jkrun.memory.MmapGuestMemory;
import dev.jkrun.vmm.ConfigurationException;
import dev.jkrun.vmm.DeviceConfig;
import dev.jkrun.vmm.FsShare;
import dev.jkrun.vmm.HostHypervisor;
import dev.jkrun.vmm.VmConfig;
import dev.jkrun.vmm.VsockDeviceConfig;
import dev.jkrun.vmm.vstate.DebugLog;
import dev.jkrun.vmm.vstate.VmControl;
import dev.jkrun.vmm.vstate.Vmm;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * The one function that turns a {@link VmConfig} into a ready-to-run {@link Vmm}, in libkrun's order
 * (libkrun's src/vmm/src/builder.rs): kernel, memory, VM + irqchip, payload, legacy devices, virtio devices, command line and
 * boot structures, vCPUs. What differs between architectures is the host's {@link Platform}'s; the hypervisor is
 * the host's ({@link HostHypervisor}). Whatever was created is released again if a later step fails.
 */
public final class VmmBuilder {
    private VmmBuilder() {}

    /** Build options that are not VM configuration: where set-up progress goes and who hears debug-port lines. */
    public record Options(String name, PrintStream progress, Consumer<String> debugListener) {}

    public static Vmm build(VmConfig config, Options options) {
        return build(config, options, Platform.forHost(config), HostHypervisor::open);
    }

    /** {@link #build(VmConfig, Options)} on a given platform and hypervisor (tests: aarch64 on a replaying HVF). */
    static Vmm build(VmConfig config, Options options, Platform platform, java.util.function.Supplier<Hypervisor> host) {
        MmioDeviceManager.placement(platform.deviceSpace(), virtioDevices(config)); // the count's limit, before anything is opened
        List<AutoCloseable> resources = new ArrayList<>();
        MmapGuestMemory memory = null;
        try {
            platform.load(options.progress());
            Hypervisor hypervisor = host.get();
            resources.add(hypervisor);
            hypervisor.requireCapabilities();
            List<MemoryRegion> regions = platform.memoryRegions();
            memory = config.machine().memfdBacked()
                    ? MmapGuestMemory.createOnMemfd(regions, dev.jkrun.memory.GuestMemoryImpl.preferred())
                    : MmapGuestMemory.create(regions);
            Hypervisor.Vm vm = hypervisor.createVm();
            resources.add(vm);
            for (int slot = 0; slot < memory.slots().size(); slot++) {
                MmapGuestMemory.Slot s = memory.slots().get(slot);
                vm.mapMemory(slot, s.region().start(), s.mapping());
            }
            IrqLines lines = platform.setUpVm(hypervisor, vm, resources);
            platform.writePayload(memory);

            VmControl control = new VmControl(); // before the devices, which report into it
            DebugLog debugLog = new DebugLog(options.debugListener());
            Bus pio = new Bus();
            Bus mmio = new Bus();
            platform.attachLegacyDevices(pio, mmio, lines, control, debugLog, resources);

            Consoles.Built consoles = Consoles.create(config.console(), config.consolePorts(), config.exec().isPresent(), resources);
            VirtioConsole console = consoles.device();
            MmioDeviceManager devices = new MmioDeviceManager(vm, lines, mmio, memory, resources,
                    platform.deviceSpace(), virtioDevices(config));
            if (console != null) {
                devices.attach(console);
            }
            Optional<InitConfig> exec = config.exec().map(e -> Shares.completeInit(e, config));
            Map<String, DaxWindow> daxWindows = DaxWindows.create(config.shares(), vm, memory.slots().size(),
                    platform.sharedMemorySpace(), resources);
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

            String cmdline = "";
            if (platform.kernel().isPresent()) { // a firmware finds its own way
                KernelPayload payload = platform.kernel().get();
                List<String> words = platform.deviceWords(devices.slots());
                cmdline = commandLine(config, payload instanceof KrunfwBundle, words);
                checkCommandLine(cmdline, payload, words);
            }
            platform.writeBootData(memory, cmdline, devices.slots(), devices.levelIrqs());

            List<Hypervisor.Vcpu> vcpus = new ArrayList<>();
            int n = config.machine().vcpus();
            for (int id = 0; id < n; id++) {
                Hypervisor.Vcpu vcpu = vm.createVcpu(id);
                resources.add(vcpu);
                vcpus.add(vcpu);
                platform.configureVcpu(vcpu, id, n);
            }
            platform.vcpusCreated(vcpus);
            devices.registerIrqfds();
            Vmm vmm = new Vmm(options.name(), control, memory, vcpus, platform.diagnosis(), pio, mmio, resources, debugLog);
            vmm.setDeviceThreads(devices::liveThreads);
            vmm.addStateReporter(devices::describe);
            platform.finish(vmm);
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
                vmm.addStopRequester(() -> { });   // the test exit port's read side tells the guest; see testExitDevice
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
     * {@code dev.jkrun.arch.x86_64.Cmdline#write}).
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

    /**
     * The test-guest toolkit's exit device (x86: a port): a 32-bit write of a status stops the VM with that status; a 32-bit IN reads
     * 1 once the host asked for an orderly stop (the test guests' "power button"), else 0.
     */
    static BusDevice testExitDevice(VmControl control) {
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
