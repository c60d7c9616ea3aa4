package dev.jkrun.vmm;

import dev.jkrun.devices.block.ImageFormat;
import dev.jkrun.devices.block.SyncMode;
import dev.jkrun.devices.fs.FileSystem;
import dev.jkrun.devices.fs.augment.VirtualEntry;
import dev.jkrun.devices.virtio.net.VirtioNet;
import dev.jkrun.devices.virtio.vsock.VsockConfig;
import dev.jkrun.devices.virtio.vsock.VsockPort;
import dev.jkrun.devices.virtio.vsock.tsi.OutboundPolicy;
import dev.jkrun.devices.virtio.vsock.tsi.PortMapping;
import dev.jkrun.devices.virtio.vsock.tsi.TsiConfig;
import dev.jkrun.init.InitConfig;
import dev.jkrun.init.InvalidInitConfigException;
import dev.jkrun.init.RLimit;
import dev.jkrun.init.RootDisk;
import dev.jkrun.libc.Errno;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import dev.jkrun.loader.KernelFormat;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * The fluent way to describe a microVM, in the style of msb_krun's {@code VmBuilder}: each section is configured by
 * a lambda, nothing is checked until {@link #build()}, which returns immutable {@link VmConfig} data or throws a
 * {@link ConfigurationException} naming the offending field ({@code machine.vcpus}, {@code fs.tag},
 * {@code exec.path}...).
 *
 * <pre>{@code
 * VmConfig config = VmBuilder.create()
 *         .machine(m -> m.vcpus(2).memoryMib(512))
 *         .fs(fs -> fs.root(Path.of("/srv/rootfs")))
 *         .fs(fs -> fs.tag("data").path(Path.of("/srv/data")).readOnly(true))
 *         .exec(e -> e.path("/bin/sh").args("-c", "echo hello").env("LANG", "C.UTF-8").workdir("/"))
 *         .build();
 * try (VirtualMachine vm = VirtualMachine.create(config).start()) {
 *     StopReason r = vm.waitForStop();
 * }
 * }</pre>
 *
 */
public final class VmBuilder {
    private final MachineBuilder machine = new MachineBuilder();
    private final KernelBuilder kernel = new KernelBuilder();
    private final List<FsBuilder> fs = new ArrayList<>();
    private final List<DiskBuilder> disks = new ArrayList<>();
    private final List<NetBuilder> nets = new ArrayList<>();
    private VsockBuilder vsock;
    private final NetworkBuilder network = new NetworkBuilder();
    private final ConsoleBuilder console = new ConsoleBuilder();
    private ExecBuilder exec;
    private String[] rootDisk;
    private final List<String> oemStrings = new ArrayList<>();
    private boolean rng = true;
    private boolean balloon = true;

    private VmBuilder() {}

    public static VmBuilder create() { return new VmBuilder(); }

    public VmBuilder machine(Consumer<MachineBuilder> f) {
        f.accept(machine);
        return this;
    }

    public VmBuilder kernel(Consumer<KernelBuilder> f) {
        f.accept(kernel);
        return this;
    }

    /** One filesystem: the root ({@code fs.root(path)}) or a tagged share; call once per filesystem. */
    public VmBuilder fs(Consumer<FsBuilder> f) {
        FsBuilder b = new FsBuilder();
        f.accept(b);
        fs.add(b);
        return this;
    }

    /** One disk; the guest sees disks as /dev/vda, /dev/vdb... in the order of these calls. */
    public VmBuilder disk(Consumer<DiskBuilder> f) {
        DiskBuilder b = new DiskBuilder(disks.size());
        f.accept(b);
        disks.add(b);
        return this;
    }

    /** Boot from a disk instead of the virtio-fs root: init mounts {@code device} and switches root into it. */
    public VmBuilder rootDisk(String device, String fsType, String options) {
        this.rootDisk = new String[] {device, fsType, options};
        return this;
    }

    /**
     * A virtio-net device; the guest names them eth0, eth1... in the order of these calls. A VM with a NIC has no TSI
     * unless {@code network(n -> n.tsi(true))} asks for it, as libkrun turns TSI off when a NIC is added.
     */
    public VmBuilder net(Consumer<NetBuilder> f) {
        NetBuilder b = new NetBuilder(nets.size());
        f.accept(b);
        nets.add(b);
        return this;
    }

    /** The virtio-vsock device and its unix-socket bridges. Calling it again configures the same device. */
    public VmBuilder vsock(Consumer<VsockBuilder> f) {
        if (vsock == null) {
            vsock = new VsockBuilder();
        }
        f.accept(vsock);
        return this;
    }

    /**
     * Networking without a NIC: TSI on the vsock device. By default on for IPv4 and IPv6, nothing published, outbound
     * anywhere: libkrun's default for a VM without a NIC. {@code network(n -> n.none())} turns it off.
     */
    public VmBuilder network(Consumer<NetworkBuilder> f) {
        f.accept(network);
        return this;
    }

    public VmBuilder console(Consumer<ConsoleBuilder> f) {
        f.accept(console);
        return this;
    }

    /** The command the guest init runs. Calling it again configures the same command. */
    public VmBuilder exec(Consumer<ExecBuilder> f) {
        if (exec == null) {
            exec = new ExecBuilder();
        }
        f.accept(exec);
        return this;
    }

    /** SMBIOS type 11 OEM strings (krun_set_smbios_oem_strings), readable in the guest's DMI tables. */
    public VmBuilder smbiosOemStrings(String... strings) {
        oemStrings.addAll(Arrays.asList(strings));
        return this;
    }

    /**
     * The virtio-rng device (the guest's {@code /dev/hwrng} reads host entropy): on by default, as libkrun attaches
     * one to every VM; {@code rng(false)} leaves it out (and frees its virtio-mmio slot).
     */
    public VmBuilder rng(boolean on) {
        this.rng = on;
        return this;
    }

    /**
     * The virtio-balloon device with free page reporting (memory the guest frees goes back to the host): on by
     * default, as libkrun attaches one to every VM; {@code balloon(false)} leaves it out (AVF's
     * {@code setBalloon(false)}), which frees its virtio-mmio slot. At run time: {@link VirtualMachine#balloon()}.
     */
    public VmBuilder balloon(boolean on) {
        this.balloon = on;
        return this;
    }

    /** Validates everything and returns the configuration; throws {@link ConfigurationException} naming the field. */
    public VmConfig build() {
        MachineConfig m = machine.build();
        KernelConfig k = kernel.build();
        List<FsShare> shares = new ArrayList<>();
        for (FsBuilder b : fs) {
            FsShare s = b.build();
            if (s.isRoot() && shares.stream().anyMatch(FsShare::isRoot)) {
                throw new ConfigurationException("fs.root", "the root is set twice");
            }
            shares.add(s);
        }
        List<DiskConfig> diskConfigs = new ArrayList<>();
        for (DiskBuilder b : disks) {
            diskConfigs.add(b.build());
        }
        if (rootDisk != null && exec == null) {
            throw new ConfigurationException("root_disk", "a root disk is mounted by jkrun's init, which needs exec");
        }
        Optional<InitConfig> init = Optional.ofNullable(exec).map(e -> e.build(rootDisk, shares));
        VmConfig config = new VmConfig(m, k, console.implicit(), console.ports, shares, diskConfigs, init, oemStrings, false);
        for (SerialConsoleConfig s : console.serials) {
            config = config.withDevice(s);
        }
        for (DeviceConfig v : console.extraDevices) {
            config = config.withDevice(v);
        }
        for (NetBuilder b : nets) {
            NetDeviceConfig n = b.build();
            if (n.dhcp() && exec == null) {
                throw new ConfigurationException("net." + n.name() + ".dhcp", "DHCP is done by jkrun's init, which needs exec");
            }
            if (n.ipv4() != null && exec == null) {
                throw new ConfigurationException("net." + n.name() + ".ipv4", "static addresses are set by jkrun's init, which needs exec");
            }
            config = config.withDevice(n);
        }
        TsiConfig tsi = network.build(!nets.isEmpty());
        if (vsock != null || tsi.enabled()) {
            config = config.withDevice((vsock == null ? new VsockBuilder() : vsock).build(tsi));
        }
        // Last in the attach order: the other devices keep the slots, IRQs and guest names they had before it joined
        // (libkrun attaches it before the consoles; nothing a guest relies on follows from the order).
        if (rng) {
            config = config.withDevice(new RngDeviceConfig());
        }
        // After rng, for the same reason: the devices before it keep their slots and IRQs.
        return balloon ? config.withDevice(new BalloonDeviceConfig()) : config;
    }

    /** Machine resources (msb_krun's MachineBuilder). Defaults: 1 vCPU, 512 MiB, no hyperthreading, no nested virt. */
    public static final class MachineBuilder {
        private int vcpus = 1;
        private long memoryMib = 512;
        private boolean hyperthreading;
        private boolean nestedVirt;
        private String name;
        private boolean memfdBacked;
        private boolean splitIrqchip;

        private MachineBuilder() {}

        /**
         * The IOAPIC emulated by jkrun instead of KVM, with no PIC or PIT (libkrun's {@code krun_split_irqchip}); the
         * guest's timer is then its LAPIC's. See README.md, "Split IRQ chip".
         */
        public MachineBuilder splitIrqchip(boolean on) {
            this.splitIrqchip = on;
            return this;
        }

        /** Guest RAM in a memfd (AVF's custom memory backing file), shared-mappable by other processes. */
        public MachineBuilder memfdBacked(boolean on) {
            this.memfdBacked = on;
            return this;
        }

        /** A name for the VM's threads and log lines (AVF's {@code setName}); see {@link MachineConfig}. */
        public MachineBuilder name(String name) {
            this.name = name;
            return this;
        }

        public MachineBuilder vcpus(int count) {
            this.vcpus = count;
            return this;
        }

        public MachineBuilder memoryMib(long mib) {
            this.memoryMib = mib;
            return this;
        }

        /** Two threads per core in the CPU topology; needs an even vCPU count, as libkrun. */
        public MachineBuilder hyperthreading(boolean on) {
            this.hyperthreading = on;
            return this;
        }

        /** Expose VMX/SVM to the guest so it can run its own VMs. */
        public MachineBuilder nestedVirt(boolean on) {
            this.nestedVirt = on;
            return this;
        }

        MachineConfig build() {
            return new MachineConfig(vcpus, memoryMib, hyperthreading, nestedVirt, Optional.ofNullable(name), memfdBacked, splitIrqchip);
        }
    }

    /** What to boot (msb_krun's KernelBuilder). Default: the libkrunfw kernel bundle, found or fetched. */
    public static final class KernelBuilder {
        private Path krunfwPath;
        private Path kernelPath;
        private final List<String> cmdline = new ArrayList<>();
        private String replacementCmdline;
        private String initPath;
        private Path initramfs;
        private KernelFormat kernelFormat = KernelFormat.ELF;
        private Path firmware;

        private KernelBuilder() {}

        /** An explicit libkrunfw.so.5 (otherwise JKRUN_KRUNFW, the system library path, or jkrun's cache). */
        public KernelBuilder krunfwPath(Path path) {
            this.krunfwPath = path;
            return this;
        }

        /** A kernel image (ELF vmlinux or bzImage) instead of libkrunfw (krun_set_kernel). */
        public KernelBuilder kernelPath(Path path) {
            this.kernelPath = path;
            return this;
        }

        /**
         * A kernel image behind a descriptor the caller holds (AVF's {@code setKernel(fd)}), in {@link #kernelFormat}:
         * read through {@code /proc/self/fd} when the VM is built; the caller keeps owning {@code fd}.
         */
        public KernelBuilder kernelFd(int fd) {
            this.kernelPath = fdPath("kernel.fd", fd);
            return this;
        }

        /** An initramfs behind a descriptor the caller holds (AVF's {@code setInitRd(fd)}); as {@link #kernelFd}. */
        public KernelBuilder initramfsFd(int fd) {
            this.initramfs = fdPath("kernel.initramfs_fd", fd);
            return this;
        }

        /** Words appended to the kernel command line. */
        public KernelBuilder cmdline(String words) {
            for (String w : words.trim().split("\\s+")) {
                if (!w.isEmpty()) {
                    cmdline.add(w);
                }
            }
            return this;
        }

        /** Replaces libkrun's default command-line prolog altogether (krun_set_kernel's cmdline). */
        public KernelBuilder replaceCmdline(String full) {
            this.replacementCmdline = full;
            return this;
        }

        /**
         * The guest's init (kernel {@code init=}); default jkrun's virtual {@code /init.krun}, which is then not
         * served: {@code "/init.krun"} runs the root's own file of that name.
         */
        public KernelBuilder initPath(String path) {
            this.initPath = path;
            return this;
        }

        /** An initramfs for the {@link #kernelPath} kernel, copied to the top of RAM (krun_set_kernel's initramfs). */
        public KernelBuilder initramfs(Path path) {
            this.initramfs = path;
            return this;
        }

        /** How the {@link #kernelPath} kernel is stored (default ELF; gzip-, zstd- or bzip2-compressed ELF as libkrun's IMAGE formats). */
        public KernelBuilder kernelFormat(KernelFormat format) {
            this.kernelFormat = java.util.Objects.requireNonNull(format, "format");
            return this;
        }

        /**
         * A firmware image booted instead of any kernel (libkrun's krun_set_firmware): it ends at 4 GiB and runs from
         * the reset vector; at most {@link KernelConfig#MAX_FIRMWARE} bytes.
         */
        public KernelBuilder firmware(Path path) {
            this.firmware = path;
            return this;
        }

        KernelConfig build() {
            return new KernelConfig(Optional.ofNullable(kernelPath), Optional.ofNullable(krunfwPath),
                    Optional.ofNullable(replacementCmdline), cmdline, Optional.ofNullable(initPath), Optional.ofNullable(initramfs),
                    kernelFormat, Optional.ofNullable(firmware));
        }
    }

    /** One virtio-fs filesystem (msb_krun's FsBuilder). */
    public static final class FsBuilder {
        private String tag;
        private Path path;
        private List<Path> lowerLayers = List.of();
        private Supplier<? extends FileSystem> custom;
        private boolean readOnly, allowSetuid;
        private int requestQueues = 1;
        private long shmSize;
        private final List<VirtualEntry> virtualEntries = new ArrayList<>();
        private int roots;

        private FsBuilder() {}

        /** The root filesystem: tag {@code /dev/root}. */
        public FsBuilder root(Path path) {
            roots++;
            this.tag = FsShare.ROOT_TAG;
            this.path = path;
            return this;
        }

        public FsBuilder tag(String tag) {
            this.tag = tag;
            return this;
        }

        /**
         * An overlay of host directories instead of one path, bottom to top: the last is the writable upper layer,
         * the others are read-only lower layers (krun_set_overlayfs_root's order). With {@link #root}: the root's.
         */
        public FsBuilder layers(List<Path> bottomToTop) {
            if (bottomToTop.isEmpty()) {
                throw new ConfigurationException("fs.layers", "an overlay needs at least one layer");
            }
            this.path = bottomToTop.get(bottomToTop.size() - 1);
            this.lowerLayers = List.copyOf(bottomToTop.subList(0, bottomToTop.size() - 1));
            return this;
        }

        public FsBuilder path(Path path) {
            this.path = path;
            return this;
        }

        /** A Java filesystem instead of a host directory; the factory is called once per VM. */
        public FsBuilder custom(Supplier<? extends FileSystem> backend) {
            this.custom = backend;
            return this;
        }

        public FsBuilder readOnly(boolean ro) {
            this.readOnly = ro;
            return this;
        }

        /**
         * DAX window size (krun_add_virtiofs2; 0 for none, rounded up to 2 MiB): the guest may map the share's files
         * into it when it mounts with {@code -o dax} (README.md, virtio-fs DAX windows).
         */
        public FsBuilder shmSize(long bytes) {
            this.shmSize = bytes;
            return this;
        }

        /**
         * A read-only file served at {@code path} in the share without existing on the host (krun_fs_add_overlay_file):
         * it hides a host file of the same name. Directories above it must be {@link #virtualDir}s added before. A
         * {@code oneShot} file can be looked up once.
         */
        public FsBuilder virtualFile(String path, byte[] content, int mode, boolean oneShot) {
            virtualEntries.add(VirtualEntry.file(path, content.clone(), mode, oneShot));
            return this;
        }

        /**
         * Whether the guest may keep set-user-ID and set-group-ID bits on the share's host files, with a local file
         * system's rules for clearing them (off by default: the bits are dropped, so no program the guest wrote runs
         * set-ID on the host).
         */
        public FsBuilder allowSetuid(boolean allow) {
            this.allowSetuid = allow;
            return this;
        }

        /**
         * How many request queues the share's virtio-fs device offers (1, as libkrun, by default; up to
         * {@value FsShare#MAX_REQUEST_QUEUES}): each has a host thread of its own, so a guest with several vCPUs
         * (Linux 6.11+) has that many requests in flight at once. With more than one, the file system is called
         * from several threads at once: a {@link #custom} backend must then be thread-safe.
         */
        public FsBuilder requestQueues(int n) {
            this.requestQueues = n;
            return this;
        }

        /** An empty read-only directory served at {@code path} (krun_fs_add_overlay_dir), e.g. a mount point. */
        public FsBuilder virtualDir(String path, int mode) {
            virtualEntries.add(VirtualEntry.dir(path, mode));
            return this;
        }

        FsShare build() {
            if (roots > 1) {
                throw new ConfigurationException("fs.root", "the root is set twice");
            }
            if (tag == null) {
                throw new ConfigurationException("fs.tag", "a share needs a tag (or use fs.root)");
            }
            if (path == null && custom == null) {
                throw new ConfigurationException("fs.path", "share '" + tag + "' needs a path or a custom backend");
            }
            if (path != null && custom != null) {
                throw new ConfigurationException("fs.custom", "share '" + tag + "' has both a path and a custom backend");
            }
            return new FsShare(tag, Optional.ofNullable(path), Optional.ofNullable(custom), readOnly, shmSize,
                    lowerLayers, virtualEntries, allowSetuid, requestQueues);
        }
    }

    /**
     * One disk (msb_krun's DiskBuilder). Defaults: id {@code diskN}, raw, read-write, sync full, no backing files,
     * through the host page cache.
     */
    public static final class DiskBuilder {
        private String id;
        private Path path;
        private Integer fd;
        private ImageFormat format = ImageFormat.RAW;
        private boolean readOnly;
        private SyncMode sync = SyncMode.FULL;
        private boolean allowBackingFiles;
        private boolean directIo;

        private DiskBuilder(int index) { this.id = "disk" + index; }

        /** The block id the guest reads from /sys/block/vdX/serial (at most 20 bytes). */
        public DiskBuilder id(String id) {
            this.id = id;
            return this;
        }

        public DiskBuilder path(Path path) {
            this.path = path;
            this.fd = null;
            return this;
        }

        /**
         * The image behind a descriptor the caller holds (AVF's {@code addDisk(fd)}): jkrun opens it again through
         * {@code /proc/self/fd}, with the disk's own read-only setting, and the caller keeps owning {@code fd}. A
         * writable disk needs a descriptor opened O_RDWR.
         */
        public DiskBuilder fd(int fd) {
            this.path = fdPath("disk.fd", fd);
            this.fd = fd;
            return this;
        }

        /** The image format: the caller's word, never probed from the image. */
        public DiskBuilder format(ImageFormat format) {
            this.format = format;
            return this;
        }

        public DiskBuilder readOnly(boolean ro) {
            this.readOnly = ro;
            return this;
        }

        public DiskBuilder sync(SyncMode mode) {
            this.sync = mode;
            return this;
        }

        /**
         * Let the image open host files it names beyond itself (off by default: libkrun's header calls backing files
         * a security risk): a qcow2 image's backing file, and VMDK extents outside the descriptor's directory or
         * through symlinks (read-write when the disk is). Without it a VMDK's extents must be regular files beside
         * the descriptor, named plainly; with it or without, only regular files are opened.
         */
        public DiskBuilder allowBackingFiles(boolean allow) {
            this.allowBackingFiles = allow;
            return this;
        }

        /**
         * Bypass the host page cache (O_DIRECT, libkrun's {@code direct_io}): raw images only; a host file system
         * without O_DIRECT fails the build when the image is opened.
         */
        public DiskBuilder directIo(boolean direct) {
            this.directIo = direct;
            return this;
        }

        DiskConfig build() {
            if (path == null) {
                throw new ConfigurationException("disk.path", "disk '" + id + "' needs a path");
            }
            if (format == null) {
                throw new ConfigurationException("disk.format", "disk '" + id + "' needs a format");
            }
            if (sync == null) {
                throw new ConfigurationException("disk.sync", "disk '" + id + "' needs a sync mode");
            }
            if (fd != null && readableFd("disk.fd", fd) != FileDescriptor.O_RDWR && !readOnly) {
                throw new ConfigurationException("disk.fd", "disk '" + id + "': descriptor " + fd
                        + " is open read-only: set readOnly or pass a read-write descriptor");
            }
            return new DiskConfig(id, path, readOnly, format, sync, allowBackingFiles, directIo);
        }
    }

    /**
     * A virtio-net device (msb_krun's NetBuilder): one backend, a MAC (default: libkrun's 5a:94:ef:e4:0c:ee with the
     * last byte plus the NIC's index, so NICs of one VM differ), offloads (default: libkrun's legacy set,
     * {@link VirtioNet#COMPAT_FEATURES}).
     */
    public static final class NetBuilder {
        private final int index;
        private byte[] mac;
        private Long features; // default: COMPAT_FEATURES, PASST_FEATURES for passt()
        private NetDeviceConfig.Backend backend;
        private Boolean dhcp;
        private String ipv4;
        private String gateway;

        private NetBuilder(int index) { this.index = index; }

        /**
         * A static IPv4 address ({@code 10.0.2.15/24}) jkrun's init gives this NIC before the command starts, with a
         * default route via {@code gateway} (null: none; of several NICs' gateways the first wins). The guest's
         * resolv.conf names the exec's resolvers when it has any. Turns {@link #dhcp} off; needs {@code exec}.
         */
        public NetBuilder ipv4(String cidr, String gateway) {
            this.ipv4 = cidr;
            this.gateway = gateway;
            return this;
        }

        /**
         * Whether jkrun's init configures this NIC from a DHCP server before the command starts (address, default
         * route, resolv.conf; status 125 when no lease comes within 15 s). Default: on for {@link #passt()}, off
         * otherwise. Needs {@code exec} (jkrun's init).
         */
        public NetBuilder dhcp(boolean on) {
            this.dhcp = on;
            return this;
        }

        public NetBuilder mac(byte[] mac) {
            this.mac = mac == null ? null : mac.clone();
            return this;
        }

        /** The offload feature bits offered to the guest (libkrun's {@code features}; see {@link VirtioNet#OFFLOADS}). */
        public NetBuilder features(long features) {
            this.features = features;
            return this;
        }

        /** passt, socket_vmnet or gvproxy's QEMU mode listening on {@code path}. */
        public NetBuilder unixstreamPath(Path path) { return setBackend(new NetDeviceConfig.UnixStreamPath(path)); }

        /** A connected stream socket (duplicated: the caller keeps its descriptor). */
        public NetBuilder unixstreamFd(int fd) { return setBackend(new NetDeviceConfig.UnixStreamFd(fd)); }

        /** gvproxy (vfkit mode) or vmnet-helper at {@code path}; {@code sendVfkitMagic} sends "VFKT" first. */
        public NetBuilder unixgramPath(Path path, boolean sendVfkitMagic) {
            return setBackend(new NetDeviceConfig.UnixGramPath(path, sendVfkitMagic));
        }

        /** A connected datagram socket (duplicated). */
        public NetBuilder unixgramFd(int fd) { return setBackend(new NetDeviceConfig.UnixGramFd(fd)); }

        /** jkrun starts Debian's passt ({@code /usr/bin/passt}) for this NIC and stops it with the VM. */
        public NetBuilder passt() { return passt(Path.of("/usr/bin/passt")); }

        public NetBuilder passt(Path executable) { return setBackend(new NetDeviceConfig.Passt(executable)); }

        /**
         * A tap device (Linux; created when missing and the process may): frames keep their virtio-net header and the
         * host kernel honours the guest's offloads. libkrun's rule: GUEST_TSO4/6 or GUEST_UFO need GUEST_CSUM.
         */
        public NetBuilder tap(String name) { return setBackend(new NetDeviceConfig.Tap(name)); }

        /** One of the backends as data (the libkrun interface passes its calls' backends on this way). */
        public NetBuilder backend(NetDeviceConfig.Backend b) {
            java.util.Objects.requireNonNull(b, "backend");
            return setBackend(b);
        }

        private NetBuilder setBackend(NetDeviceConfig.Backend b) {
            this.backend = b;
            return this;
        }

        NetDeviceConfig build() {
            String name = "eth" + index;
            if (backend == null) {
                throw new ConfigurationException("net." + name + ".backend", "no backend: passt, unixstream, unixgram or tap");
            }
            if (backend instanceof NetDeviceConfig.Tap t && !InitConfig.isInterfaceName(t.name())) {
                throw new ConfigurationException("net." + name + ".backend", "tap name '" + t.name() + "': 1 to 15 of [A-Za-z0-9_.-]");
            }
            long segmentation = 1L << VirtioNet.F_GUEST_TSO4 | 1L << VirtioNet.F_GUEST_TSO6 | 1L << VirtioNet.F_GUEST_UFO;
            long features = this.features != null ? this.features : NetDeviceConfig.defaultFeatures(backend);
            if (backend instanceof NetDeviceConfig.Tap && (features & segmentation) != 0
                    && (features & 1L << VirtioNet.F_GUEST_CSUM) == 0) {
                throw new ConfigurationException("net." + name + ".features", "a tap's GUEST_TSO4/6 and GUEST_UFO need GUEST_CSUM");
            }
            byte[] m = mac != null ? mac : NetDeviceConfig.defaultMac(index);
            if (m.length != 6) {
                throw new ConfigurationException("net." + name + ".mac", "6 bytes are needed, got " + m.length);
            }
            if ((m[0] & 1) != 0) {
                throw new ConfigurationException("net." + name + ".mac", VirtioNet.macString(m) + " is a multicast address");
            }
            if ((features & ~VirtioNet.OFFLOADS) != 0) {
                throw new ConfigurationException("net." + name + ".features", "0x" + Long.toHexString(features & ~VirtioNet.OFFLOADS)
                        + " are not offloads virtio-net offers (allowed: 0x" + Long.toHexString(VirtioNet.OFFLOADS) + ")");
            }
            dev.jkrun.init.StaticIpv4 address = null;
            if (ipv4 != null) {
                if (Boolean.TRUE.equals(dhcp)) {
                    throw new ConfigurationException("net." + name + ".ipv4", "a NIC is configured statically or over DHCP, not both");
                }
                try {
                    address = dev.jkrun.init.StaticIpv4.parse(name, ipv4, gateway);
                } catch (IllegalArgumentException e) {
                    throw new ConfigurationException("net." + name + ".ipv4", e.getMessage());
                }
            }
            boolean d = dhcp != null ? dhcp : NetDeviceConfig.defaultDhcp(backend, address);
            return new NetDeviceConfig(name, m, features, backend, d, address);
        }
    }

    /** A vsock port to a host UNIX socket (krun_add_vsock_port): accepted for API parity, refused at build(). */
    /**
     * virtio-vsock (libkrun's {@code krun_add_vsock_port2}): guest CID 3, the host is CID 2. Limits default to
     * {@link VsockConfig#of}'s.
     */
    public static final class VsockBuilder {
        private record Bridge(int port, Path socket, boolean listen) {}

        private final List<Bridge> bridges = new ArrayList<>();
        private Integer maxConnections;

        private VsockBuilder() {}

        /** A guest connecting to CID 2 on {@code port} is connected to the unix socket at {@code socket}. */
        public VsockBuilder port(int port, Path socket) { return port(port, socket, false); }

        /**
         * With {@code listen}, jkrun listens on {@code socket} (which must not exist yet) and every host connection
         * there becomes a connection to the guest's vsock listener on {@code port}; otherwise as {@link #port(int, Path)}.
         */
        public VsockBuilder port(int port, Path socket, boolean listen) {
            bridges.add(new Bridge(port, socket, listen));
            return this;
        }

        /** Connections at once (each holds one host socket); more are refused with RST. */
        public VsockBuilder maxConnections(int n) {
            maxConnections = n;
            return this;
        }

        VsockDeviceConfig build(TsiConfig tsi) {
            try {
                List<VsockPort> ports = new ArrayList<>();
                for (Bridge b : bridges) {
                    ports.add(new VsockPort(b.port(), b.socket(), b.listen()));
                }
                VsockConfig c = VsockConfig.of(ports).withTsi(tsi);
                if (maxConnections != null) {
                    c = c.withMaxConnections(maxConnections);
                }
                c.checkListenPaths();
                return new VsockDeviceConfig(c);
            } catch (IllegalArgumentException e) {
                throw fieldError(e, "vsock.", "vsock.ports");
            }
        }
    }

    /** A config record's IllegalArgumentException as a ConfigurationException: its messages start with the field. */
    private static ConfigurationException fieldError(IllegalArgumentException e, String prefix, String fallback) {
        String m = String.valueOf(e.getMessage());
        int colon = m.indexOf(": ");
        return m.startsWith(prefix) && colon > 0
                ? new ConfigurationException(m.substring(0, colon), m.substring(colon + 2))
                : new ConfigurationException(fallback, m);
    }

    /** TSI's settings (see {@link VmBuilder#network}); {@code TsiConfig} has the policy in full. */
    public static final class NetworkBuilder {
        private boolean tsi = true;
        private boolean unixSockets;
        private final List<int[]> published = new ArrayList<>();
        private OutboundPolicy outbound = OutboundPolicy.ALLOW_ALL;
        private InetAddress listenHost;
        private boolean publishAll;

        /** Whether tsi was set explicitly: a NIC turns the default off, not an explicit choice. */
        private boolean tsiSet;

        private NetworkBuilder() {}

        /** No networking: no TSI (and no vsock device unless bridges are configured). */
        public NetworkBuilder none() {
            return tsi(false);
        }

        /** TSI for the guest's IPv4 and IPv6 sockets (on by default without a NIC, off by default with one). */
        public NetworkBuilder tsi(boolean on) {
            tsi = on;
            tsiSet = true;
            return this;
        }

        /** Also the guest's AF_UNIX sockets (libkrun's KRUN_TSI_HIJACK_UNIX); they are never published on the host. */
        public NetworkBuilder unixSockets(boolean on) {
            unixSockets = on;
            return this;
        }

        /**
         * A guest TCP/UDP listener on {@code guestPort} is reachable on the host at {@code hostPort}; listeners on
         * ports not published stay inside the guest (libkrun's krun_set_port_map "HOST:GUEST").
         */
        public NetworkBuilder publish(int hostPort, int guestPort) {
            published.add(new int[] {hostPort, guestPort});
            return this;
        }

        /**
         * Every guest TCP listener is reachable on the host at its own port number, except those {@link #publish}
         * maps elsewhere (libkrun's {@code krun_set_port_map(NULL)}; off by default: only published ports). The
         * guest's loopback listeners and port 0 stay inside; {@link #listenHost} still applies.
         */
        public NetworkBuilder publishAll(boolean on) {
            publishAll = on;
            return this;
        }

        /** Where the guest's connections and datagrams may go (default: anywhere, as libkrun). */
        public NetworkBuilder outbound(OutboundPolicy policy) {
            outbound = policy;
            return this;
        }

        /** Published listeners bind this host address (e.g. loopback) instead of the one the guest bound. */
        public NetworkBuilder listenHost(InetAddress address) {
            listenHost = address;
            return this;
        }

        TsiConfig build(boolean nicPresent) {
            if (!tsi || nicPresent && !tsiSet) {
                return TsiConfig.disabled();
            }
            try {
                List<PortMapping> ports = new ArrayList<>();
                for (int i = 0; i < published.size(); i++) {
                    try {
                        ports.add(new PortMapping(published.get(i)[0], published.get(i)[1]));
                    } catch (IllegalArgumentException e) {
                        throw new ConfigurationException("network.publish[" + i + "]", e.getMessage());
                    }
                }
                TsiConfig t = TsiConfig.of(TsiConfig.HIJACK_INET | (unixSockets ? TsiConfig.HIJACK_UNIX : 0), ports)
                        .withOutbound(outbound == null ? OutboundPolicy.ALLOW_ALL : outbound).withPublishAll(publishAll);
                return listenHost == null ? t : t.withListenHost(listenHost);
            } catch (IllegalArgumentException e) {
                throw fieldError(e, "tsi.", "network");
            }
        }
    }


    /** The implicit console and named ports (msb_krun's ConsoleBuilder). Default: the host's stdio. */
    public static final class ConsoleBuilder {
        private ConsoleConfig implicit = new ConsoleConfig.Stdio();
        private final List<ConsolePortConfig> ports = new ArrayList<>();
        private final List<SerialConsoleConfig> serials = new ArrayList<>();
        private final List<DeviceConfig> extraDevices = new ArrayList<>();

        private ConsoleBuilder() {}

        /** Console output appended to a file, no input (krun_set_console_output). */
        public ConsoleBuilder output(Path path) {
            implicit = new ConsoleConfig.ToFile(path);
            return this;
        }

        /** The command's stdin, stdout and stderr as Java streams, carried separately. */
        public ConsoleBuilder piped(InputStream stdin, OutputStream stdout, OutputStream stderr) {
            implicit = new ConsoleConfig.Piped(stdin, stdout, stderr);
            return this;
        }

        /** hvc0 on Java streams (the kernel's console and, without ports, the command's stdio). */
        public ConsoleBuilder streams(InputStream in, OutputStream out) {
            implicit = new ConsoleConfig.Streams(in, out);
            return this;
        }

        /** No implicit console device (krun_disable_implicit_console); named ports still get one. */
        public ConsoleBuilder disableImplicit() {
            implicit = new ConsoleConfig.None();
            return this;
        }

        /** A named port on host descriptors the caller keeps owning (the same fd for both on a socket). */
        public ConsoleBuilder port(String name, int inputFd, int outputFd) {
            ports.add(new ConsolePortConfig.Fds(name, inputFd, outputFd, false));
            return this;
        }

        /** A named port on a terminal; raw mode while the VM runs. */
        public ConsoleBuilder portTty(String name, int ttyFd) {
            ports.add(new ConsolePortConfig.Fds(name, ttyFd, ttyFd, true));
            return this;
        }

        /** A named port on Java streams the caller keeps owning; either may be null. */
        public ConsoleBuilder port(String name, InputStream in, OutputStream out) {
            ports.add(new ConsolePortConfig.Streams(name, in, out));
            return this;
        }

        /**
         * A legacy serial console (a 16550A UART: COM1, the guest's ttyS0, then COM2 ...) on host descriptors the
         * caller keeps owning, either negative for none (krun_add_serial_console_default). The kernel logs to it with
         * {@code console=ttyS0} on its command line.
         */
        public ConsoleBuilder serial(int inputFd, int outputFd) {
            serials.add(new SerialConsoleConfig(inputFd, outputFd));
            return this;
        }

        /**
         * The implicit console on host descriptors the caller keeps owning, each negative for none, laid out as for
         * stdin/stdout/stderr (hvc0 on the terminal among them, a krun-stdin/-stdout/-stderr port for each other).
         */
        public ConsoleBuilder fds(int inputFd, int outputFd, int errorFd) {
            implicit = new ConsoleConfig.Fds(inputFd, outputFd, errorFd);
            return this;
        }

        /**
         * A further virtio-console device laid out the same way on host descriptors the caller keeps owning
         * (krun_add_virtio_console_default): the guest's next hvc. It takes a virtio-mmio slot before rng and balloon.
         */
        public ConsoleBuilder virtioConsole(int inputFd, int outputFd, int errorFd) {
            extraDevices.add(new VirtioConsoleConfig(inputFd, outputFd, errorFd));
            return this;
        }

        /**
         * A further virtio-console device with exactly these ports (krun_add_virtio_console_multiport): terminal ports
         * are console ports (hvc), names are optional ("" for none). It takes a virtio-mmio slot before rng and
         * balloon.
         */
        public ConsoleBuilder multiport(ConsolePortConfig... ports) {
            extraDevices.add(new VirtioConsolePortsConfig(List.of(ports)));
            return this;
        }

        ConsoleConfig implicit() { return implicit; }
    }

    /** The command (msb_krun's ExecBuilder). */
    public static final class ExecBuilder {
        private String path;
        private final List<String> args = new ArrayList<>();
        private final List<String[]> env = new ArrayList<>();
        private String workdir;
        private String hostname;
        private final List<String[]> rlimits = new ArrayList<>();
        private boolean mountShares = true;
        private List<String> dns = List.of();

        private ExecBuilder() {}

        /**
         * The guest's DNS servers (1 to 3 IPv4 or IPv6 literals) for its /etc/resolv.conf when the root's names none
         * but loopback ones: used with a NIC's static address ({@link NetBuilder#ipv4}) and under TSI (instead of
         * the host's). A DHCP lease adds its own.
         */
        public ExecBuilder dns(String... servers) {
            this.dns = List.of(servers);
            return this;
        }

        /**
         * Whether init mounts each share besides the root at {@code /mnt/TAG} (default true). Off, the guest mounts
         * them itself ({@code mount -t virtiofs TAG DIR}), as under libkrun, whose init mounts none.
         */
        public ExecBuilder mountShares(boolean on) {
            this.mountShares = on;
            return this;
        }

        /** The program; a name without '/' is looked up in the guest's PATH. */
        public ExecBuilder path(String path) {
            this.path = path;
            return this;
        }

        public ExecBuilder args(String... args) {
            this.args.addAll(Arrays.asList(args));
            return this;
        }

        public ExecBuilder args(List<String> args) {
            this.args.addAll(args);
            return this;
        }

        public ExecBuilder env(String key, String value) {
            env.add(new String[] {key, value});
            return this;
        }

        public ExecBuilder envs(Map<String, String> vars) {
            vars.forEach(this::env);
            return this;
        }

        public ExecBuilder workdir(String dir) {
            this.workdir = dir;
            return this;
        }

        public ExecBuilder hostname(String name) {
            this.hostname = name;
            return this;
        }

        /** A limit by name as msb_krun ({@code "NOFILE"}, {@code "RLIMIT_NPROC"}) or number ({@code "7"}). */
        public ExecBuilder rlimit(String resource, long soft, long hard) {
            rlimits.add(new String[] {resource, Long.toString(soft), Long.toString(hard)});
            return this;
        }

        InitConfig build(String[] rootDisk, List<FsShare> shares) {
            if (path == null || path.isEmpty()) {
                throw new ConfigurationException("exec.path", "no program given");
            }
            try {
                InitConfig.Builder b = InitConfig.builder(path);
                args.forEach(b::arg);
                env.forEach(kv -> b.env(kv[0], kv[1]));
                if (workdir != null) {
                    b.workdir(workdir);
                }
                if (hostname != null) {
                    b.hostname(hostname);
                }
                for (String[] r : rlimits) {
                    b.rlimit(new RLimit(RLimit.Resource.parse(r[0]), Long.parseLong(r[1]), Long.parseLong(r[2])));
                }
                if (rootDisk != null) {
                    b.rootDisk(new RootDisk(rootDisk[0], rootDisk[1], rootDisk[2]));
                }
                if (mountShares) {
                    shares.stream().filter(s -> !s.isRoot()).forEach(s -> b.mount(s.tag(), "/mnt/" + s.tag()));
                }
                if (!dns.isEmpty()) {
                    b.resolvers(new dev.jkrun.init.Resolvers(dns, List.of(), List.of()));
                }
                return b.build();
            } catch (InvalidInitConfigException e) {
                String field = e.field().equals("root-disk") ? "root_disk" : "exec." + e.field();
                throw new ConfigurationException(field, e.getMessage().substring(e.field().length() + 2));
            }
        }
    }

    /**
     * A descriptor of this process as a path that opens the same file again (Linux's /proc/self/fd magic links).
     * That open grants what the file's permissions allow, not what {@code fd} allowed, so {@code fd} must be open
     * for reading, and whoever opens the path for writing checks {@link #readableFd} says O_RDWR.
     */
    static Path fdPath(String field, int fd) {
        readableFd(field, fd);
        return Path.of("/proc/self/fd/" + fd);
    }

    /** The access mode of {@code fd}, an open descriptor that is not write-only. */
    static int readableFd(String field, int fd) {
        if (fd < 0) {
            throw new ConfigurationException(field, "not a file descriptor: " + fd);
        }
        int mode;
        try {
            mode = FileDescriptor.accessMode(fd);
        } catch (NativeCallException e) {
            throw new ConfigurationException(field, e.errno() == Errno.EBADF ? "descriptor " + fd + " is not open" : e.getMessage());
        }
        if (mode == FileDescriptor.O_WRONLY) {
            throw new ConfigurationException(field, "descriptor " + fd + " is open write-only; jkrun reads from it");
        }
        return mode;
    }
}
