package dev.jkrun.krun;

import static dev.jkrun.krun.KrunConstants.EEXIST;
import static dev.jkrun.krun.KrunConstants.ENODEV;
import static dev.jkrun.krun.KrunConstants.EINVAL;
import static dev.jkrun.krun.KrunConstants.ENOENT;
import static dev.jkrun.krun.KrunConstants.ENOMEM;
import static dev.jkrun.krun.KrunConstants.ENOTSUP;
import static dev.jkrun.krun.KrunConstants.ENOTTY;

import dev.jkrun.devices.block.ImageFormat;
import dev.jkrun.devices.block.SyncMode;
import dev.jkrun.devices.fs.augment.VirtualEntry;
import dev.jkrun.devices.fs.nullfs.NullFs;
import dev.jkrun.devices.virtio.vsock.VsockPort;
import dev.jkrun.devices.virtio.vsock.tsi.PortMapping;
import dev.jkrun.devices.virtio.vsock.tsi.TsiConfig;
import dev.jkrun.devices.virtio.vsock.tsi.TsiScope;
import dev.jkrun.init.GuestInit;
import dev.jkrun.init.RLimit;
import dev.jkrun.libc.EventFd;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.ProcessCredentials;
import dev.jkrun.libc.Terminal;
import dev.jkrun.loader.krunfw.KrunfwFetchException;
import dev.jkrun.loader.krunfw.KrunfwNotFoundException;
import dev.jkrun.vmm.ConfigurationException;
import dev.jkrun.vmm.ConsolePortConfig;
import dev.jkrun.vmm.MachineConfig;
import dev.jkrun.vmm.NetDeviceConfig;
import dev.jkrun.vmm.SerialConsoleConfig;
import dev.jkrun.vmm.StopReason;
import dev.jkrun.vmm.VirtioConsoleConfig;
import dev.jkrun.vmm.VirtualMachine;
import dev.jkrun.vmm.HostHypervisor;
import dev.jkrun.vmm.VmBuilder;
import dev.jkrun.vmm.VmConfig;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.LinkOption;
import dev.jkrun.loader.KernelFormat;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import jnr.ffi.Pointer;
import jnr.ffi.byref.NumberByReference;
import jnr.ffi.byref.PointerByReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * jkrun's pure-Java {@link LibKrun}: a thread-safe table of contexts (ids from 0, never reused, as libkrun's), each
 * recording what the krun_set_* and krun_add_* calls asked for; krun_start_enter turns a context into a
 * {@link VmConfig} through the {@link VmBuilder}, runs it and exits the process with the guest's status.
 *
 * <p>Argument checks follow libkrun's src/libkrun/src/lib.rs: where libkrun parses an argument before looking the
 * context up, so does this class (a NULL string is {@code -EINVAL} even for an unknown context); functions for
 * features jkrun lacks look the context up first ({@code -ENOENT}) and then return {@code -ENOTSUP} without
 * touching it. Every call is logged at debug level on {@code dev.jkrun.krun.JkrunLibKrun}; nothing is logged at
 * info or above except krun_start_enter's reason for returning or exiting after a crash or a failure of the VMM.
 */
public final class JkrunLibKrun implements LibKrun {
    private static final Logger LOG = LoggerFactory.getLogger(JkrunLibKrun.class);
    /** How long the guest gets to power off after a write to the shutdown eventfd, before it is forced off. */
    static final Duration SHUTDOWN_GRACE = Duration.ofSeconds(10);

    private final Map<Integer, KrunContext> contexts = new ConcurrentHashMap<>();
    private final AtomicInteger nextId = new AtomicInteger();

    /** A separate table, for tests; programs use {@link Jkrun#libkrun()}, which is process-wide as libkrun's. */
    JkrunLibKrun() {}

    /** The recorded configuration of a context, or null (for tests). */
    KrunContext context(int ctxId) { return contexts.get(ctxId); }

    // ---------------------------------------------------------------------------------------------------------
    // Logging and contexts

    @Override
    public int krun_set_log_level(int level) {
        if (level < 0 || level > KrunConstants.KRUN_LOG_LEVEL_TRACE) {
            return done("krun_set_log_level", -EINVAL, level);
        }
        String backend = KrunLogging.apply(level);
        return done("krun_set_log_level", 0, level, backend);
    }

    @Override
    public int krun_init_log(int target_fd, int level, int style, int options) {
        String fn = "krun_init_log";
        if (target_fd < KrunConstants.KRUN_LOG_TARGET_DEFAULT || target_fd == 0) {
            return done(fn, -EINVAL, target_fd, level, style, options);
        }
        if (level < 0 || level > KrunConstants.KRUN_LOG_LEVEL_TRACE
                || style < KrunConstants.KRUN_LOG_STYLE_AUTO || style > KrunConstants.KRUN_LOG_STYLE_NEVER
                || (options != 0 && options != KrunConstants.KRUN_LOG_OPTION_NO_ENV)) {
            return done(fn, -EINVAL, target_fd, level, style, options);
        }
        if (target_fd == KrunConstants.KRUN_LOG_TARGET_DEFAULT) {
            KrunLogging.restore();
        } else {
            int mode;
            try {
                mode = dev.jkrun.libc.FileDescriptor.accessMode(target_fd);
            } catch (dev.jkrun.libc.NativeCallException e) { // not an open descriptor
                return done(fn, -EINVAL, target_fd, level, style, options);
            }
            if (mode == dev.jkrun.libc.FileDescriptor.O_RDONLY) {
                return done(fn, -EINVAL, target_fd, level, style, options);
            }
            try {
                if (KrunLogging.redirect(target_fd) == null) { // slf4j-nop and unknown backends: no output to add
                    return done(fn, -ENOTSUP, target_fd, level, style, options);
                }
            } catch (dev.jkrun.libc.NativeCallException e) { // the descriptor could not be duplicated
                return done(fn, -e.errno(), target_fd, level, style, options);
            }
        }
        String backend = KrunLogging.apply(level);
        return done(fn, 0, target_fd, level, style, options, backend);
    }

    @Override
    public int krun_create_ctx() {
        int id = nextId.getAndIncrement();
        if (id < 0) { // 2^31 contexts: libkrun panics ("Context ID namespace exhausted")
            return done("krun_create_ctx", -ENOMEM);
        }
        contexts.put(id, new KrunContext(id));
        return done("krun_create_ctx", id);
    }

    @Override
    public int krun_free_ctx(int ctx_id) {
        KrunContext c = contexts.remove(ctx_id);
        if (c == null) {
            return done("krun_free_ctx", -ENOENT, ctx_id);
        }
        synchronized (c) {
            c.closeShutdownEventFd();
        }
        return done("krun_free_ctx", 0, ctx_id);
    }

