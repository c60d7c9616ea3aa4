package dev.jkrun.cli;

import dev.jkrun.devices.block.ImageFormat;
import dev.jkrun.devices.block.SyncMode;
import dev.jkrun.devices.virtio.vsock.VsockConfig;
import dev.jkrun.devices.virtio.vsock.VsockPort;
import dev.jkrun.devices.virtio.vsock.tsi.PortMapping;
import dev.jkrun.devices.virtio.vsock.tsi.TsiConfig;
import dev.jkrun.init.InitConfig;
import dev.jkrun.init.Resolvers;
import dev.jkrun.init.RootDisk;
import dev.jkrun.init.StaticIpv4;
import dev.jkrun.vmm.DiskConfig;
import dev.jkrun.libc.Terminal;
import dev.jkrun.vmm.BalloonDeviceConfig;
import dev.jkrun.vmm.ConfigurationException;
import dev.jkrun.vmm.ConsoleConfig;
import dev.jkrun.vmm.FsShare;
import dev.jkrun.vmm.KernelConfig;
import dev.jkrun.vmm.MachineConfig;
import dev.jkrun.vmm.RngDeviceConfig;
import dev.jkrun.vmm.StopReason;
import dev.jkrun.vmm.VirtualMachine;
import dev.jkrun.vmm.VmConfig;
import dev.jkrun.vmm.NetDeviceConfig;
import dev.jkrun.vmm.VsockDeviceConfig;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * {@code jkrun run [options] -- COMMAND [ARGS...]}: boots a microVM whose root is a host directory (the host's
 * {@code /}, read-only, by default), runs COMMAND there attached to this process's terminal or pipes, and exits
 * with COMMAND's status. Every input error is one line and status 125 before anything boots.
 */
final class RunCommand {
    private RunCommand() {}

    private static MachineConfig machine(int cpus, long memory, boolean hyperthreading, boolean nestedVirt) {
        try {
            return new MachineConfig(cpus, memory, hyperthreading, nestedVirt);
        } catch (ConfigurationException e) {
            throw new Main.UsageException((e.field().equals("machine.vcpus") ? "--cpus: " : "--memory: ") + e.getMessage());
        }
    }

    static int run(String[] argv, PrintStream out, PrintStream err) {
        int cpus = 1;
        long memory = 512;
        Optional<Path> root = Optional.empty();
        List<Path> layers = new ArrayList<>();
        Optional<Path> krunfw = Optional.empty();
        Optional<Path> kernelPath = Optional.empty();
        Optional<Path> initramfs = Optional.empty();
        Optional<String> cmdline = Optional.empty();
        dev.jkrun.loader.KernelFormat kernelFormat = dev.jkrun.loader.KernelFormat.ELF;
        Optional<Path> consoleOutput = Optional.empty();
        List<FsShare> shares = new ArrayList<>();
        int fsQueues = 1;
        List<DiskConfig> disks = new ArrayList<>();
        List<VsockPort> vsockPorts = new ArrayList<>();
        List<PortMapping> published = new ArrayList<>();
        boolean publishAll = false; // --port all: libkrun's krun_set_port_map(NULL)
        boolean tsi = true;
        boolean tsiSet = false;
        List<NicSpec> nics = new ArrayList<>();
        boolean lastNetIsNic = false; // --mac/--ip/--gateway configure the --net just before them
        List<String> dns = new ArrayList<>();
        boolean rng = true;
        boolean balloon = true;
        boolean hyperthreading = false;
        boolean nestedVirt = false;
        boolean splitIrqchip = false;
        Optional<RootDisk> rootDisk = Optional.empty();
        List<String> env = new ArrayList<>();
        List<String> rlimits = new ArrayList<>();
        String workdir = "/";
        Args args = new Args(argv);
        for (String o = args.nextOption(); o != null; o = args.nextOption()) {
            switch (o) {
                case "--cpus" -> cpus = args.intValue(o);
                case "--memory" -> memory = args.intValue(o);
                case "--root" -> root = Optional.of(Path.of(args.value(o)));
                case "--layer" -> layers.add(Path.of(args.value(o)));
                case "--fs" -> shares.add(parseShare(args.value(o)));
                case "--fs-queues" -> fsQueues = args.intValue(o);
                case "--disk" -> disks.add(parseDisk(args.value(o)));
                case "--vsock" -> vsockPorts.add(parseVsock(args.value(o)));
                case "--port" -> {
                    String v = args.value(o);
                    if (v.equals("all")) {
                        publishAll = true;
                    } else {
                        published.add(parsePort(v));
                    }
                }
                case "--net" -> {
                    String v = args.value(o);
                    if (v.equals("tsi") || v.equals("none")) {
                        tsi = parseNet(v);
                        tsiSet = true;
                        lastNetIsNic = false;
                    } else {
                        nics.add(new NicSpec(parseNic(v)));
                        lastNetIsNic = true;
                    }
                }
                case "--mac" -> {
                    if (!lastNetIsNic) {
                        throw new Main.UsageException("--mac sets the MAC of the NIC of the --net just before it; there is none");
                    }
                    nics.get(nics.size() - 1).mac = parseMac(args.value(o));
                }
                case "--ip", "--gateway" -> {
                    if (!lastNetIsNic) {
                        throw new Main.UsageException(o + " configures the NIC of the --net just before it; there is none");
                    }
                    NicSpec nic = nics.get(nics.size() - 1);
                    if (o.equals("--ip") ? nic.cidr != null : nic.gateway != null) {
                        throw new Main.UsageException(o + " is given twice for eth" + (nics.size() - 1) + ": a NIC has one");
                    }
                    if (o.equals("--ip")) {
                        nic.cidr = args.value(o);
                    } else {
                        nic.gateway = args.value(o);
                    }
                }
                case "--dns" -> dns.add(args.value(o));
                case "--no-rng" -> rng = false;
                case "--no-balloon" -> balloon = false;
                case "--hyperthreading" -> hyperthreading = true;
                case "--nested-virt" -> nestedVirt = true;
                case "--split-irqchip" -> splitIrqchip = true;
                case "--root-disk" -> rootDisk = Optional.of(parseRootDisk(args.value(o)));
                case "--env" -> env.add(parseEnv(args.value(o)));
                case "--workdir" -> workdir = args.value(o);
                case "--rlimit" -> rlimits.add(args.value(o));
                case "--console-output" -> consoleOutput = Optional.of(Path.of(args.value(o)));
                case "--krunfw" -> krunfw = Optional.of(Path.of(args.value(o)));
                case "--kernel" -> kernelPath = Optional.of(Path.of(args.value(o)));
                case "--kernel-format" -> kernelFormat = BootCommand.kernelFormat(args.value(o));
                case "--initramfs" -> initramfs = Optional.of(Path.of(args.value(o)));
                case "--cmdline" -> cmdline = Optional.of(args.value(o));
                case "--log-level" -> Logging.setLevel(args.value(o));
                default -> throw new Main.UsageException("unknown option " + o + " for run (see jkrun --help)");
            }
        }
        List<String> command = args.afterDashes();
        if (command.isEmpty()) {
            throw new Main.UsageException("run needs a command after --, e.g. jkrun run -- uname -a");
        }
        FsShare rootShare = rootShare(root, layers);
        InitConfig exec;
        try {
            InitConfig.Builder b = InitConfig.builder(command.get(0)).args(command.subList(1, command.size())).workdir(workdir);
            String term = System.getenv("TERM");
            if (term != null && env.stream().noneMatch(e -> e.startsWith("TERM="))) {
                b.env("TERM", term);
            }
            env.forEach(b::env);
            rootDisk.ifPresent(b::rootDisk);
            shares.forEach(s -> b.mount(s.tag(), "/mnt/" + s.tag()));
            for (String r : rlimits) {
                b.rlimit(r);
            }
            if (!dns.isEmpty()) {
                b.resolvers(new Resolvers(dns, List.of(), List.of()));
            }
            exec = b.build();
        } catch (IllegalArgumentException e) { // InvalidInitConfigException names the field
            throw new Main.UsageException(e.getMessage());
        }
        List<FsShare> all = new ArrayList<>();
        all.add(rootShare);
        all.addAll(shares);
        if (fsQueues != 1) {
            int n = fsQueues;
            try {
                all.replaceAll(s -> s.withRequestQueues(n));
            } catch (dev.jkrun.vmm.ConfigurationException e) {
                throw new Main.UsageException("--fs-queues " + n + ": " + e.getMessage());
            }
        }
        ConsoleConfig console = consoleOutput.<ConsoleConfig>map(ConsoleConfig.ToFile::new).orElse(new ConsoleConfig.Stdio());
        // krun_set_kernel: a kernel of the user's (an arm64 Image, gzip'd or not; an ELF or bzImage; raw) with an
        // optional initramfs, which then mounts the root share and hands over to /init.krun itself
        KernelConfig kernel = new KernelConfig(kernelPath, krunfw, cmdline, List.of()).withKernelFormat(kernelFormat);
        if (initramfs.isPresent()) {
            if (kernelPath.isEmpty()) {
                throw new Main.UsageException("--initramfs needs --kernel (the libkrunfw kernel takes none)");
            }
            kernel = kernel.withInitramfs(initramfs.get());
        }
        VmConfig config = new VmConfig(machine(cpus, memory, hyperthreading, nestedVirt).withSplitIrqchip(splitIrqchip), kernel, console, all, disks, Optional.of(exec), false);
        for (int i = 0; i < nics.size(); i++) {
            config = config.withDevice(nics.get(i).device(i));
        }
        if (!nics.isEmpty() && !tsiSet) {
            tsi = false; // a NIC turns TSI off, as libkrun does; --net tsi keeps it
        }
        if (!tsi && (!published.isEmpty() || publishAll)) {
            throw new Main.UsageException("--port publishes a guest port through TSI, which is off: --net none, or a NIC"
                    + " without --net tsi");
        }
        if (!vsockPorts.isEmpty() || tsi) {
            try {
                VsockConfig v = VsockConfig.of(vsockPorts)
                        .withTsi(tsi ? TsiConfig.of(TsiConfig.HIJACK_INET, published).withPublishAll(publishAll) : TsiConfig.disabled());
                v.checkListenPaths();
                config = config.withDevice(new VsockDeviceConfig(v));
            } catch (IllegalArgumentException e) { // names the field: vsock.ports[i].path, tsi.ports[i].hostPort...
                throw new Main.UsageException((e.getMessage().startsWith("tsi.") ? "--port: " : "--vsock: ") + e.getMessage());
            }
        }
        if (rng) { // libkrun attaches virtio-rng to every VM
            config = config.withDevice(new RngDeviceConfig());
        }
        if (balloon) { // and virtio-balloon, with free page reporting
            config = config.withDevice(new BalloonDeviceConfig());
        }

        VirtualMachine vm = VirtualMachine.create(config, err, null);
        Thread hook = new Thread(vm::close, "jkrun-shutdown");
        StopReason reason;
        try {
            Runtime.getRuntime().addShutdownHook(hook);
            followWindowSize(vm);
            reportVcpusOnSigusr1(vm, err);
            vm.start();
            reason = vm.waitForStop();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            vm.close();
            return 130;
        } finally {
            vm.close();
        }
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException ignored) {
            // already shutting down
        }
        if (reason.kind() == StopReason.Kind.SHUTDOWN && reason.exitStatus().isPresent()) {
            return reason.exitStatus().getAsInt();
        }
        err.println("jkrun: VM stopped: " + reason);
        return reason.kind() == StopReason.Kind.KILLED ? 137 : 1;
    }

    /** The root: an overlay of {@code --layer}s (bottom to top, the last writable), {@code --root DIR}, or / read-only. */
    static FsShare rootShare(Optional<Path> root, List<Path> layers) {
        if (!layers.isEmpty()) {
            if (root.isPresent()) {
                throw new Main.UsageException("--layer and --root both set the root; use one");
            }
            for (Path l : layers) {
                if (!Files.isDirectory(l)) {
                    throw new Main.UsageException("--layer " + l + " is not a directory");
                }
            }
            return FsShare.overlay(FsShare.ROOT_TAG, layers, false);
        } else if (root.isPresent()) {
            if (!Files.isDirectory(root.get())) {
                throw new Main.UsageException("--root " + root.get() + " is not a directory");
            }
            return new FsShare(FsShare.ROOT_TAG, root.get(), false);
        } else {
            // No preparation needed: the host's own root, read-only; init puts tmpfs on /tmp, /run, /var/tmp.
            return new FsShare(FsShare.ROOT_TAG, Path.of("/"), true);
        }
    }

    /** TAG=DIR[:ro][:setuid][:dax=SIZE] (SIZE in bytes, or with K, M or G). */
    static FsShare parseShare(String spec) {
        int eq = spec.indexOf('=');
        if (eq <= 0 || eq == spec.length() - 1) {
            throw new Main.UsageException("--fs needs TAG=DIR[:ro][:setuid][:dax=SIZE], got '" + spec + "'");
        }
        String tag = spec.substring(0, eq);
        String dir = spec.substring(eq + 1);
        boolean ro = false, setuid = false;
        long dax = 0;
        for (int colon = dir.lastIndexOf(':'); colon > 0; colon = dir.lastIndexOf(':')) {
            String option = dir.substring(colon + 1);
            if (option.equals("ro") || option.equals("rw")) {
                ro = option.equals("ro");
            } else if (option.equals("setuid")) {
                setuid = true;
            } else if (option.startsWith("dax=")) {
                dax = size("--fs " + tag + ": dax", option.substring(4));
            } else {
                break; // part of the directory's name
            }
            dir = dir.substring(0, colon);
        }
        if (tag.equals(FsShare.ROOT_TAG)) {
            throw new Main.UsageException("--fs: the tag " + FsShare.ROOT_TAG + " is the root's; use --root");
        }
        if (!Files.isDirectory(Path.of(dir))) {
            throw new Main.UsageException("--fs " + tag + ": " + dir + " is not a directory");
        }
        return new FsShare(tag, java.util.Optional.of(Path.of(dir)), java.util.Optional.empty(), ro, dax).withSetuid(setuid);
    }

    /** A size in bytes: digits with an optional K, M or G (powers of 1024). */
    static long size(String what, String text) {
        long unit = 1;
        String digits = text;
        if (!text.isEmpty()) {
            switch (Character.toUpperCase(text.charAt(text.length() - 1))) {
                case 'K' -> unit = 1L << 10;
                case 'M' -> unit = 1L << 20;
                case 'G' -> unit = 1L << 30;
                default -> { }
            }
            if (unit != 1) {
                digits = text.substring(0, text.length() - 1);
            }
        }
        try {
            long n = Long.parseLong(digits);
            if (n <= 0 || n > Long.MAX_VALUE / unit) {
                throw new NumberFormatException();
            }
            return n * unit;
        } catch (NumberFormatException e) {
            throw new Main.UsageException(what + " needs a positive size such as 256M, got '" + text + "'");
        }
    }

    /** ID=PATH[:ro][:raw|qcow2|vmdk][:direct] (default raw, read-write, through the page cache). */
    static DiskConfig parseDisk(String spec) {
        int eq = spec.indexOf('=');
        if (eq <= 0 || eq == spec.length() - 1) {
            throw new Main.UsageException("--disk needs ID=PATH[:ro][:raw|qcow2|vmdk][:direct], got '" + spec + "'");
        }
        String id = spec.substring(0, eq);
        String path = spec.substring(eq + 1);
        boolean ro = false;
        boolean direct = false;
        ImageFormat format = ImageFormat.RAW;
        while (true) {
            int colon = path.lastIndexOf(':');
            String suffix = colon < 0 ? "" : path.substring(colon + 1);
            if (suffix.equals("ro")) {
                ro = true;
            } else if (suffix.equals("rw")) {
                ro = false;
            } else if (suffix.equals("direct")) {
                direct = true;
            } else if (suffix.equals("raw") || suffix.equals("qcow2") || suffix.equals("vmdk")) {
                format = ImageFormat.valueOf(suffix.toUpperCase(java.util.Locale.ROOT));
            } else {
                break;
            }
            path = path.substring(0, colon);
        }
        if (!Files.isRegularFile(Path.of(path))) {
            throw new Main.UsageException("--disk " + id + ": " + path + " is not a file");
        }
        if (direct && format != ImageFormat.RAW) {
            throw new Main.UsageException("--disk " + id + ": :direct is for raw images only");
        }
        return new DiskConfig(id, Path.of(path), ro, format, SyncMode.FULL, false, direct);
    }

    /** PORT=PATH[:listen], as libkrun's krun_add_vsock_port2(port, path, listen). */
    static VsockPort parseVsock(String spec) {
        int eq = spec.indexOf('=');
        if (eq <= 0 || eq == spec.length() - 1) {
            throw new Main.UsageException("--vsock needs PORT=PATH[:listen], got '" + spec + "'");
        }
        String path = spec.substring(eq + 1);
        boolean listen = path.endsWith(":listen");
        if (listen) {
            path = path.substring(0, path.length() - ":listen".length());
        }
        int port;
        try {
            port = Integer.parseUnsignedInt(spec.substring(0, eq));
        } catch (NumberFormatException e) {
            throw new Main.UsageException("--vsock " + spec + ": PORT must be a number from 0 to 4294967294");
        }
        try {
            return new VsockPort(port, Path.of(path).toAbsolutePath(), listen);
        } catch (IllegalArgumentException e) {
            throw new Main.UsageException("--vsock " + spec + ": " + e.getMessage());
        }
    }

    /** HOST:GUEST, as libkrun's krun_set_port_map entries. */
    static PortMapping parsePort(String spec) {
        try {
            return PortMapping.parse(spec);
        } catch (IllegalArgumentException e) {
            throw new Main.UsageException("--port needs HOST:GUEST with ports 1..65535, got '" + spec + "'");
        }
    }

    /** One {@code --net} NIC with the {@code --mac}, {@code --ip} and {@code --gateway} that followed it. */
    static final class NicSpec {
        final NetDeviceConfig.Backend backend;
        byte[] mac;
        String cidr;
        String gateway;

        NicSpec(NetDeviceConfig.Backend backend) { this.backend = backend; }

        NetDeviceConfig device(int index) {
            String name = "eth" + index;
            if (cidr == null && gateway != null) {
                throw new Main.UsageException("--gateway needs --ip for the same --net");
            }
            StaticIpv4 address;
            try {
                address = cidr == null ? null : StaticIpv4.parse(name, cidr, gateway);
            } catch (IllegalArgumentException e) {
                throw new Main.UsageException("--ip " + cidr + (gateway != null ? " --gateway " + gateway : "") + ": "
                        + e.getMessage().replaceFirst("^ipv4: ", ""));
            }
            return new NetDeviceConfig(name, mac != null ? mac : NetDeviceConfig.defaultMac(index),
                    NetDeviceConfig.defaultFeatures(backend), backend, NetDeviceConfig.defaultDhcp(backend, address), address);
        }
    }

    /**
     * A NIC's backend: passt (jkrun starts Debian's passt), unixstream=PATH, unixstream=fd=N, unixgram=PATH[:vfkit],
     * unixgram=fd=N, tap=NAME.
     */
    static NetDeviceConfig.Backend parseNic(String spec) {
        String usage = "--net is tsi, none, passt, unixstream=PATH|fd=N, unixgram=PATH[:vfkit]|fd=N or tap=NAME, got '" + spec + "'";
        if (spec.equals("passt")) {
            return new NetDeviceConfig.Passt(Path.of("/usr/bin/passt"));
        }
        if (spec.startsWith("tap=")) {
            String name = spec.substring(4);
            if (!InitConfig.isInterfaceName(name)) {
                throw new Main.UsageException("--net tap=NAME needs an interface name of 1 to 15 of [A-Za-z0-9_.-], got '" + name + "'");
            }
            return new NetDeviceConfig.Tap(name);
        }
        boolean stream = spec.startsWith("unixstream="), gram = spec.startsWith("unixgram=");
        if (!stream && !gram) {
            throw new Main.UsageException(usage);
        }
        String v = spec.substring(spec.indexOf('=') + 1);
        if (v.startsWith("fd=")) {
            int fd;
            try {
                fd = Integer.parseInt(v.substring(3));
            } catch (NumberFormatException e) {
                throw new Main.UsageException(usage);
            }
            if (fd < 0) {
                throw new Main.UsageException(usage);
            }
            return stream ? new NetDeviceConfig.UnixStreamFd(fd) : new NetDeviceConfig.UnixGramFd(fd);
        }
        boolean vfkit = gram && v.endsWith(":vfkit");
        String path = vfkit ? v.substring(0, v.length() - ":vfkit".length()) : v;
        if (path.isEmpty()) {
            throw new Main.UsageException(usage);
        }
        return stream ? new NetDeviceConfig.UnixStreamPath(Path.of(path)) : new NetDeviceConfig.UnixGramPath(Path.of(path), vfkit);
    }

    /** xx:xx:xx:xx:xx:xx, a unicast address. */
    static byte[] parseMac(String spec) {
        String[] parts = spec.split(":");
        byte[] mac = new byte[6];
        boolean ok = parts.length == 6;
        for (int i = 0; ok && i < 6; i++) {
            ok = parts[i].matches("[0-9a-fA-F]{2}");
            if (ok) {
                mac[i] = (byte) Integer.parseInt(parts[i], 16);
            }
        }
        if (!ok || (mac[0] & 1) != 0) {
            throw new Main.UsageException("--mac needs a unicast xx:xx:xx:xx:xx:xx, got '" + spec + "'");
        }
        return mac;
    }

    /** tsi (the default: libkrun's networking without a NIC) or none. */
    static boolean parseNet(String spec) {
        return switch (spec) {
            case "tsi" -> true;
            case "none" -> false;
            default -> throw new Main.UsageException("--net is tsi or none, got '" + spec + "'");
        };
    }

    /** DEVICE[:FSTYPE[:OPTIONS]], as BoxLite's set_root_disk_remount. */
    static RootDisk parseRootDisk(String spec) {
        String[] parts = spec.split(":", 3);
        if (parts[0].isEmpty()) {
            throw new Main.UsageException("--root-disk needs DEVICE[:FSTYPE[:OPTIONS]], got '" + spec + "'");
        }
        return new RootDisk(parts[0], parts.length > 1 ? parts[1] : "", parts.length > 2 ? parts[2] : "");
    }

    /** K=V with a non-empty name. */
    static String parseEnv(String spec) {
        int eq = spec.indexOf('=');
        if (eq <= 0) {
            throw new Main.UsageException("--env needs NAME=VALUE, got '" + spec + "'");
        }
        return spec;
    }

    /**
     * {@code kill -USR1 <jkrun>} prints the devices' and IOAPIC's state and where each vCPU is (RIP...) on stderr: for
     * a guest that hangs silently.
     */
    private static void reportVcpusOnSigusr1(VirtualMachine vm, PrintStream err) {
        try {
            sun.misc.Signal.handle(new sun.misc.Signal("USR1"), s -> {
                try {
                    // the devices first: sampling takes every vCPU out of KVM_RUN, which may itself wake a waiting
                    // guest (a halted vCPU looks for interrupts again), and the rings should show the wait as it was
                    for (String line : vm.deviceState()) {
                        err.println("jkrun: " + line);
                    }
                    for (String line : vm.vcpuState()) {
                        err.println("jkrun: " + line);
                    }
                } catch (Throwable t) { // a diagnostic: whatever it meets must not end the handler unreported
                    err.println("jkrun: the state report failed: " + t);
                }
                err.flush();
            });
        } catch (IllegalArgumentException ignored) {
            // SIGUSR1 taken (-Xrs or a platform without it): no report
        }
    }

    /** SIGWINCH on the host terminal → the guest console's size (only when there is a terminal). */
    private static void followWindowSize(VirtualMachine vm) {
        if (!Terminal.isTerminal(0) && !Terminal.isTerminal(1)) {
            return;
        }
        try {
            sun.misc.Signal.handle(new sun.misc.Signal("WINCH"), s -> {
                Terminal.Size size = Terminal.size(Terminal.isTerminal(0) ? 0 : 1);
                vm.resizeConsole(size.cols(), size.rows());
            });
        } catch (IllegalArgumentException ignored) {
            // no SIGWINCH on this platform
        }
    }
}