    @Override
    public int krun_set_vm_config(int ctx_id, int num_vcpus, int ram_mib) {
        String fn = "krun_set_vm_config";
        int vcpus = num_vcpus & 0xFF;
        long ram = Integer.toUnsignedLong(ram_mib);
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, ctx_id, vcpus, ram);
        }
        if (vcpus < 1 || vcpus > MachineConfig.MAX_VCPUS || ram < 1 || ram > MachineConfig.MAX_MEMORY_MIB) {
            return done(fn, -EINVAL, ctx_id, vcpus, ram);
        }
        synchronized (c) {
            c.vcpus = vcpus;
            c.ramMib = ram;
        }
        return done(fn, 0, ctx_id, vcpus, ram);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Filesystems and disks

    @Override
    public int krun_set_root(int ctx_id, String root_path) {
        String fn = "krun_set_root";
        if (root_path == null) {
            return done(fn, -EINVAL, ctx_id, null);
        }
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, ctx_id, root_path);
        }
        synchronized (c) {
            if (c.hasRoot()) {
                return done(fn, -EEXIST, ctx_id, root_path);
            }
            c.rootPath = root_path;
        }
        return done(fn, 0, ctx_id, root_path);
    }

    @Override
    public int krun_set_overlayfs_root(int ctx_id, String[] root_layers) {
        String fn = "krun_set_overlayfs_root";
        List<String> layers = cArray(root_layers);
        if (layers == null || layers.isEmpty()) {
            return done(fn, -EINVAL, ctx_id, root_layers);
        }
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, ctx_id, root_layers);
        }
        synchronized (c) {
            if (c.hasRoot()) {
                return done(fn, -EEXIST, ctx_id, root_layers);
            }
            // The last layer is the writable upper one; one layer alone is served as that directory.
            c.rootPath = layers.get(layers.size() - 1);
            c.rootLowerLayers = List.copyOf(layers.subList(0, layers.size() - 1));
        }
        return done(fn, 0, ctx_id, root_layers);
    }

    @Override
    public int krun_set_root_disk(int ctx_id, String disk_path) {
        return legacyDisk("krun_set_root_disk", ctx_id, disk_path, "root");
    }

    @Override
    public int krun_set_data_disk(int ctx_id, String disk_path) {
        return legacyDisk("krun_set_data_disk", ctx_id, disk_path, "data");
    }

    private int legacyDisk(String fn, int ctx_id, String disk_path, String blockId) {
        if (disk_path == null) {
            return done(fn, -EINVAL, ctx_id, null);
        }
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, ctx_id, disk_path);
        }
        synchronized (c) {
            KrunContext.Disk d = new KrunContext.Disk(blockId, disk_path, ImageFormat.RAW, false, SyncMode.FULL, false);
            if (blockId.equals("root")) {
                c.legacyRootDisk = d;
            } else {
                c.legacyDataDisk = d;
            }
        }
        return done(fn, 0, ctx_id, disk_path);
    }

    @Override
    public int krun_add_disk(int ctx_id, String block_id, String disk_path, boolean read_only) {
        return addDisk("krun_add_disk", ctx_id, block_id, disk_path, KrunConstants.KRUN_DISK_FORMAT_RAW, read_only, false,
                KrunConstants.KRUN_SYNC_FULL);
    }

    @Override
    public int krun_add_disk2(int ctx_id, String block_id, String disk_path, int disk_format, boolean read_only) {
        return addDisk("krun_add_disk2", ctx_id, block_id, disk_path, disk_format, read_only, false, KrunConstants.KRUN_SYNC_FULL);
    }

    @Override
    public int krun_add_disk3(int ctx_id, String block_id, String disk_path, int disk_format, boolean read_only,
                              boolean direct_io, int sync_mode) {
        return addDisk("krun_add_disk3", ctx_id, block_id, disk_path, disk_format, read_only, direct_io, sync_mode);
    }

    private int addDisk(String fn, int ctx_id, String blockId, String path, int format, boolean readOnly, boolean directIo, int sync) {
        Object[] args = {ctx_id, blockId, path, format, readOnly, directIo, sync};
        if (path == null || blockId == null) {
            return done(fn, -EINVAL, args);
        }
        ImageFormat f = switch (format) {
            case KrunConstants.KRUN_DISK_FORMAT_RAW -> ImageFormat.RAW;
            case KrunConstants.KRUN_DISK_FORMAT_QCOW2 -> ImageFormat.QCOW2;
            case KrunConstants.KRUN_DISK_FORMAT_VMDK -> ImageFormat.VMDK;
            default -> null;
        };
        SyncMode s = switch (sync) {
            case KrunConstants.KRUN_SYNC_NONE -> SyncMode.NONE;
            case KrunConstants.KRUN_SYNC_RELAXED -> SyncMode.RELAXED;
            case KrunConstants.KRUN_SYNC_FULL -> SyncMode.FULL;
            default -> null;
        };
        if (f == null || s == null) {
            return done(fn, -EINVAL, args);
        }
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, args);
        }
        if (directIo && f != ImageFormat.RAW) {
            // libkrun opens any format with O_DIRECT; jkrun has direct I/O for raw images only. The call still
            // succeeds as it does there, and the disk goes through the page cache (same data, other caching).
            LOG.warn("{}: direct_io on a {} image: jkrun honours it for raw images only; '{}' uses the page cache",
                    fn, f, blockId);
        }
        synchronized (c) {
            c.disks.add(new KrunContext.Disk(blockId, path, f, readOnly, s, directIo && f == ImageFormat.RAW));
        }
        return done(fn, 0, args);
    }

    @Override
    public int krun_set_mapped_volumes(int ctx_id, String[] mapped_volumes) {
        // libkrun: "NO LONGER SUPPORTED", -EINVAL whatever the arguments (the context is not even looked up).
        return done("krun_set_mapped_volumes", -EINVAL, ctx_id, mapped_volumes);
    }

    @Override
    public int krun_add_virtiofs(int ctx_id, String c_tag, String c_path) {
        return addVirtiofs("krun_add_virtiofs", ctx_id, c_tag, c_path, 0, false);
    }

    @Override
    public int krun_add_virtiofs2(int ctx_id, String c_tag, String c_path, long shm_size) {
        return addVirtiofs("krun_add_virtiofs2", ctx_id, c_tag, c_path, shm_size, false);
    }

    @Override
    public int krun_add_virtiofs3(int ctx_id, String c_tag, String c_path, long shm_size, boolean read_only) {
        return addVirtiofs("krun_add_virtiofs3", ctx_id, c_tag, c_path, shm_size, read_only);
    }

    private int addVirtiofs(String fn, int ctx_id, String tag, String path, long shmSize, boolean readOnly) {
        Object[] args = {ctx_id, tag, path, Long.toUnsignedString(shmSize), readOnly};
        if (tag == null || shmSize < 0) { // a size beyond 2^63 does not fit the guest either
            return done(fn, -EINVAL, args);
        }
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, args);
        }
        synchronized (c) {
            boolean root = tag.equals(KrunConstants.KRUN_FS_ROOT_TAG);
            if ((root && c.hasRoot()) || c.shares.stream().anyMatch(s -> s.tag().equals(tag))) {
                return done(fn, -EEXIST, args);
            }
            c.shares.add(new KrunContext.Share(tag, path, shmSize, readOnly));
        }
        return done(fn, 0, args);
    }

    @Override
    public int krun_set_root_disk_remount(int ctx_id, String device, String fstype, String options) {
        String fn = "krun_set_root_disk_remount";
        Object[] args = {ctx_id, device, fstype, options};
        if (device == null) {
            return done(fn, -EINVAL, args);
        }
        String type = fstype == null || fstype.equals("auto") ? null : fstype;
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, args);
        }
        synchronized (c) {
            if (c.hasRoot() || c.disks.isEmpty()) { // libkrun: root already configured, or no krun_add_disk* disk
                return done(fn, -EINVAL, args);
            }
            c.rootDiskRemount = new String[] {device, type, options};
        }
        return done(fn, 0, args);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Network, vsock, GPU, input, sound, vhost-user, TEE, firmware: not in jkrun

    @Override
    public int krun_add_net_unixstream(int ctx_id, String c_path, int fd, byte[] c_mac, int features, int flags) {
        return addNet("krun_add_net_unixstream", ctx_id, c_path, fd, c_mac, features, flags, false);
    }

    @Override
    public int krun_add_net_unixgram(int ctx_id, String c_path, int fd, byte[] c_mac, int features, int flags) {
        return addNet("krun_add_net_unixgram", ctx_id, c_path, fd, c_mac, features, flags, true);
    }

    /**
     * libkrun's rules: exactly one of path and fd (fd >= 0); a 6-byte MAC; features within NET_ALL_FEATURES; flags
     * NET_FLAG_DHCP_CLIENT (jkrun's init configures that NIC from a DHCP server before the command), and
     * NET_FLAG_VFKIT for unixgram only; else -EINVAL.
     */
    private int addNet(String fn, int ctxId, String path, int fd, byte[] mac, int features, int flags, boolean gram) {
        Object[] args = {ctxId, path, fd, mac, features, flags};
        KrunContext c = contexts.get(ctxId);
        int allowedFlags = KrunConstants.NET_FLAG_DHCP_CLIENT | (gram ? KrunConstants.NET_FLAG_VFKIT : 0);
        if ((path == null) == (fd < 0) || mac == null || mac.length < 6 || (features & ~NET_ALL_FEATURES) != 0
                || (flags & ~allowedFlags) != 0) {
            return done(fn, c == null ? -ENOENT : -EINVAL, args);
        }
        if (c == null) {
            return done(fn, -ENOENT, args);
        }
        NetDeviceConfig.Backend b;
        try {
            b = gram ? path != null ? new NetDeviceConfig.UnixGramPath(Path.of(path), (flags & KrunConstants.NET_FLAG_VFKIT) != 0)
                    : new NetDeviceConfig.UnixGramFd(fd)
                    : path != null ? new NetDeviceConfig.UnixStreamPath(Path.of(path)) : new NetDeviceConfig.UnixStreamFd(fd);
        } catch (InvalidPathException e) {
            return done(fn, -EINVAL, args);
        }
        synchronized (c) {
            c.nets.add(new KrunContext.Net(b, Arrays.copyOf(mac, 6), features, (flags & KrunConstants.NET_FLAG_DHCP_CLIENT) != 0));
        }
        return done(fn, 0, args);
    }

    private static final int NET_ALL_FEATURES = KrunConstants.COMPAT_NET_FEATURES | KrunConstants.NET_FEATURE_GUEST_TSO6
            | KrunConstants.NET_FEATURE_HOST_TSO6;

    /** libkrun's rules for tap: a name, a 6-byte MAC, NET_ALL_FEATURES, GUEST_TSO4/6 or GUEST_UFO only with GUEST_CSUM. */
    @Override
    public int krun_add_net_tap(int ctx_id, String c_tap_name, byte[] c_mac, int features, int flags) {
        String fn = "krun_add_net_tap";
        Object[] args = {ctx_id, c_tap_name, c_mac, features, flags};
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, args);
        }
        int segmentation = KrunConstants.NET_FEATURE_GUEST_TSO4 | KrunConstants.NET_FEATURE_GUEST_TSO6
                | KrunConstants.NET_FEATURE_GUEST_UFO;
        if (!dev.jkrun.init.InitConfig.isInterfaceName(c_tap_name) || c_mac == null || c_mac.length < 6
                || (features & ~NET_ALL_FEATURES) != 0
                || (features & segmentation) != 0 && (features & KrunConstants.NET_FEATURE_GUEST_CSUM) == 0
                || (flags & ~KrunConstants.NET_FLAG_DHCP_CLIENT) != 0) {
            return done(fn, -EINVAL, args);
        }
        synchronized (c) {
            c.nets.add(new KrunContext.Net(new NetDeviceConfig.Tap(c_tap_name), Arrays.copyOf(c_mac, 6), features,
                    (flags & KrunConstants.NET_FLAG_DHCP_CLIENT) != 0));
        }
        return done(fn, 0, args);
    }

    @Override
    public int krun_set_passt_fd(int ctx_id, int fd) {
        String fn = "krun_set_passt_fd";
        KrunContext c = contexts.get(ctx_id);
        if (fd < 0) {
            return done(fn, c == null ? -ENOENT : -EINVAL, ctx_id, fd);
        }
        return legacyNet(fn, c, new NetDeviceConfig.UnixStreamFd(fd), ctx_id, fd);
    }

    @Override
    public int krun_set_gvproxy_path(int ctx_id, String c_path) {
        String fn = "krun_set_gvproxy_path";
        KrunContext c = contexts.get(ctx_id);
        if (c_path == null) {
            return done(fn, c == null ? -ENOENT : -EINVAL, ctx_id, c_path);
        }
        try {
            return legacyNet(fn, c, new NetDeviceConfig.UnixGramPath(Path.of(c_path), true), ctx_id, c_path);
        } catch (InvalidPathException e) {
            return done(fn, -EINVAL, ctx_id, c_path);
        }
    }

    /** The legacy single NIC: refused (-EINVAL) once krun_add_net_* added one, as libkrun's net_index check. */
    private int legacyNet(String fn, KrunContext c, NetDeviceConfig.Backend b, Object... args) {
        if (c == null) {
            return done(fn, -ENOENT, args);
        }
        synchronized (c) {
            if (!c.nets.isEmpty()) {
                return done(fn, -EINVAL, args);
            }
            c.legacyNet = b;
        }
        return done(fn, 0, args);
    }

    @Override
    public int krun_set_net_mac(int ctx_id, byte[] c_mac) {
        String fn = "krun_set_net_mac";
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, ctx_id, c_mac);
        }
        if (c_mac == null || c_mac.length < 6) {
            return done(fn, -EINVAL, ctx_id, c_mac);
        }
        synchronized (c) {
            c.legacyMac = Arrays.copyOf(c_mac, 6);
        }
        return done(fn, 0, ctx_id, c_mac);
    }

    @Override
    public int krun_set_port_map(int ctx_id, String[] port_map) {
        String fn = "krun_set_port_map";
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, ctx_id, port_map);
        }
        List<String> map = cArray(port_map);
        if (map == null) { // libkrun: expose every guest listener on its own port
            synchronized (c) {
                if (c.implicitVsockDisabled && c.explicitVsockTsi == null) {
                    return done(fn, -ENODEV, ctx_id, port_map);
                }
                c.portMap = List.of();
                c.publishAll = true;
            }
            return done(fn, 0, ctx_id, port_map);
        }
        List<PortMapping> ports = new ArrayList<>();
        try {
            for (String m : map) {
                ports.add(PortMapping.parse(m));
            }
            TsiConfig.of(TsiConfig.HIJACK_INET, ports); // duplicates: -EINVAL, as libkrun
        } catch (IllegalArgumentException e) {
            return done(fn, -EINVAL, ctx_id, port_map);
        }
        synchronized (c) {
            if (c.implicitVsockDisabled && c.explicitVsockTsi == null) {
                return done(fn, -ENODEV, ctx_id, port_map);
            }
            c.portMap = List.copyOf(ports);
            c.publishAll = false;
        }
        return done(fn, 0, ctx_id, port_map);
    }

    @Override
    public int krun_set_tsi_scope(int ctx_id, String c_ip, String c_subnet, int scope) {
        String fn = "krun_set_tsi_scope";
        if (!contexts.containsKey(ctx_id)) {
            return done(fn, -ENOENT, ctx_id, c_ip, c_subnet, scope & 0xFF);
        }
        if ((scope & 0xFF) > 3) {
            return done(fn, -EINVAL, ctx_id, c_ip, c_subnet, scope & 0xFF);
        }
        TsiScope policy;
        try {
            if (c_ip != null) {
                TsiScope.ipv4(c_ip, "tsi.ip"); // checked as libkrun does; TSI guests keep their own address
            }
            policy = new TsiScope(scope & 0xFF, Optional.ofNullable(c_subnet).map(TsiScope.Subnet::parse));
        } catch (IllegalArgumentException e) {
            LOG.debug("{}: {}", fn, e.getMessage());
            return done(fn, -EINVAL, ctx_id, c_ip, c_subnet, scope & 0xFF);
        }
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, ctx_id, c_ip, c_subnet, scope & 0xFF);
        }
        synchronized (c) {
            c.tsiScope = policy;
        }
        return done(fn, 0, ctx_id, c_ip, c_subnet, scope & 0xFF);
    }

    @Override
    public int krun_set_gpu_options(int ctx_id, int virgl_flags) {
        return unsupported("krun_set_gpu_options", ctx_id, virgl_flags);
    }

    @Override
    public int krun_set_gpu_options2(int ctx_id, int virgl_flags, long shm_size) {
        return unsupported("krun_set_gpu_options2", ctx_id, virgl_flags, shm_size);
    }

    @Override
    public int krun_add_display(int ctx_id, int width, int height) {
        return unsupported("krun_add_display", ctx_id, width, height);
    }

    @Override
    public int krun_display_set_edid(int ctx_id, int display_id, byte[] edid_blob, long blob_size) {
        return unsupported("krun_display_set_edid", ctx_id, display_id, edid_blob, blob_size);
    }

    @Override
    public int krun_display_set_dpi(int ctx_id, int display_id, int dpi) {
        return unsupported("krun_display_set_dpi", ctx_id, display_id, dpi);
    }

    @Override
    public int krun_display_set_physical_size(int ctx_id, int display_id, int width_mm, int height_mm) {
        return unsupported("krun_display_set_physical_size", ctx_id, display_id, width_mm & 0xFFFF, height_mm & 0xFFFF);
    }

    @Override
    public int krun_display_set_refresh_rate(int ctx_id, int display_id, int refresh_rate) {
        return unsupported("krun_display_set_refresh_rate", ctx_id, display_id, refresh_rate);
    }

    @Override
    public int krun_set_display_backend(int ctx_id, Pointer display_backend, long backend_size) {
        return unsupported("krun_set_display_backend", ctx_id, display_backend, backend_size);
    }

    @Override
    public int krun_add_input_device(int ctx_id, Pointer config_backend, long config_backend_size, Pointer events_backend,
                                     long events_backend_size) {
        return unsupported("krun_add_input_device", ctx_id, config_backend, config_backend_size, events_backend, events_backend_size);
    }

    @Override
    public int krun_add_input_device_fd(int ctx_id, int input_fd) {
        return unsupported("krun_add_input_device_fd", ctx_id, input_fd);
    }

    @Override
    public int krun_add_vhost_user_device(int ctx_id, int device_type, String socket_path, String name, int num_queues,
                                          short[] queue_sizes) {
        return unsupported("krun_add_vhost_user_device", ctx_id, device_type, socket_path, name, num_queues & 0xFFFF, queue_sizes);
    }

    @Override
    public int krun_set_snd_device(int ctx_id, boolean enable) {
        if (!contexts.containsKey(ctx_id)) {
            return done("krun_set_snd_device", -ENOENT, ctx_id, enable);
        }
        return done("krun_set_snd_device", enable ? -ENOTSUP : 0, ctx_id, enable);
    }

    @Override
    public int krun_set_tee_config_file(int ctx_id, String filepath) {
        return unsupported("krun_set_tee_config_file", ctx_id, filepath);
    }

    @Override
    public int krun_add_vsock_port(int ctx_id, int port, String c_filepath) {
        return addVsockPort("krun_add_vsock_port", ctx_id, port, c_filepath, false);
    }

    @Override
    public int krun_add_vsock_port2(int ctx_id, int port, String c_filepath, boolean listen) {
        return addVsockPort("krun_add_vsock_port2", ctx_id, port, c_filepath, listen);
    }

    /**
     * libkrun: -ENODEV once vsock is disabled, -EEXIST when a listening bridge's path exists. jkrun also refuses a
     * port bridged twice (-EEXIST; libkrun's map silently keeps the last) and a path a unix socket cannot hold
     * (-EINVAL) here rather than at start.
     */
    private int addVsockPort(String fn, int ctx_id, int port, String path, boolean listen) {
        Object[] args = {ctx_id, Integer.toUnsignedString(port), path, listen};
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, args);
        }
        Path p = path == null ? null : pathOrNull(path);
        if (p == null) {
            return done(fn, -EINVAL, args);
        }
        VsockPort bridge;
        try {
            bridge = new VsockPort(port, p.toAbsolutePath(), listen);
        } catch (IllegalArgumentException e) {
            return done(fn, -EINVAL, args);
        }
        synchronized (c) {
            if (c.implicitVsockDisabled && c.explicitVsockTsi == null) {
                return done(fn, -ENODEV, args);
            }
            if (listen && Files.exists(bridge.path(), LinkOption.NOFOLLOW_LINKS)) {
                return done(fn, -EEXIST, args);
            }
            if (c.vsockPorts.stream().anyMatch(b -> b.port() == port || b.path().equals(bridge.path()))) {
                return done(fn, -EEXIST, args);
            }
            c.vsockPorts.add(bridge);
        }
        return done(fn, 0, args);
    }

    /** An explicit vsock device with TSI features (bits 0-1), after krun_disable_implicit_vsock (else -EEXIST). */
    @Override
    public int krun_add_vsock(int ctx_id, int tsi_features) {
        String fn = "krun_add_vsock";
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, ctx_id, tsi_features);
        }
        if ((tsi_features & ~(KrunConstants.KRUN_TSI_HIJACK_INET | KrunConstants.KRUN_TSI_HIJACK_UNIX)) != 0) {
            return done(fn, -EINVAL, ctx_id, tsi_features);
        }
        synchronized (c) {
            if (!c.implicitVsockDisabled || c.explicitVsockTsi != null) {
                return done(fn, -EEXIST, ctx_id, tsi_features);
            }
            c.explicitVsockTsi = tsi_features;
        }
        return done(fn, 0, ctx_id, tsi_features);
    }

    @Override
    public int krun_disable_implicit_vsock(int ctx_id) {
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done("krun_disable_implicit_vsock", -ENOENT, ctx_id);
        }
        synchronized (c) {
            c.implicitVsockDisabled = true;
        }
        return done("krun_disable_implicit_vsock", 0, ctx_id);
    }

    @Override
    public int krun_set_firmware(int ctx_id, String firmware_path) {
        String fn = "krun_set_firmware";
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, ctx_id, firmware_path);
        }
        if (firmware_path == null || pathOrNull(firmware_path) == null) {
            return done(fn, -EINVAL, ctx_id, firmware_path);
        }
        synchronized (c) {
            c.firmwarePath = firmware_path; // opened (and its size checked) at krun_start_enter, as libkrun does
        }
        return done(fn, 0, ctx_id, firmware_path);
    }

    @Override
    public int krun_split_irqchip(int ctx_id, boolean enable) {
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done("krun_split_irqchip", -ENOENT, ctx_id, enable);
        }
        synchronized (c) {
            c.splitIrqchip = enable;
        }
        return done("krun_split_irqchip", 0, ctx_id, enable);
    }

    @Override
    public int krun_disable_implicit_init(int ctx_id) {
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done("krun_disable_implicit_init", -ENOENT, ctx_id);
        }
        synchronized (c) {
            c.implicitInitDisabled = true;
        }
        return done("krun_disable_implicit_init", 0, ctx_id);
    }

    @Override
    public int krun_get_default_init(PointerByReference data_out, NumberByReference len_out) {
        if (data_out == null || len_out == null) {
            return done("krun_get_default_init", -EINVAL, data_out, len_out);
        }
        // jnr-ffi's references have no public setters: fromNative reads each value as a native caller's would see it.
        Pointer blob = DefaultInit.bytes();
        jnr.ffi.Runtime rt = jnr.ffi.Runtime.getSystemRuntime();
        Pointer cell = rt.getMemoryManager().allocateTemporary(16, true);
        cell.putPointer(0, blob);
        data_out.fromNative(rt, cell, 0);
        cell.putLong(8, blob.size());
        len_out.fromNative(rt, cell, 8);
        return done("krun_get_default_init", 0, data_out, len_out);
    }

    /** jkrun's init as libkrun's static blob: copied once into native memory that lives as long as the process. */
    private static final class DefaultInit {
        private static final Pointer BLOB;

        static {
            byte[] init = GuestInit.binary();
            BLOB = jnr.ffi.Runtime.getSystemRuntime().getMemoryManager().allocateDirect(init.length);
            BLOB.put(0, init, 0, init.length);
        }

        static Pointer bytes() { return BLOB; }
    }

    @Override
    public int krun_fs_add_overlay_file(int ctx_id, String fs_tag, String path, Pointer data, long data_len, int mode,
                                        boolean one_shot) {
        String fn = "krun_fs_add_overlay_file";
        Object[] args = {ctx_id, fs_tag, path, data, Long.toUnsignedString(data_len), Integer.toOctalString(mode), one_shot};
        if (fs_tag == null || path == null || (data == null && data_len != 0)) {
            return done(fn, -EINVAL, args);
        }
        if (data_len < 0 || data_len > Integer.MAX_VALUE - 8) { // libkrun keeps the caller's bytes; jkrun copies them
            return done(fn, -ENOMEM, args);
        }
        byte[] content = new byte[(int) data_len];
        if (data_len > 0) {
            data.get(0, content, 0, content.length);
        }
        return addVirtualEntry(fn, ctx_id, fs_tag, VirtualEntry.file(path, content, mode, one_shot), args);
    }

    @Override
    public int krun_fs_add_overlay_dir(int ctx_id, String fs_tag, String path, int mode) {
        String fn = "krun_fs_add_overlay_dir";
        Object[] args = {ctx_id, fs_tag, path, Integer.toOctalString(mode)};
        if (fs_tag == null || path == null) {
            return done(fn, -EINVAL, args);
        }
        return addVirtualEntry(fn, ctx_id, fs_tag, VirtualEntry.dir(path, mode), args);
    }

    /** libkrun's checks: the tag's device exists (-ENOENT), the path is usable and its parents are virtual directories. */
    private int addVirtualEntry(String fn, int ctx_id, String tag, VirtualEntry entry, Object[] args) {
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, args);
        }
        synchronized (c) {
            if (!c.hasShare(tag)) {
                return done(fn, -ENOENT, args, "no virtio-fs device '" + tag + "'");
            }
            List<VirtualEntry> entries = c.virtualEntries.computeIfAbsent(tag, t -> new ArrayList<>());
            VirtualEntry.Problem problem = VirtualEntry.problem(entries, entry);
            if (problem != null) {
                return done(fn, -problem.errno(), args, problem.reason());
            }
            entries.add(entry);
        }
        return done(fn, 0, args);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Workload

    @Override
    public int krun_set_rlimits(int ctx_id, String[] rlimits) {
        String fn = "krun_set_rlimits";
        List<String> items = cArray(rlimits);
        if (items == null) {
            return done(fn, -EINVAL, ctx_id, null);
        }
        List<RLimit> parsed = new ArrayList<>();
        for (String item : items) {
            try {
                parsed.add(RLimit.parse(item));
            } catch (IllegalArgumentException e) {
                return done(fn, -EINVAL, ctx_id, rlimits, e.getMessage());
            }
        }
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, ctx_id, rlimits);
        }
        synchronized (c) {
            c.rlimits = List.copyOf(parsed);
        }
        return done(fn, 0, ctx_id, rlimits);
    }

    @Override
    public int krun_set_smbios_oem_strings(int ctx_id, String[] oem_strings) {
        String fn = "krun_set_smbios_oem_strings";
        List<String> items = cArray(oem_strings);
        if (items == null) {
            return done(fn, -EINVAL, ctx_id, null);
        }
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, ctx_id, oem_strings);
        }
        synchronized (c) {
            c.oemStrings = List.copyOf(items);
        }
        return done(fn, 0, ctx_id, oem_strings);
    }

    @Override
    public int krun_set_workdir(int ctx_id, String workdir_path) {
        String fn = "krun_set_workdir";
        if (workdir_path == null) {
            return done(fn, -EINVAL, ctx_id, null);
        }
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, ctx_id, workdir_path);
        }
        synchronized (c) {
            // libkrun's init chdir()s from "/", so a relative path means the same as with a leading slash.
            c.workdir = workdir_path.startsWith("/") ? workdir_path : "/" + workdir_path;
        }
        return done(fn, 0, ctx_id, workdir_path);
    }

    @Override
    public int krun_set_exec(int ctx_id, String exec_path, String[] argv, String[] envp) {
        String fn = "krun_set_exec";
        String envText = envp == null ? "NULL (this process's)" : "[" + cArray(envp).size() + " entries]";
        if (exec_path == null) {
            return done(fn, -EINVAL, ctx_id, null, argv, envText);
        }
        List<String> args = argv == null ? List.of() : cArray(argv);
        List<String> env = environment(envp);
        if (env == null) {
            return done(fn, -EINVAL, ctx_id, exec_path, argv, envText);
        }
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, ctx_id, exec_path, argv, envText);
        }
        synchronized (c) {
            c.execPath = exec_path;
            c.args = List.copyOf(args);
            c.env = env;
        }
        return done(fn, 0, ctx_id, exec_path, argv, envText);
    }

    @Override
    public int krun_set_env(int ctx_id, String[] envp) {
        String fn = "krun_set_env";
        String envText = envp == null ? "NULL (this process's)" : "[" + cArray(envp).size() + " entries]";
        List<String> env = environment(envp);
        if (env == null) {
            return done(fn, -EINVAL, ctx_id, envText);
        }
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, ctx_id, envText);
        }
        synchronized (c) {
            c.env = env;
        }
        return done(fn, 0, ctx_id, envText);
    }

    /** NAME=VALUE entries; NULL means this process's environment (libkrun's rule); null for a malformed entry. */
    private static List<String> environment(String[] envp) {
        if (envp == null) {
            List<String> env = new ArrayList<>();
            System.getenv().forEach((k, v) -> env.add(k + "=" + v));
            return List.copyOf(env);
        }
        List<String> env = cArray(envp);
        for (String e : env) {
            if (e.indexOf('=') <= 0) {
                return null;
            }
        }
        return List.copyOf(env);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Kernel, machine

    @Override
    public int krun_set_kernel(int ctx_id, String kernel_path, int kernel_format, String initramfs, String cmdline) {
        String fn = "krun_set_kernel";
        Object[] args = {ctx_id, kernel_path, kernel_format, initramfs, cmdline};
        if (kernel_path == null) {
            return done(fn, -EINVAL, args);
        }
        if (kernel_format == KrunConstants.KRUN_KERNEL_FORMAT_RAW) {
            // libkrun maps a raw kernel at once: a file it cannot open is -EINVAL before the context is looked up.
            Path p = pathOrNull(kernel_path);
            if (p == null || !Files.isRegularFile(p) || !Files.isReadable(p)) {
                return done(fn, -EINVAL, args);
            }
        } else if (kernel_format < 0 || kernel_format > KrunConstants.KRUN_KERNEL_FORMAT_IMAGE_ZSTD
                || kernel_format == KrunConstants.KRUN_KERNEL_FORMAT_PE_GZ) {
            // PE_GZ is an arm64 format: libkrun built for x86_64 has no such variant and refuses it as unknown
            return done(fn, -EINVAL, args);
        }
        if (kernel_format != KrunConstants.KRUN_KERNEL_FORMAT_RAW && initramfs != null) {
            Path p = pathOrNull(initramfs);
            if (p == null || !Files.exists(p)) { // libkrun reads its metadata here
                return done(fn, -EINVAL, args);
            }
        }
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, args);
        }
        KernelFormat format = switch (kernel_format) {
            case KrunConstants.KRUN_KERNEL_FORMAT_ELF -> KernelFormat.ELF;
            case KrunConstants.KRUN_KERNEL_FORMAT_IMAGE_GZ -> KernelFormat.IMAGE_GZ;
            case KrunConstants.KRUN_KERNEL_FORMAT_IMAGE_ZSTD -> KernelFormat.IMAGE_ZSTD;
            case KrunConstants.KRUN_KERNEL_FORMAT_IMAGE_BZ2 -> KernelFormat.IMAGE_BZ2;
            // libkrun maps it at 0x80000000 and enters it there (outside the 1 GiB its boot page tables map, so on
            // libkrun nothing runs); jkrun's tables then map 4 GiB
            case KrunConstants.KRUN_KERNEL_FORMAT_RAW -> KernelFormat.RAW;
            default -> null;
        };
        if (format == null) {
            return done(fn, -ENOTSUP, args);
        }
        synchronized (c) {
            c.kernelPath = kernel_path;
            c.kernelFormat = format;
            c.initramfsPath = initramfs;
            c.kernelCmdline = cmdline;
        }
        return done(fn, 0, args);
    }

    @Override
    public int krun_set_kernel_console(int ctx_id, String console_id) {
        String fn = "krun_set_kernel_console";
        if (console_id == null || console_id.isEmpty() || console_id.chars().anyMatch(ch -> Character.isWhitespace(ch) || ch == 0)) {
            return done(fn, -EINVAL, ctx_id, console_id);
        }
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, ctx_id, console_id);
        }
        synchronized (c) {
            c.kernelConsole = console_id;
        }
        return done(fn, 0, ctx_id, console_id);
    }

    @Override
    public int krun_set_nested_virt(int ctx_id, boolean enabled) {
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done("krun_set_nested_virt", -ENOENT, ctx_id, enabled);
        }
        synchronized (c) {
            c.nestedVirt = enabled;
        }
        return done("krun_set_nested_virt", 0, ctx_id, enabled);
    }

    @Override
    public int krun_check_nested_virt() {
        return done("krun_check_nested_virt", HostHypervisor.nestedVirtualization() ? 1 : 0);
    }

    @Override
    public int krun_has_feature(long feature) {
        int rc;
        if (feature == KrunConstants.KRUN_FEATURE_BLK || feature == KrunConstants.KRUN_FEATURE_INIT_BLOB) {
            rc = 1;
        } else if (feature == KrunConstants.KRUN_FEATURE_NET || feature == KrunConstants.KRUN_FEATURE_GPU
                || feature == KrunConstants.KRUN_FEATURE_INPUT || feature == KrunConstants.KRUN_FEATURE_TEE
                || feature == KrunConstants.KRUN_FEATURE_AMD_SEV || feature == KrunConstants.KRUN_FEATURE_INTEL_TDX
                || feature == KrunConstants.KRUN_FEATURE_AWS_NITRO || feature == KrunConstants.KRUN_FEATURE_VIRGL_RESOURCE_MAP2) {
            rc = 0;
        } else {
            rc = -EINVAL;
        }
        return done("krun_has_feature", rc, Long.toUnsignedString(feature));
    }

    @Override
    public int krun_get_max_vcpus() {
        try {
            return done("krun_get_max_vcpus", HostHypervisor.maxVcpus());
        } catch (RuntimeException e) {
            LOG.debug("krun_get_max_vcpus: {}", e.toString());
            return done("krun_get_max_vcpus", -EINVAL);
        }
    }

    @Override
    public int krun_setuid(int ctx_id, int uid) {
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done("krun_setuid", -ENOENT, ctx_id, Integer.toUnsignedString(uid));
        }
        synchronized (c) {
            c.vmmUid = uid;
        }
        return done("krun_setuid", 0, ctx_id, Integer.toUnsignedString(uid));
    }

    @Override
    public int krun_setgid(int ctx_id, int gid) {
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done("krun_setgid", -ENOENT, ctx_id, Integer.toUnsignedString(gid));
        }
        synchronized (c) {
            c.vmmGid = gid;
        }
        return done("krun_setgid", 0, ctx_id, Integer.toUnsignedString(gid));
    }

    // ---------------------------------------------------------------------------------------------------------
    // Consoles

    @Override
    public int krun_get_shutdown_eventfd(int ctx_id) {
        String fn = "krun_get_shutdown_eventfd";
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, ctx_id);
        }
        synchronized (c) {
            try {
                if (c.shutdownEventFd == null) {
                    c.shutdownEventFd = new EventFd();
                }
                return done(fn, c.shutdownEventFd.fd().raw(), ctx_id);
            } catch (NativeCallException e) {
                return done(fn, -(e.errno() > 0 ? e.errno() : EINVAL), ctx_id);
            }
        }
    }

    @Override
    public int krun_set_console_output(int ctx_id, String c_filepath) {
        String fn = "krun_set_console_output";
        if (c_filepath == null) {
            return done(fn, -EINVAL, ctx_id, null);
        }
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, ctx_id, c_filepath);
        }
        synchronized (c) {
            if (c.consoleOutput != null) {
                return done(fn, -EINVAL, ctx_id, c_filepath);
            }
            c.consoleOutput = c_filepath;
        }
        return done(fn, 0, ctx_id, c_filepath);
    }

    @Override
    public int krun_disable_implicit_console(int ctx_id) {
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done("krun_disable_implicit_console", -ENOENT, ctx_id);
        }
        synchronized (c) {
            c.implicitConsoleDisabled = true;
        }
        return done("krun_disable_implicit_console", 0, ctx_id);
    }

    @Override
    public int krun_add_virtio_console_default(int ctx_id, int input_fd, int output_fd, int err_fd) {
        String fn = "krun_add_virtio_console_default";
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, ctx_id, input_fd, output_fd, err_fd);
        }
        synchronized (c) {
            c.virtioConsoles.add(new VirtioConsoleConfig(input_fd, output_fd, err_fd));
        }
        return done(fn, 0, ctx_id, input_fd, output_fd, err_fd);
    }

    @Override
    public int krun_add_serial_console_default(int ctx_id, int input_fd, int output_fd) {
        String fn = "krun_add_serial_console_default";
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, ctx_id, input_fd, output_fd);
        }
        synchronized (c) {
            // libkrun keeps a fifth and later one but never places it (only COM1-COM4 exist): say so instead
            if (c.serialConsoles.size() >= SerialConsoleConfig.MAX) {
                return done(fn, -EINVAL, ctx_id, input_fd, output_fd);
            }
            c.serialConsoles.add(new SerialConsoleConfig(input_fd, output_fd));
        }
        return done(fn, 0, ctx_id, input_fd, output_fd);
    }

    @Override
    public int krun_add_virtio_console_multiport(int ctx_id) {
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done("krun_add_virtio_console_multiport", -ENOENT, ctx_id);
        }
        int id;
        synchronized (c) {
            id = c.multiportConsoles.size();
            c.multiportConsoles.add(new ArrayList<>());
        }
        return done("krun_add_virtio_console_multiport", id, ctx_id);
    }

    @Override
    public int krun_add_console_port_tty(int ctx_id, int console_id, String name, int tty_fd) {
        String fn = "krun_add_console_port_tty";
        Object[] args = {ctx_id, console_id, name, tty_fd};
        if (tty_fd < 0) {
            return done(fn, -EINVAL, args);
        }
        if (!Terminal.isTerminal(tty_fd)) {
            return done(fn, -ENOTTY, args);
        }
        return addPort(fn, args, ctx_id, console_id, name, new int[] {tty_fd, tty_fd}, true);
    }

    @Override
    public int krun_add_console_port_inout(int ctx_id, int console_id, String name, int input_fd, int output_fd) {
        return addPort("krun_add_console_port_inout", new Object[] {ctx_id, console_id, name, input_fd, output_fd}, ctx_id,
                console_id, name, new int[] {input_fd, output_fd}, false);
    }

    private int addPort(String fn, Object[] args, int ctx_id, int console_id, String name, int[] fds, boolean tty) {
        String n = name == null ? "" : name;
        KrunContext c = contexts.get(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, args);
        }
        synchronized (c) {
            if (console_id < 0 || console_id >= c.multiportConsoles.size()) {
                return done(fn, -EINVAL, args);
            }
            c.multiportConsoles.get(console_id).add(new KrunContext.Port(n, fds[0], fds[1], tty));
        }
        return done(fn, 0, args);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Start

    @Override
    public int krun_start_enter(int ctx_id) {
        return startEnter(ctx_id, reason -> {
            System.out.flush();
            System.err.flush();
            System.exit(reason.processExitStatus());
        });
    }

    /** Where krun_start_enter goes once the VM has stopped: {@code System.exit} in production, a recorder in tests. */
    @FunctionalInterface
    interface Exit {
        void exit(StopReason reason);
    }

    /**
     * krun_start_enter with a replaceable exit: builds the context into a VM, runs it to its stop and hands the
     * reason to {@code exit}. Returns a negative errno when the VM cannot be built or started (the context is
     * consumed either way, as libkrun's), else 0 once {@code exit} returns (which System.exit never does).
     */
    int startEnter(int ctx_id, Exit exit) {
        String fn = "krun_start_enter";
        KrunContext c = contexts.remove(ctx_id);
        if (c == null) {
            return done(fn, -ENOENT, ctx_id);
        }
        EventFd shutdown;
        VirtualMachine vm;
        synchronized (c) {
            shutdown = c.shutdownEventFd;
            try {
                VmConfig config = toVmConfig(c);
                vm = VirtualMachine.create(config, new PrintStream(new DebugLines(), true, StandardCharsets.UTF_8), null);
            } catch (ConfigurationException e) {
                LOG.error("krun_start_enter: invalid configuration: {}", e.getMessage());
                c.closeShutdownEventFd();
                return done(fn, -EINVAL, ctx_id);
            } catch (KrunfwNotFoundException | KrunfwFetchException e) {
                LOG.error("krun_start_enter: no kernel: {}", e.getMessage());
                c.closeShutdownEventFd();
                return done(fn, -ENOENT, ctx_id);
            } catch (RuntimeException e) {
                LOG.error("krun_start_enter: building the microVM failed: {}", e.toString());
                c.closeShutdownEventFd();
                return done(fn, -EINVAL, ctx_id);
            }
        }
        if (c.vmmGid != null || c.vmmUid != null) {
            // After the VM is built (its disks, shares, /dev/kvm and sockets are open, which is what running as root
            // was for: krun_setuid's documented use) and before any vCPU runs guest code. libkrun switches before it
            // builds; jkrun also drops root's supplementary groups.
            try {
                ProcessCredentials.switchTo(c.vmmGid == null ? OptionalInt.empty() : OptionalInt.of(c.vmmGid),
                        c.vmmUid == null ? OptionalInt.empty() : OptionalInt.of(c.vmmUid));
            } catch (NativeCallException e) {
                LOG.error("krun_start_enter: {}", e.getMessage());
                vm.close();
                c.closeShutdownEventFd();
                return done(fn, -(e.errno() > 0 ? e.errno() : EINVAL), ctx_id);
            }
        }
        Thread hook = new Thread(vm::close, "jkrun-krun-exit");
        Runtime.getRuntime().addShutdownHook(hook);
        AtomicBoolean over = new AtomicBoolean();
        Thread watcher = shutdown == null ? null : watchShutdown(shutdown, vm, over);
        StopReason reason;
        try {
            LOG.debug("{}({}): starting", fn, ctx_id);
            vm.start();
            reason = vm.waitForStop();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            reason = StopReason.of(StopReason.Kind.KILLED, "interrupted while waiting for the VM");
        } catch (RuntimeException e) {
            reason = StopReason.of(StopReason.Kind.START_FAILED, e.toString());
        } finally {
            over.set(true);
            vm.close();
            if (watcher != null) {
                shutdown.signal(); // wakes the watcher, which sees "over" and leaves
                try {
                    watcher.join(1000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                shutdown.close();
            }
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException ignored) {
                // the JVM is already shutting down
            }
        }
        if (reason.kind() == StopReason.Kind.START_FAILED) {
            LOG.error("krun_start_enter: the microVM could not start: {}", reason.detail());
            return done(fn, -EINVAL, ctx_id);
        }
        if (reason.kind() == StopReason.Kind.CRASH || reason.kind() == StopReason.Kind.INFRASTRUCTURE_ERROR) {
            // A status of 1 alone would not tell a guest's failure from the VM's (libkrun logs these as errors too).
            LOG.warn("{}: the VM stopped: {}; exiting with status {}", fn, reason, reason.processExitStatus());
        } else {
            LOG.debug("{}({}): the VM stopped: {}; exiting with status {}", fn, ctx_id, reason, reason.processExitStatus());
        }
        exit.exit(reason);
        return 0;
    }

    /** A thread that waits for a write to the shutdown eventfd and then stops the VM (orderly, forced after the grace). */
    private static Thread watchShutdown(EventFd efd, VirtualMachine vm, AtomicBoolean over) {
        Thread t = new Thread(() -> {
            try {
                efd.await();
            } catch (RuntimeException e) {
                return; // closed under us
            }
            if (over.get()) {
                return;
            }
            LOG.debug("the shutdown eventfd was written: stopping the VM");
            try {
                vm.stop(SHUTDOWN_GRACE);
            } catch (InterruptedException e) {
                vm.kill();
            } catch (RuntimeException e) {
                LOG.debug("stopping the VM failed: {}", e.toString());
                vm.kill();
            }
        }, "jkrun-krun-shutdown-eventfd");
        t.setDaemon(true);
        t.start();
        return t;
    }

    /** The context as a {@link VmConfig}; throws {@link ConfigurationException} naming the field that is wrong. */
    static VmConfig toVmConfig(KrunContext c) {
        VmBuilder b = VmBuilder.create();
        b.machine(m -> {
            if (c.vcpus != null) {
                m.vcpus(c.vcpus);
            }
            if (c.ramMib != null) {
                m.memoryMib(c.ramMib);
            }
            m.nestedVirt(c.nestedVirt);
            m.splitIrqchip(c.splitIrqchip);
        });
        b.kernel(k -> {
            if (c.kernelPath != null) {
                k.kernelPath(path("kernel.path", c.kernelPath));
                k.kernelFormat(c.kernelFormat);
            }
            if (c.initramfsPath != null) {
                k.initramfs(path("kernel.initramfs", c.initramfsPath));
            }
            if (c.kernelCmdline != null) {
                k.replaceCmdline(c.kernelCmdline);
            }
            if (c.kernelConsole != null) {
                k.cmdline("console=" + c.kernelConsole);
            }
            if (c.implicitInitDisabled) { // the kernel still runs /init.krun: the root's own
                k.initPath("/" + GuestInit.FILE_NAME);
            }
            if (c.firmwarePath != null) {
                k.firmware(path("kernel.firmware", c.firmwarePath));
            }
        });
        String root = KrunConstants.KRUN_FS_ROOT_TAG;
        if (c.rootPath != null && c.rootLowerLayers.isEmpty()) {
            b.fs(fs -> virtual(fs.root(path("fs.root", c.rootPath)), c, root));
        } else if (c.rootPath != null) {
            List<Path> layers = new ArrayList<>();
            for (String l : c.rootLowerLayers) {
                layers.add(path("fs.layers", l));
            }
            layers.add(path("fs.root", c.rootPath));
            b.fs(fs -> virtual(fs.root(layers.get(layers.size() - 1)).layers(layers), c, root));
        }
        for (KrunContext.Share s : c.shares) {
            if (s.path() == null) {
                // krun_add_virtiofs3 without a host path: libkrun's NullFs (which refuses every change itself) with its
                // virtual entries; read_only as given, so a write-open of a virtual file is EACCES as in libkrun
                b.fs(fs -> virtual(fs.tag(s.tag()).custom(NullFs::new).readOnly(s.readOnly()).shmSize(s.shmSize()),
                        c, s.tag()));
                continue;
            }
            b.fs(fs -> virtual(fs.tag(s.tag()).path(path("fs.path", s.path())).readOnly(s.readOnly())
                    .shmSize(s.shmSize()), c, s.tag()));
        }
        for (KrunContext.Disk d : c.effectiveDisks()) {
            b.disk(x -> x.id(d.blockId()).path(path("disk.path", d.path())).format(d.format()).readOnly(d.readOnly())
                    .sync(d.sync()).directIo(d.directIo()));
        }
        if (c.rootDiskRemount != null) {
            String[] r = c.rootDiskRemount;
            b.rootDisk(r[0], r[1] == null ? "" : r[1], r[2] == null ? "" : r[2]);
            Path empty = emptyRoot();
            b.fs(fs -> virtual(fs.root(empty).readOnly(true), c, root));
        }
        if (c.execPath != null) {
            b.exec(e -> {
                e.path(c.execPath).args(c.args).mountShares(false); // libkrun's init mounts no extra share
                for (String kv : c.env == null ? List.<String>of() : c.env) {
                    int eq = kv.indexOf('=');
                    e.env(kv.substring(0, eq), kv.substring(eq + 1));
                }
                if (c.workdir != null) {
                    e.workdir(c.workdir);
                }
                for (RLimit r : c.rlimits) {
                    e.rlimit(r.resource().name(), r.soft(), r.hard());
                }
            });
        } else if (c.env != null || c.workdir != null || !c.rlimits.isEmpty()) {
            LOG.debug("krun_start_enter: environment, workdir and rlimits are for krun_set_exec's workload; there is none");
        }
        b.console(con -> {
            if (c.implicitConsoleDisabled) {
                con.disableImplicit();
            } else if (c.consoleOutput != null) {
                con.output(path("console.output", c.consoleOutput));
            }
            for (SerialConsoleConfig s : c.serialConsoles) {
                con.serial(s.inputFd(), s.outputFd());
            }
            for (VirtioConsoleConfig v : c.virtioConsoles) {
                con.virtioConsole(v.inputFd(), v.outputFd(), v.errorFd());
            }
            // each multiport console is a virtio-console device of its own, its ports in order (libkrun's); one without
            // ports adds nothing
            for (List<KrunContext.Port> ports : c.multiportConsoles) {
                if (!ports.isEmpty()) {
                    con.multiport(ports.stream().map(p -> (ConsolePortConfig) new ConsolePortConfig.Fds(p.name(),
                            p.inputFd(), p.outputFd(), p.tty())).toArray(ConsolePortConfig[]::new));
                }
            }
        });
        if (!c.oemStrings.isEmpty()) {
            b.smbiosOemStrings(c.oemStrings.toArray(String[]::new));
        }
        // libkrun's rule: an explicit device with its TSI features; else, unless disabled, the implicit one, which has
        // TSI for IPv4/IPv6 when the VM has no NIC, and the port map.
        for (KrunContext.Net n : c.nets) {
            b.net(nb -> nb.mac(n.mac()).features(n.features()).backend(n.backend()).dhcp(n.dhcp()));
        }
        if (c.legacyNet != null) { // libkrun adds it after the others, with the legacy offloads
            b.net(nb -> nb.mac(c.legacyMac != null ? c.legacyMac : LEGACY_MAC).features(KrunConstants.COMPAT_NET_FEATURES)
                    .backend(c.legacyNet).dhcp(false));
        }
        boolean nic = !c.nets.isEmpty() || c.legacyNet != null;
        int scope = c.explicitVsockTsi != null ? c.explicitVsockTsi : c.implicitVsockDisabled || nic ? 0 : TsiConfig.HIJACK_INET;
        b.network(n -> {
            n.tsi((scope & TsiConfig.HIJACK_INET) != 0).unixSockets((scope & TsiConfig.HIJACK_UNIX) != 0);
            if (c.tsiScope != null) {
                n.outbound(c.tsiScope);
            }
            c.portMap.forEach(m -> n.publish(m.hostPort(), m.guestPort()));
            n.publishAll(c.publishAll);
        });
        if (!c.vsockPorts.isEmpty()) {
            b.vsock(v -> c.vsockPorts.forEach(p -> v.port(p.port(), p.path(), p.listen())));
        }
        return b.build();
    }

    /** Adds the virtual entries krun_fs_add_overlay_file/dir gave {@code tag}. */
    private static VmBuilder.FsBuilder virtual(VmBuilder.FsBuilder fs, KrunContext c, String tag) {
        for (VirtualEntry e : c.virtualEntries(tag)) {
            if (e.isDir()) {
                fs.virtualDir(e.path(), e.mode());
            } else {
                fs.virtualFile(e.path(), e.content(), e.mode(), e.oneShot());
            }
        }
        return fs;
    }

    /**
     * The root libkrun's krun_set_root_disk_remount serves init from (a NullFs with the mount points init needs):
     * here an empty host directory with those directories, removed when the process exits.
     */
    private static Path emptyRoot() {
        try {
            Path dir = Files.createTempDirectory("jkrun-krun-root-");
            dir.toFile().deleteOnExit();
            for (String d : List.of("dev", "proc", "sys", "newroot", "tmp", "run")) {
                Files.createDirectory(dir.resolve(d)).toFile().deleteOnExit();
            }
            return dir;
        } catch (IOException e) {
            throw new ConfigurationException("root_disk", "cannot create the empty root init runs from: " + e.getMessage());
        }
    }

    private static Path path(String field, String p) {
        Path path = pathOrNull(p);
        if (path == null) {
            throw new ConfigurationException(field, "'" + p + "' is not a valid path");
        }
        return path;
    }

    private static Path pathOrNull(String p) {
        try {
            return Path.of(p);
        } catch (InvalidPathException e) {
            return null;
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Helpers

    /** A C NULL-terminated array: the elements before the first null (JNR passes a null element as NULL). */
    private static List<String> cArray(String[] a) {
        if (a == null) {
            return null;
        }
        List<String> out = new ArrayList<>();
        for (String s : a) {
            if (s == null) {
                break;
            }
            out.add(s);
        }
        return out;
    }

    /** libkrun's default MAC for the legacy NIC. */
    private static final byte[] LEGACY_MAC = {0x5a, (byte) 0x94, (byte) 0xef, (byte) 0xe4, 0x0c, (byte) 0xee};

    private int unsupported(String fn, Object... args) {
        int ctxId = (Integer) args[0];
        return done(fn, contexts.containsKey(ctxId) ? -ENOTSUP : -ENOENT, args);
    }

    private static int done(String fn, int rc, Object... args) {
        if (LOG.isDebugEnabled()) {
            StringBuilder sb = new StringBuilder(fn).append('(');
            for (int i = 0; i < args.length; i++) {
                if (i > 0) {
                    sb.append(", ");
                }
                Object a = args[i];
                sb.append(a instanceof Object[] arr ? Arrays.toString(arr)
                        : a instanceof byte[] bytes ? Arrays.toString(bytes)
                        : a instanceof short[] shorts ? Arrays.toString(shorts)
                        : a instanceof String s ? '"' + s + '"'
                        : String.valueOf(a));
            }
            LOG.debug(sb.append(") = ").append(rc).toString());
        }
        return rc;
    }

    /** A stream whose lines become debug messages (the VMM's one-time set-up progress). */
    private static final class DebugLines extends OutputStream {
        private final ByteArrayOutputStream line = new ByteArrayOutputStream();

        @Override
        public synchronized void write(int b) {
            if (b == '\n') {
                LOG.debug("{}", line.toString(StandardCharsets.UTF_8));
                line.reset();
            } else if (line.size() < 4096) {
                line.write(b);
            }
        }
    }
}
