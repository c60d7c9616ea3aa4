package dev.jkrun.krun;

import dev.jkrun.devices.block.DiskImages;
import static dev.jkrun.krun.KrunConstants.EEXIST;
import static dev.jkrun.krun.KrunConstants.EINVAL;
import static dev.jkrun.krun.KrunConstants.ENODEV;
import static dev.jkrun.krun.KrunConstants.ENOENT;
import static dev.jkrun.krun.KrunConstants.ENOTSUP;
import static dev.jkrun.krun.KrunConstants.ENOTTY;
import static dev.jkrun.krun.KrunConstants.KRUN_DISK_FORMAT_QCOW2;
import static dev.jkrun.krun.KrunConstants.KRUN_DISK_FORMAT_RAW;
import static dev.jkrun.krun.KrunConstants.KRUN_DISK_FORMAT_VMDK;
import static dev.jkrun.krun.KrunConstants.KRUN_FS_ROOT_TAG;
import static dev.jkrun.krun.KrunConstants.KRUN_KERNEL_FORMAT_ELF;
import static dev.jkrun.krun.KrunConstants.KRUN_KERNEL_FORMAT_IMAGE_BZ2;
import static dev.jkrun.krun.KrunConstants.KRUN_KERNEL_FORMAT_IMAGE_GZ;
import static dev.jkrun.krun.KrunConstants.KRUN_KERNEL_FORMAT_IMAGE_ZSTD;
import static dev.jkrun.krun.KrunConstants.KRUN_KERNEL_FORMAT_PE_GZ;
import static dev.jkrun.krun.KrunConstants.KRUN_KERNEL_FORMAT_RAW;
import static dev.jkrun.krun.KrunConstants.KRUN_LOG_LEVEL_INFO;
import static dev.jkrun.krun.KrunConstants.KRUN_SYNC_FULL;
import static dev.jkrun.krun.KrunConstants.KRUN_SYNC_NONE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import dev.jkrun.devices.block.ImageFormat;
import dev.jkrun.devices.block.SyncMode;
import dev.jkrun.guests.TestGuests;
import dev.jkrun.init.RLimit;
import dev.jkrun.kvm.KvmAvailability;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.vmm.ConsoleConfig;
import dev.jkrun.vmm.ConsolePortConfig;
import dev.jkrun.vmm.SerialConsoleConfig;
import dev.jkrun.vmm.VirtioConsoleConfig;
import dev.jkrun.vmm.VirtioConsolePortsConfig;
import dev.jkrun.vmm.DiskConfig;
import dev.jkrun.vmm.FsShare;
import dev.jkrun.vmm.BalloonDeviceConfig;
import dev.jkrun.vmm.RngDeviceConfig;
import dev.jkrun.vmm.StopReason;
import dev.jkrun.vmm.NetDeviceConfig;
import dev.jkrun.vmm.VmConfig;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Optional;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntFunction;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import jnr.ffi.byref.NumberByReference;
import jnr.ffi.byref.PointerByReference;
import jnr.ffi.TypeAlias;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every function of {@link LibKrun}, called on jkrun's implementation with valid and invalid arguments, checking the
 * integer codes against libkrun's (src/libkrun/src/lib.rs, include/libkrun.h). Each function has one {@link Spec}:
 * a valid call and its expected result (0, an id/fd, or -ENOTSUP for the functions jkrun lacks, which must be the
 * ones README.md lists), the same call on an unknown context (-ENOENT), and the function's own invalid calls.
 */
class LibKrunConformanceTest {
    /** include/libkrun.h's functions and their parameter counts, in the header's order. */
    static final Map<String, Integer> HEADER = new LinkedHashMap<>();
    /** Functions of microsandbox's libkrun bindings (the project's seed) that the current header no longer has. */
    static final Map<String, Integer> FORK_ONLY = Map.of("krun_set_overlayfs_root", 2, "krun_set_tsi_scope", 4, "krun_set_snd_device", 2);
    /** The 27 functions of the seed (Rust FFI form). */
    static final Set<String> SEED = Set.of("krun_set_log_level", "krun_create_ctx", "krun_free_ctx", "krun_set_vm_config",
            "krun_set_root", "krun_set_overlayfs_root", "krun_add_disk", "krun_add_virtiofs", "krun_add_virtiofs2",
            "krun_set_passt_fd", "krun_set_gvproxy_path", "krun_set_net_mac", "krun_set_port_map", "krun_set_tsi_scope",
            "krun_set_gpu_options", "krun_set_gpu_options2", "krun_set_snd_device", "krun_set_rlimits",
            "krun_set_smbios_oem_strings", "krun_set_workdir", "krun_set_exec", "krun_set_env", "krun_set_tee_config_file",
            "krun_add_vsock_port", "krun_get_shutdown_eventfd", "krun_set_console_output", "krun_start_enter");

    static {
        Object[] h = {
            "krun_set_log_level", 1, "krun_init_log", 4, "krun_create_ctx", 0, "krun_free_ctx", 1, "krun_set_vm_config", 3,
            "krun_set_root", 2, "krun_set_root_disk", 2, "krun_set_data_disk", 2, "krun_add_disk", 4, "krun_add_disk2", 5,
            "krun_add_disk3", 7, "krun_set_mapped_volumes", 2, "krun_add_virtiofs", 3, "krun_add_virtiofs2", 4,
            "krun_add_virtiofs3", 5, "krun_add_net_unixstream", 6, "krun_add_net_unixgram", 6, "krun_add_net_tap", 5,
            "krun_set_passt_fd", 2, "krun_set_gvproxy_path", 2, "krun_set_net_mac", 2, "krun_set_port_map", 2,
            "krun_set_gpu_options", 2, "krun_set_gpu_options2", 3, "krun_add_display", 3, "krun_display_set_edid", 4,
            "krun_display_set_dpi", 3, "krun_display_set_physical_size", 4, "krun_display_set_refresh_rate", 3,
            "krun_set_display_backend", 3, "krun_add_input_device", 5, "krun_add_input_device_fd", 2,
            "krun_add_vhost_user_device", 6, "krun_set_rlimits", 2, "krun_set_smbios_oem_strings", 2, "krun_set_workdir", 2,
            "krun_set_exec", 4, "krun_set_firmware", 2, "krun_set_kernel", 5, "krun_set_env", 2, "krun_set_tee_config_file", 2,
            "krun_add_vsock_port", 3, "krun_add_vsock_port2", 4, "krun_add_vsock", 2, "krun_get_shutdown_eventfd", 1,
            "krun_set_console_output", 2, "krun_setuid", 2, "krun_setgid", 2, "krun_set_nested_virt", 2,
            "krun_check_nested_virt", 0, "krun_has_feature", 1, "krun_get_max_vcpus", 0, "krun_split_irqchip", 2,
            "krun_disable_implicit_console", 1, "krun_disable_implicit_init", 1, "krun_get_default_init", 2,
            "krun_fs_add_overlay_file", 7, "krun_fs_add_overlay_dir", 4, "krun_disable_implicit_vsock", 1,
            "krun_set_kernel_console", 2, "krun_add_virtio_console_default", 4, "krun_add_serial_console_default", 3,
            "krun_add_virtio_console_multiport", 1, "krun_add_console_port_tty", 4, "krun_add_console_port_inout", 5,
            "krun_set_root_disk_remount", 4, "krun_start_enter", 1,
        };
        for (int i = 0; i < h.length; i += 2) {
            HEADER.put((String) h[i], (Integer) h[i + 1]);
        }
    }

    /** Functions whose every valid call is -ENOTSUP in jkrun: README.md's first table. */
    static final Set<String> UNSUPPORTED = Set.of("krun_set_gpu_options",
            "krun_set_gpu_options2", "krun_add_display", "krun_display_set_edid", "krun_display_set_dpi",
            "krun_display_set_physical_size", "krun_display_set_refresh_rate", "krun_set_display_backend",
            "krun_add_input_device", "krun_add_input_device_fd", "krun_add_vhost_user_device", "krun_set_tee_config_file");
    /** Functions supported except for some arguments, which are -ENOTSUP: README.md's second table. */
    static final Set<String> PARTIAL = Set.of("krun_init_log", "krun_set_snd_device");

    /** The multiport console devices a configuration has. */
    static List<VirtioConsolePortsConfig> multiport(VmConfig v) {
        return v.devices().stream().filter(d -> d instanceof VirtioConsolePortsConfig).map(d -> (VirtioConsolePortsConfig) d).toList();
    }

    static final int UNKNOWN = 1_000_000;
    static final int ANY_ID = Integer.MIN_VALUE;

    @TempDir
    Path tmp;
    JkrunLibKrun krun;
    Path rootDir;
    Path diskFile;
    Path kernelFile;

    @BeforeEach
    void setUp() throws Exception {
        krun = new JkrunLibKrun();
        rootDir = Files.createDirectories(tmp.resolve("root"));
        diskFile = Files.write(tmp.resolve("disk.img"), new byte[1 << 16]);
        kernelFile = Files.write(tmp.resolve("vmlinux"), new byte[] {0x7f, 'E', 'L', 'F'});
    }

    // -----------------------------------------------------------------------------------------------------------
    // The interface against the header

    @Test
    void theInterfaceMatchesTheHeaderFunctionForFunction() {
        Map<String, Integer> expected = new LinkedHashMap<>(HEADER);
        expected.putAll(FORK_ONLY);
        Map<String, Integer> actual = Arrays.stream(LibKrun.class.getDeclaredMethods())
                .collect(Collectors.toMap(Method::getName, Method::getParameterCount));
        assertEquals(LibKrun.class.getDeclaredMethods().length, actual.size(), "overloads: " + actual);
        assertEquals(new TreeSet<>(expected.keySet()), new TreeSet<>(actual.keySet()));
        for (Map.Entry<String, Integer> e : expected.entrySet()) {
            assertEquals(e.getValue(), actual.get(e.getKey()), "parameter count of " + e.getKey());
        }
        for (Method m : LibKrun.class.getDeclaredMethods()) {
            assertEquals(int.class, m.getReturnType(), m.getName());
        }
        assertTrue(actual.keySet().containsAll(SEED), "the seed's functions");
        assertEquals(27, SEED.size());
    }

    @Test
    void theChecksCoverEveryFunction() {
        Map<String, Spec> specs = specs();
        Set<String> names = Arrays.stream(LibKrun.class.getDeclaredMethods()).map(Method::getName).collect(Collectors.toCollection(TreeSet::new));
        Set<String> uncovered = new TreeSet<>(names);
        uncovered.removeAll(specs.keySet());
        assertEquals(Set.of(), uncovered, "functions without a conformance check");
        Set<String> stale = new TreeSet<>(specs.keySet());
        stale.removeAll(names);
        assertEquals(Set.of(), stale, "checks for functions the interface does not have");
    }

    @Test
    void theUnsupportedFunctionsAreTheOnesTheReadmeLists() throws Exception {
        String readme = Files.readString(Path.of("README.md"));
        assertEquals(new TreeSet<>(UNSUPPORTED), functionsInSection(readme, "## Functions that return -ENOTSUP"));
        assertEquals(new TreeSet<>(PARTIAL), functionsInSection(readme, "## Functions that return -ENOTSUP for some arguments"));
    }

    private static Set<String> functionsInSection(String text, String heading) {
        int start = text.indexOf(heading + "\n");
        assertTrue(start >= 0, "README.md has no section " + heading);
        int end = text.indexOf("\n## ", start + heading.length());
        String section = text.substring(start, end < 0 ? text.length() : end);
        Set<String> names = new TreeSet<>();
        for (String line : section.split("\n")) {
            if (line.startsWith("| `krun_")) {
                names.add(line.substring(3, line.indexOf('`', 3)));
            }
        }
        return names;
    }

    // -----------------------------------------------------------------------------------------------------------
    // Every function

    @TestFactory
    Stream<DynamicTest> everyFunctionWithValidAndInvalidArguments() {
        Map<String, Spec> specs = specs();
        return Arrays.stream(LibKrun.class.getDeclaredMethods()).sorted(Comparator.comparing(Method::getName))
                .map(m -> dynamicTest(m.getName(), () -> {
                    Spec s = specs.get(m.getName());
                    assertNotNull(s, "no conformance check for " + m.getName());
                    s.run(m);
                }));
    }

    /** One function's check: a valid call, the expected result, the unknown-context result, the invalid calls. */
    final class Spec {
        final String name;
        IntFunction<Object[]> valid;
        int expected;
        boolean takesCtx = true;
        int unknownCtx = -ENOENT;
        CtxCheck setup = c -> { };
        CtxCheck invalid = c -> { };
        CtxCheck custom;

        Spec(String name) { this.name = name; }

        Spec valid(int expected, IntFunction<Object[]> args) {
            this.expected = expected;
            this.valid = args;
            return this;
        }

        Spec noCtx() {
            takesCtx = false;
            return this;
        }

        Spec setup(CtxCheck s) {
            setup = s;
            return this;
        }

        Spec invalid(CtxCheck i) {
            invalid = i;
            return this;
        }

        Spec unknownCtx(int rc) {
            unknownCtx = rc;
            return this;
        }

        Spec custom(CtxCheck c) {
            custom = c;
            return this;
        }

        void run(Method m) throws Exception {
            if (custom != null) {
                custom.check(krun.krun_create_ctx());
                return;
            }
            int ctx = krun.krun_create_ctx();
            setup.check(ctx);
            VmConfig before = expected == -ENOTSUP ? config(ctx) : null;
            int rc = call(m, valid.apply(ctx));
            if (expected == ANY_ID) {
                assertTrue(rc >= 0, name + " with valid arguments returned " + rc);
            } else {
                assertEquals(expected, rc, name + " with valid arguments");
            }
            assertEquals(UNSUPPORTED.contains(name), expected == -ENOTSUP, name + ": -ENOTSUP exactly for the unsupported functions");
            if (expected == -ENOTSUP) {
                assertEquals(before, config(ctx), name + " must leave the context as it was");
            }
            if (takesCtx) {
                assertEquals(unknownCtx, call(m, valid.apply(UNKNOWN)), name + " on an unknown context");
                assertEquals(unknownCtx, call(m, valid.apply(-1)), name + " on context 0xFFFFFFFF");
            }
            invalid.check(krun.krun_create_ctx());
        }

        private int call(Method m, Object[] args) throws Exception {
            try {
                return (int) m.invoke(krun, args);
            } catch (InvocationTargetException e) {
                throw (Exception) e.getCause();
            }
        }
    }

    @FunctionalInterface
    interface CtxCheck {
        void check(int ctx) throws Exception;
    }

    private Map<String, Spec> specs() {
        Map<String, Spec> m = new LinkedHashMap<>();
        String root = rootDir.toString();
        String disk = diskFile.toString();
        byte[] mac = {0x5a, (byte) 0x94, (byte) 0xef, (byte) 0xe4, 0x0c, (byte) 0xee};

        // --- logging and contexts
        spec(m, "krun_set_log_level").noCtx().valid(0, c -> new Object[] {KRUN_LOG_LEVEL_INFO}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_set_log_level(6));
            assertEquals(-EINVAL, krun.krun_set_log_level(-1)); // 0xFFFFFFFF
        });
        spec(m, "krun_init_log").noCtx().valid(0, c -> new Object[] {-1, KRUN_LOG_LEVEL_INFO, 0, 0}).invalid(c -> {
            assertEquals(0, krun.krun_init_log(-1, KRUN_LOG_LEVEL_INFO, 2, 1));
            assertEquals(-EINVAL, krun.krun_init_log(-2, 3, 0, 0), "a negative fd other than -1");
            assertEquals(-EINVAL, krun.krun_init_log(0, 3, 0, 0), "stdin");
            assertEquals(-EINVAL, krun.krun_init_log(-1, 6, 0, 0), "level");
            assertEquals(-EINVAL, krun.krun_init_log(-1, 3, 3, 0), "style");
            assertEquals(-EINVAL, krun.krun_init_log(-1, 3, 0, 2), "options");
            assertEquals(0, krun.krun_init_log(2, 3, 0, 0), "an explicit target fd (stderr): slf4j-simple writes there");
            assertEquals(0, krun.krun_init_log(-1, 3, 0, 0), "back to the backend's own output");
        });
        spec(m, "krun_create_ctx").noCtx().valid(ANY_ID, c -> new Object[] {}).invalid(c -> {
            int next = krun.krun_create_ctx();
            assertEquals(c + 1, next, "ids count up as libkrun's");
        });
        spec(m, "krun_free_ctx").valid(0, c -> new Object[] {c}).invalid(c -> {
            assertEquals(0, krun.krun_free_ctx(c));
            assertEquals(-ENOENT, krun.krun_free_ctx(c), "freed twice");
            assertEquals(-ENOENT, krun.krun_set_root(c, root), "a freed context is gone");
        });
        spec(m, "krun_set_vm_config").valid(0, c -> new Object[] {c, 2, 256}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_set_vm_config(c, 0, 256), "0 vCPUs");
            assertEquals(-EINVAL, krun.krun_set_vm_config(c, 255, 256), "more vCPUs than jkrun's MAX_VCPUS");
            assertEquals(-EINVAL, krun.krun_set_vm_config(c, 256, 256), "256 is 0 as a uint8_t");
            assertEquals(-EINVAL, krun.krun_set_vm_config(c, 1, 0), "no RAM");
            assertEquals(-EINVAL, krun.krun_set_vm_config(c, 1, (1 << 20) + 1), "more than 1 TiB");
            assertEquals(0, krun.krun_set_vm_config(c, 4, 1024));
            VmConfig v = config(c);
            assertEquals(4, v.machine().vcpus());
            assertEquals(1024, v.machine().memoryMib());
            // libkrun has no call for virtio-rng: every VM has one, and so does every jkrun context's
            assertEquals(1, v.devices().stream().filter(d -> d instanceof RngDeviceConfig).count());
            // nor for virtio-balloon: libkrun attaches one to every VM but TEE ones
            assertEquals(1, v.devices().stream().filter(d -> d instanceof BalloonDeviceConfig).count());
            assertEquals(0, krun.krun_disable_implicit_vsock(c));
            assertEquals(List.of(new RngDeviceConfig(), new BalloonDeviceConfig()), config(c).devices(),
                    "without vsock, rng and the balloon are still there");
        });

        // --- filesystems and disks
        spec(m, "krun_set_root").valid(0, c -> new Object[] {c, root}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_set_root(c, null));
            assertEquals(-EINVAL, krun.krun_set_root(UNKNOWN, null), "libkrun parses the path before the context");
            assertEquals(0, krun.krun_set_root(c, root));
            assertEquals(-EEXIST, krun.krun_set_root(c, root), "root set twice");
            assertEquals(-EEXIST, krun.krun_add_virtiofs(c, KRUN_FS_ROOT_TAG, root));
            assertEquals(-EEXIST, krun.krun_set_overlayfs_root(c, new String[] {root}));
            assertEquals(rootDir.toAbsolutePath(), config(c).root().orElseThrow().path());
            int d = krun.krun_create_ctx();
            assertEquals(0, krun.krun_set_root(d, tmp.resolve("missing").toString()), "checked at krun_start_enter, as libkrun");
            assertEquals(-EINVAL, krun.startEnter(d, r -> { throw new AssertionError("ran"); }));
        });
        spec(m, "krun_set_overlayfs_root").valid(0, c -> new Object[] {c, new String[] {root}}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_set_overlayfs_root(c, null));
            assertEquals(-EINVAL, krun.krun_set_overlayfs_root(c, new String[0]), "no layers");
            assertEquals(0, krun.krun_set_overlayfs_root(c, new String[] {root, null, "ignored after the NULL"}));
            assertEquals(-EEXIST, krun.krun_set_overlayfs_root(c, new String[] {root}));
            assertEquals(-EEXIST, krun.krun_set_root(c, root));
            assertEquals(rootDir.toAbsolutePath(), config(c).root().orElseThrow().path());
            assertEquals(List.of(), config(c).root().orElseThrow().lowerLayers(), "one layer is that directory");
            // several layers: bottom to top, the last the writable upper one
            int d = krun.krun_create_ctx();
            String lower = tmp.resolve("lower").toString(), middle = tmp.resolve("middle").toString();
            assertEquals(0, krun.krun_set_overlayfs_root(d, new String[] {lower, middle, root}));
            assertEquals(-EINVAL, krun.startEnter(d, r -> { throw new AssertionError("ran"); }),
                    "a missing layer fails at krun_start_enter, as a missing root does");
            int e = krun.krun_create_ctx();
            Path l1 = java.nio.file.Files.createDirectories(tmp.resolve("l1")), l2 = java.nio.file.Files.createDirectories(tmp.resolve("l2"));
            assertEquals(0, krun.krun_set_overlayfs_root(e, new String[] {l1.toString(), l2.toString(), root}));
            FsShare overlay = config(e).root().orElseThrow();
            assertEquals(rootDir.toAbsolutePath(), overlay.path());
            assertEquals(List.of(l1.toAbsolutePath(), l2.toAbsolutePath()), overlay.lowerLayers());
            int f = krun.krun_create_ctx();
            assertEquals(0, krun.krun_set_overlayfs_root(f, new String[] {tmp.toString(), root}));
            assertEquals(-EINVAL, krun.startEnter(f, r -> { throw new AssertionError("ran"); }),
                    "an upper layer inside a lower one is refused: the guest could write the lower layer");
        });
        spec(m, "krun_set_root_disk").valid(0, c -> new Object[] {c, disk}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_set_root_disk(c, null));
            assertEquals(0, krun.krun_set_root_disk(c, disk));
            assertEquals(0, krun.krun_set_data_disk(c, disk));
            assertEquals(List.of("root", "data"), config(c).disks().stream().map(d -> d.id()).toList());
            assertEquals(0, krun.krun_add_disk(c, "vol", disk, true));
            assertEquals(List.of("vol"), config(c).disks().stream().map(d -> d.id()).toList(), "krun_add_disk* replace root/data disks");
        });
        spec(m, "krun_set_data_disk").valid(0, c -> new Object[] {c, disk}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_set_data_disk(c, null));
            assertEquals(0, krun.krun_set_data_disk(c, disk));
            assertEquals(0, krun.krun_set_data_disk(c, disk), "a setter: the second call replaces the first");
            assertEquals(1, config(c).disks().size());
        });
        spec(m, "krun_add_disk").valid(0, c -> new Object[] {c, "vda", disk, false}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_add_disk(c, null, disk, false));
            assertEquals(-EINVAL, krun.krun_add_disk(c, "vda", null, false));
            assertEquals(0, krun.krun_add_disk(c, "ro", disk, true));
            var d = config(c).disks().get(0);
            assertEquals(ImageFormat.RAW, d.format());
            assertTrue(d.readOnly());
        });
        spec(m, "krun_add_disk2").valid(0, c -> new Object[] {c, "vda", disk, KRUN_DISK_FORMAT_QCOW2, true}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_add_disk2(c, "vda", disk, 3, false), "unknown format");
            assertEquals(-EINVAL, krun.krun_add_disk2(c, "vda", disk, -1, false), "unknown format");
            assertEquals(-EINVAL, krun.krun_add_disk2(UNKNOWN, "vda", disk, 3, false), "libkrun checks the format before the context");
            assertEquals(-EINVAL, krun.krun_add_disk2(c, "vda", null, KRUN_DISK_FORMAT_RAW, false));
            assertEquals(0, krun.krun_add_disk2(c, "vmdk", disk, KRUN_DISK_FORMAT_VMDK, true));
            assertEquals(ImageFormat.VMDK, config(c).disks().get(0).format());
        });
        spec(m, "krun_add_disk3").valid(0, c -> new Object[] {c, "vda", disk, KRUN_DISK_FORMAT_RAW, false, true, KRUN_SYNC_NONE}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_add_disk3(c, "vda", disk, KRUN_DISK_FORMAT_RAW, false, false, 3), "unknown sync mode");
            assertEquals(-EINVAL, krun.krun_add_disk3(c, "vda", disk, 7, false, false, KRUN_SYNC_FULL), "unknown format");
            assertEquals(-EINVAL, krun.krun_add_disk3(c, null, disk, KRUN_DISK_FORMAT_RAW, false, false, KRUN_SYNC_FULL));
            assertEquals(0, krun.krun_add_disk3(c, "vda", disk, KRUN_DISK_FORMAT_RAW, true, false, KRUN_SYNC_NONE));
            assertEquals(SyncMode.NONE, config(c).disks().get(0).sync());
            int d = krun.krun_create_ctx();
            assertEquals(0, krun.krun_add_disk3(d, "a-block-id-longer-than-20-bytes", disk, KRUN_DISK_FORMAT_RAW, true, false, KRUN_SYNC_FULL));
            assertEquals(-EINVAL, krun.startEnter(d, r -> { throw new AssertionError("ran"); }), "the builder refuses it at start");
            // direct_io: honoured for raw images; accepted for qcow2/vmdk as libkrun does, which jkrun reads cached
            assertEquals(0, krun.krun_add_disk3(c, "direct", disk, KRUN_DISK_FORMAT_RAW, false, true, KRUN_SYNC_FULL));
            assertEquals(0, krun.krun_add_disk3(c, "qdirect", disk, KRUN_DISK_FORMAT_QCOW2, false, true, KRUN_SYNC_FULL));
            List<DiskConfig> disks = config(c).disks();
            assertEquals(List.of(false, true, false), disks.stream().map(DiskConfig::directIo).toList());
            assertEquals(0, krun.krun_add_disk(c, "plain", disk, false));
            assertEquals(0, krun.krun_add_disk2(c, "plain2", disk, KRUN_DISK_FORMAT_RAW, false));
            assertTrue(config(c).disks().stream().skip(3).noneMatch(DiskConfig::directIo), "krun_add_disk/2 have no direct_io");
            if (KvmAvailability.unavailableReason() == null && DiskImages.directIoSupported(diskFile)) {
                // a VM with a direct-I/O disk builds and runs; one whose file system refuses O_DIRECT does not
                int e = krun.krun_create_ctx();
                assertEquals(0, krun.krun_set_vm_config(e, 1, 64));
                assertEquals(0, krun.krun_set_kernel(e, TestGuests.path("triple_fault").toString(), KRUN_KERNEL_FORMAT_ELF, null, null));
                assertEquals(0, krun.krun_add_disk3(e, "vda", disk, KRUN_DISK_FORMAT_RAW, false, true, KRUN_SYNC_FULL));
                AtomicReference<StopReason> exited = new AtomicReference<>();
                assertEquals(0, krun.startEnter(e, exited::set));
                assertEquals(StopReason.Kind.CRASH, exited.get().kind(), String.valueOf(exited.get()));
                Path refusing = Path.of("/proc/version"); // procfs: no O_DIRECT, like tmpfs before Linux 6.6
                if (Files.isRegularFile(refusing) && !DiskImages.directIoSupported(refusing)) {
                    int g = krun.krun_create_ctx();
                    assertEquals(0, krun.krun_set_vm_config(g, 1, 64));
                    assertEquals(0, krun.krun_set_kernel(g, TestGuests.path("triple_fault").toString(), KRUN_KERNEL_FORMAT_ELF, null, null));
                    assertEquals(0, krun.krun_add_disk3(g, "vda", refusing.toString(), KRUN_DISK_FORMAT_RAW, true, true, KRUN_SYNC_FULL));
                    assertEquals(-EINVAL, krun.startEnter(g, r -> { throw new AssertionError("ran"); }), "refused when opened, as libkrun");
                }
            }
        });
        spec(m, "krun_set_mapped_volumes").valid(-EINVAL, c -> new Object[] {c, new String[] {"/a:/b"}}).unknownCtx(-EINVAL)
                .invalid(c -> assertEquals(-EINVAL, krun.krun_set_mapped_volumes(c, null), "libkrun: no longer supported"));
        spec(m, "krun_add_virtiofs").valid(0, c -> new Object[] {c, "data", root}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_add_virtiofs(c, null, root));
            assertEquals(0, krun.krun_add_virtiofs(c, "data", root));
            assertEquals(-EEXIST, krun.krun_add_virtiofs(c, "data", root), "a tag used twice");
            assertEquals(0, krun.krun_add_virtiofs(c, KRUN_FS_ROOT_TAG, root), "the root through its tag");
            assertEquals(-EEXIST, krun.krun_set_root(c, root));
            VmConfig v = config(c);
            assertEquals(List.of("data", KRUN_FS_ROOT_TAG), v.shares().stream().map(FsShare::tag).toList());
            assertTrue(v.root().isPresent());
        });
        spec(m, "krun_add_virtiofs2").valid(0, c -> new Object[] {c, "data", root, 1L << 29}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_add_virtiofs2(c, null, root, 0));
            assertEquals(-EINVAL, krun.krun_add_virtiofs2(c, "data", root, -1L), "a window beyond 2^63 bytes");
            assertEquals(0, krun.krun_add_virtiofs2(c, "data", root, 1L << 20));
            assertEquals(1L << 20, config(c).shares().get(0).shmSizeBytes());
        });
        spec(m, "krun_add_virtiofs3").valid(0, c -> new Object[] {c, "data", root, 0L, true}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_add_virtiofs3(c, null, root, 0, false));
            assertEquals(-ENOENT, krun.krun_add_virtiofs3(UNKNOWN, "nullfs", null, 0, false));
            assertEquals(0, krun.krun_add_virtiofs3(c, "ro", root, 0, true));
            assertTrue(config(c).shares().get(0).readOnly());
            assertEquals(0, krun.krun_add_virtiofs3(c, "nullfs", null, 0, false), "a NULL path is libkrun's NullFs");
            FsShare nullShare = config(c).shares().stream().filter(s -> s.tag().equals("nullfs")).findFirst().orElseThrow();
            assertTrue(!nullShare.readOnly() && nullShare.hostPath().isEmpty(), "read_only as given: NullFs refuses changes itself");
            assertTrue(nullShare.backend().orElseThrow().get() instanceof dev.jkrun.devices.fs.nullfs.NullFs);
            int r = krun.krun_create_ctx();
            assertEquals(0, krun.krun_add_virtiofs3(r, KRUN_FS_ROOT_TAG, null, 0, false), "a NULL root: virtual entries only");
            assertEquals(-EEXIST, krun.krun_set_root(r, root));
            assertTrue(config(r).root().orElseThrow().backend().isPresent());
            krun.krun_free_ctx(r);
        });
        spec(m, "krun_set_root_disk_remount").setup(c -> assertEquals(0, krun.krun_add_disk(c, "root", disk, false)))
                .valid(0, c -> new Object[] {c, "/dev/vda", "ext4", "noatime"}).invalid(c -> {
                    assertEquals(-EINVAL, krun.krun_set_root_disk_remount(c, "/dev/vda", null, null), "no disk added");
                    assertEquals(0, krun.krun_add_disk(c, "root", disk, false));
                    assertEquals(-EINVAL, krun.krun_set_root_disk_remount(c, null, null, null));
                    assertEquals(0, krun.krun_set_root_disk_remount(c, "/dev/vda", "auto", null));
                    assertEquals(-EEXIST, krun.krun_set_root(c, root), "the remount is the root");
                    assertEquals(-EINVAL, krun.krun_set_root_disk_remount(c, "/dev/vda", null, null), "root already set");
                    assertEquals(0, krun.krun_set_exec(c, "/bin/sh", null, new String[0]));
                    VmConfig v = config(c);
                    assertEquals("/dev/vda", v.exec().orElseThrow().rootDisk().device());
                    assertEquals("", v.exec().orElseThrow().rootDisk().fstype(), "auto: probe");
                    Path served = v.root().orElseThrow().path();
                    assertTrue(Files.isDirectory(served.resolve("newroot")) && Files.isDirectory(served.resolve("dev")));
                    assertTrue(v.root().orElseThrow().readOnly());
                    int d = krun.krun_create_ctx();
                    assertEquals(0, krun.krun_set_root(d, root));
                    assertEquals(0, krun.krun_add_disk(d, "root", disk, false));
                    assertEquals(-EINVAL, krun.krun_set_root_disk_remount(d, "/dev/vda", null, null), "root already set");
                });

        // --- network, vsock, GPU, input, sound, vhost-user, TEE, firmware
        spec(m, "krun_add_net_unixstream").valid(0, c -> new Object[] {c, "/tmp/passt.sock", -1, mac, 0, 0}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_add_net_unixstream(c, "/tmp/p.sock", 5, mac, 0, 0), "path and fd");
            assertEquals(-EINVAL, krun.krun_add_net_unixstream(c, null, -1, mac, 0, 0), "neither");
            assertEquals(-EINVAL, krun.krun_add_net_unixstream(c, "/tmp/p.sock", -1, new byte[5], 0, 0), "short MAC");
            assertEquals(-EINVAL, krun.krun_add_net_unixstream(c, "/tmp/p.sock", -1, mac, 1 << 15, 0), "MRG_RXBUF");
            assertEquals(-EINVAL, krun.krun_add_net_unixstream(c, "/tmp/p.sock", -1, mac, 0, KrunConstants.NET_FLAG_VFKIT), "vfkit on a stream");
            assertEquals(0, krun.krun_add_net_unixstream(c, "/tmp/p.sock", -1, mac, 0, KrunConstants.NET_FLAG_DHCP_CLIENT), "DHCP in init");
            int d = krun.krun_create_ctx();
            assertEquals(0, krun.krun_set_root(d, root));
            assertEquals(0, krun.krun_set_exec(d, "/bin/true", null, null));
            assertEquals(0, krun.krun_add_net_unixstream(d, "/tmp/a.sock", -1, mac, KrunConstants.COMPAT_NET_FEATURES, 0));
            assertEquals(0, krun.krun_add_net_unixgram(d, null, 7, mac, 0, KrunConstants.NET_FLAG_DHCP_CLIENT));
            List<NetDeviceConfig> nics = config(d).devices().stream().filter(x -> x instanceof NetDeviceConfig)
                    .map(x -> (NetDeviceConfig) x).toList();
            assertEquals(List.of("eth0", "eth1"), nics.stream().map(NetDeviceConfig::name).toList());
            assertEquals(new NetDeviceConfig.UnixStreamPath(Path.of("/tmp/a.sock")), nics.get(0).backend());
            assertEquals(KrunConstants.COMPAT_NET_FEATURES, nics.get(0).features());
            assertEquals(new NetDeviceConfig.UnixGramFd(7), nics.get(1).backend());
            assertEquals(List.of(false, true), nics.stream().map(NetDeviceConfig::dhcp).toList());
            assertTrue(config(d).devices().stream().noneMatch(x -> x instanceof dev.jkrun.vmm.VsockDeviceConfig),
                    "a NIC turns the implicit vsock's TSI off (and with nothing else on it, the device)");
            assertEquals(-EINVAL, krun.krun_set_passt_fd(d, 5), "legacy NIC after krun_add_net_*");
        });
        spec(m, "krun_add_net_unixgram").valid(0, c -> new Object[] {c, "/tmp/gvproxy.sock", -1, mac, 0, 1}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_add_net_unixgram(c, "/tmp/g.sock", 3, mac, 0, 0), "path and fd");
            assertEquals(-EINVAL, krun.krun_add_net_unixgram(c, "/tmp/g.sock", -1, mac, 0, 4), "unknown flag");
            assertEquals(-EINVAL, krun.krun_add_net_unixgram(c, "/tmp/g.sock", -1, mac, 1 << 2, 0), "not an offload");
            assertEquals(0, krun.krun_add_net_unixgram(c, "/tmp/g.sock", -1, mac, 0, KrunConstants.NET_FLAG_DHCP_CLIENT));
            int d = krun.krun_create_ctx();
            assertEquals(0, krun.krun_set_root(d, root));
            assertEquals(0, krun.krun_set_exec(d, "/bin/true", null, null));
            assertEquals(0, krun.krun_add_net_unixgram(d, "/tmp/g.sock", -1, mac, 0, KrunConstants.NET_FLAG_VFKIT));
            NetDeviceConfig n = (NetDeviceConfig) config(d).devices().stream().filter(x -> x instanceof NetDeviceConfig).findFirst().orElseThrow();
            assertEquals(new NetDeviceConfig.UnixGramPath(Path.of("/tmp/g.sock"), true), n.backend());
            assertArrayEquals(mac, n.mac());
        });
        spec(m, "krun_add_net_tap").valid(0, c -> new Object[] {c, "tap0", mac, 0, 0}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_add_net_tap(c, null, mac, 0, 0), "no name");
            assertEquals(-EINVAL, krun.krun_add_net_tap(c, "tap0", mac, KrunConstants.NET_FEATURE_GUEST_TSO4, 0),
                    "TSO without GUEST_CSUM");
            assertEquals(0, krun.krun_add_net_tap(c, "tap0", mac, KrunConstants.NET_FEATURE_GUEST_TSO4
                    | KrunConstants.NET_FEATURE_GUEST_CSUM, 0));
            assertEquals(-EINVAL, krun.krun_add_net_tap(c, "tap0", mac, 0, KrunConstants.NET_FLAG_VFKIT), "vfkit on a tap");
        });
        spec(m, "krun_set_passt_fd").valid(0, c -> new Object[] {c, 3}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_set_passt_fd(c, -1));
            int d = krun.krun_create_ctx();
            assertEquals(0, krun.krun_set_root(d, root));
            assertEquals(0, krun.krun_set_exec(d, "/bin/true", null, null));
            assertEquals(0, krun.krun_set_passt_fd(d, 9));
            assertEquals(0, krun.krun_set_net_mac(d, new byte[] {2, 0, 0, 0, 0, 1}));
            NetDeviceConfig n = (NetDeviceConfig) config(d).devices().stream().filter(x -> x instanceof NetDeviceConfig).findFirst().orElseThrow();
            assertEquals(new NetDeviceConfig.UnixStreamFd(9), n.backend());
            assertArrayEquals(new byte[] {2, 0, 0, 0, 0, 1}, n.mac());
            assertEquals(KrunConstants.COMPAT_NET_FEATURES, n.features(), "the legacy offloads");
        });
        spec(m, "krun_set_gvproxy_path").valid(0, c -> new Object[] {c, "/tmp/gvproxy.sock"}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_set_gvproxy_path(c, null));
            int d = krun.krun_create_ctx();
            assertEquals(0, krun.krun_set_root(d, root));
            assertEquals(0, krun.krun_set_exec(d, "/bin/true", null, null));
            assertEquals(0, krun.krun_set_gvproxy_path(d, "/tmp/gv.sock"));
            NetDeviceConfig n = (NetDeviceConfig) config(d).devices().stream().filter(x -> x instanceof NetDeviceConfig).findFirst().orElseThrow();
            assertEquals(new NetDeviceConfig.UnixGramPath(Path.of("/tmp/gv.sock"), true), n.backend(), "vfkit handshake, as libkrun");
            assertArrayEquals(new byte[] {0x5a, (byte) 0x94, (byte) 0xef, (byte) 0xe4, 0x0c, (byte) 0xee}, n.mac());
        });
        spec(m, "krun_set_net_mac").valid(0, c -> new Object[] {c, mac}).invalid(c ->
                assertEquals(-EINVAL, krun.krun_set_net_mac(c, new byte[3])));
        spec(m, "krun_set_port_map").valid(0, c -> new Object[] {c, new String[] {"8080:80", "8443:443"}}).invalid(c -> {
            assertEquals(0, krun.krun_set_port_map(c, new String[0]), "empty: nothing published");
            assertEquals(0, krun.krun_set_port_map(c, null), "NULL: expose every guest listener");
            assertTrue(tsi(config(c)).publishAll());
            assertEquals(8080, tsi(config(c)).hostPort(8080), "on its own port");
            assertEquals(0, krun.krun_set_port_map(c, new String[] {"9090:90"}));
            assertFalse(tsi(config(c)).publishAll(), "a map replaces NULL, as libkrun's last call wins");
            assertEquals(-1, tsi(config(c)).hostPort(8080));
            assertEquals(-EINVAL, krun.krun_set_port_map(c, new String[] {"8080:80", "8080:81"}), "host port twice");
            assertEquals(-EINVAL, krun.krun_set_port_map(c, new String[] {"8080:80", "8081:80"}), "guest port twice");
            assertEquals(-EINVAL, krun.krun_set_port_map(c, new String[] {"80"}), "not HOST:GUEST");
            assertEquals(-EINVAL, krun.krun_set_port_map(c, new String[] {"70000:80"}), "beyond 65535");
            assertEquals(0, krun.krun_disable_implicit_vsock(c));
            assertEquals(-ENODEV, krun.krun_set_port_map(c, new String[] {"8080:80"}), "vsock disabled");
        });
        spec(m, "krun_set_tsi_scope").valid(0, c -> new Object[] {c, "10.0.0.2", "10.0.0.0/24", 1}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_set_tsi_scope(c, null, null, 4), "scope > 3");
            assertEquals(-EINVAL, krun.krun_set_tsi_scope(c, "10.0.0", null, 1), "not an IPv4 address");
            assertEquals(-EINVAL, krun.krun_set_tsi_scope(c, null, "10.0.0.0", 1), "no prefix");
            assertEquals(-EINVAL, krun.krun_set_tsi_scope(c, null, "example.com/8", 1), "a name, never resolved");
            assertEquals(dev.jkrun.devices.virtio.vsock.tsi.OutboundPolicy.ALLOW_ALL, tsi(config(c)).outbound(), "libkrun: everything");
            assertEquals(0, krun.krun_set_tsi_scope(c, "192.168.5.2", "192.168.5.0/24", 1));
            var policy = tsi(config(c)).outbound();
            assertTrue(policy.allows(java.net.InetAddress.getByAddress(new byte[] {(byte) 192, (byte) 168, 5, 9}), 80), "the group");
            assertFalse(policy.allows(java.net.InetAddress.getByAddress(new byte[] {1, 1, 1, 1}), 80), "group only");
            assertEquals(0, krun.krun_set_tsi_scope(c, null, null, 0));
            assertFalse(tsi(config(c)).outbound().allows(java.net.InetAddress.getLoopbackAddress(), 80), "none");
        });
        spec(m, "krun_set_gpu_options").valid(-ENOTSUP, c -> new Object[] {c, KrunConstants.VIRGLRENDERER_VENUS});
        spec(m, "krun_set_gpu_options2").valid(-ENOTSUP, c -> new Object[] {c, KrunConstants.VIRGLRENDERER_VENUS, 1L << 33});
        spec(m, "krun_add_display").valid(-ENOTSUP, c -> new Object[] {c, 1280, 800});
        spec(m, "krun_display_set_edid").valid(-ENOTSUP, c -> new Object[] {c, 0, new byte[128], 128L});
        spec(m, "krun_display_set_dpi").valid(-ENOTSUP, c -> new Object[] {c, 0, 96});
        spec(m, "krun_display_set_physical_size").valid(-ENOTSUP, c -> new Object[] {c, 0, 300, 200});
        spec(m, "krun_display_set_refresh_rate").valid(-ENOTSUP, c -> new Object[] {c, 0, 60});
        spec(m, "krun_set_display_backend").valid(-ENOTSUP, c -> new Object[] {c, null, 0L});
        spec(m, "krun_add_input_device").valid(-ENOTSUP, c -> new Object[] {c, null, 0L, null, 0L});
        spec(m, "krun_add_input_device_fd").valid(-ENOTSUP, c -> new Object[] {c, 0});
        spec(m, "krun_add_vhost_user_device").valid(-ENOTSUP,
                c -> new Object[] {c, KrunConstants.KRUN_VIRTIO_DEVICE_RNG, "/tmp/rng.sock", null, 0, null});
        spec(m, "krun_set_snd_device").valid(0, c -> new Object[] {c, false})
                .invalid(c -> assertEquals(-ENOTSUP, krun.krun_set_snd_device(c, true)));
        spec(m, "krun_set_tee_config_file").valid(-ENOTSUP, c -> new Object[] {c, "/etc/tee.json"});
        spec(m, "krun_add_vsock_port").valid(0, c -> new Object[] {c, 1024, tmp.resolve("ipc.sock").toString()})
                .invalid(c -> {
                    assertEquals(0, krun.krun_add_vsock_port(c, 1024, tmp.resolve("a.sock").toString()));
                    assertEquals(-EEXIST, krun.krun_add_vsock_port(c, 1024, tmp.resolve("b.sock").toString()), "port twice");
                    assertEquals(-EINVAL, krun.krun_add_vsock_port(c, 1025, null), "NULL path");
                    assertEquals(-EINVAL, krun.krun_add_vsock_port(c, 1026, "/" + "p".repeat(120)), "longer than sun_path");
                    assertEquals(-EINVAL, krun.krun_add_vsock_port(c, -1, tmp.resolve("c.sock").toString()), "VMADDR_PORT_ANY");
                });
        spec(m, "krun_add_vsock_port2").valid(0, c -> new Object[] {c, 1024, tmp.resolve("l" + c + ".sock").toString(), true})
                .invalid(c -> {
                    assertEquals(-EEXIST, krun.krun_add_vsock_port2(c, 2695, tmp.toString(), true), "listen path exists");
                    assertEquals(0, krun.krun_disable_implicit_vsock(c));
                    assertEquals(-ENODEV, krun.krun_add_vsock_port2(c, 2696, tmp.resolve("r.sock").toString(), false),
                            "vsock disabled");
                    assertEquals(0, krun.krun_add_vsock(c, 0));
                    assertEquals(0, krun.krun_add_vsock_port2(c, 2696, tmp.resolve("r.sock").toString(), false),
                            "an explicit device takes bridges");
                });
        spec(m, "krun_add_vsock").valid(-EEXIST, c -> new Object[] {c, 0}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_add_vsock(c, 4), "features beyond bits 0-1");
            assertEquals(0, krun.krun_disable_implicit_vsock(c));
            assertEquals(0, krun.krun_add_vsock(c, KrunConstants.KRUN_TSI_HIJACK_INET | KrunConstants.KRUN_TSI_HIJACK_UNIX));
            assertEquals(-EEXIST, krun.krun_add_vsock(c, 0), "one explicit device");
        });
        spec(m, "krun_disable_implicit_vsock").valid(0, c -> new Object[] {c});
        spec(m, "krun_set_firmware").valid(0, c -> new Object[] {c, kernelFile.toString()}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_set_firmware(c, null));
            assertEquals(0, krun.krun_set_firmware(c, kernelFile.toString()));
            assertEquals(java.util.Optional.of(kernelFile), config(c).kernel().firmware());
            assertEquals(java.util.Optional.empty(), config(c).kernel().kernel(), "instead of a kernel");
            int d = krun.krun_create_ctx();
            assertEquals(0, krun.krun_set_firmware(d, tmp.resolve("no-firmware").toString()), "opened at krun_start_enter");
            assertEquals(-EINVAL, krun.startEnter(d, r -> { throw new AssertionError("ran"); }));
        });
        spec(m, "krun_split_irqchip").valid(0, c -> new Object[] {c, true}).invalid(c -> {
            assertFalse(config(c).machine().splitIrqchip(), "KVM's whole irqchip by default");
            assertEquals(0, krun.krun_split_irqchip(c, true));
            assertTrue(config(c).machine().splitIrqchip());
            assertEquals(0, krun.krun_split_irqchip(c, false));
            assertFalse(config(c).machine().splitIrqchip());
        });
        spec(m, "krun_disable_implicit_init").valid(0, c -> new Object[] {c}).invalid(c -> {
            assertEquals(java.util.Optional.empty(), config(c).kernel().initPath(), "before: jkrun's virtual /init.krun");
            assertEquals(0, krun.krun_disable_implicit_init(c));
            assertEquals(java.util.Optional.of("/init.krun"), config(c).kernel().initPath(), "the kernel still runs /init.krun, the root's");
        });
        spec(m, "krun_get_default_init").noCtx()
                .valid(0, c -> new Object[] {new PointerByReference(), new NumberByReference(TypeAlias.size_t)}).invalid(c -> {
                    assertEquals(-EINVAL, krun.krun_get_default_init(null, new NumberByReference(TypeAlias.size_t)));
                    assertEquals(-EINVAL, krun.krun_get_default_init(new PointerByReference(), null));
                    PointerByReference data = new PointerByReference();
                    NumberByReference len = new NumberByReference(TypeAlias.size_t);
                    assertEquals(0, krun.krun_get_default_init(data, len));
                    byte[] init = dev.jkrun.init.GuestInit.binary();
                    assertEquals(init.length, len.longValue());
                    byte[] got = new byte[init.length];
                    data.getValue().get(0, got, 0, got.length);
                    assertArrayEquals(init, got, "jkrun's init, as /init.krun is served");
                    PointerByReference again = new PointerByReference();
                    assertEquals(0, krun.krun_get_default_init(again, len));
                    assertEquals(data.getValue().address(), again.getValue().address(), "static data: the same bytes every call");
                });
        spec(m, "krun_fs_add_overlay_file").setup(c -> assertEquals(0, krun.krun_set_root(c, root)))
                .valid(0, c -> new Object[] {c, KRUN_FS_ROOT_TAG, "hostname", null, 0L, 0100644, false})
                .invalid(c -> {
                    assertEquals(-EINVAL, krun.krun_fs_add_overlay_file(c, null, "x", null, 0, 0644, false));
                    assertEquals(-EINVAL, krun.krun_fs_add_overlay_file(c, KRUN_FS_ROOT_TAG, null, null, 0, 0644, false));
                    assertEquals(-EINVAL, krun.krun_fs_add_overlay_file(c, KRUN_FS_ROOT_TAG, "x", null, 5, 0644, false), "NULL data of 5 bytes");
                    assertEquals(-ENOENT, krun.krun_fs_add_overlay_file(c, "nosuchtag", "x", null, 0, 0644, false));
                    assertEquals(0, krun.krun_set_root(c, root));
                    jnr.ffi.Pointer data = jnr.ffi.Memory.allocateDirect(jnr.ffi.Runtime.getSystemRuntime(), 3);
                    data.put(0, new byte[] {'a', 'b', 'c'}, 0, 3);
                    assertEquals(-ENOENT, krun.krun_fs_add_overlay_file(c, KRUN_FS_ROOT_TAG, "etc/hostname", data, 3, 0644, false),
                            "a parent that is not a virtual directory");
                    assertEquals(0, krun.krun_fs_add_overlay_dir(c, KRUN_FS_ROOT_TAG, "etc", 040755));
                    assertEquals(0, krun.krun_fs_add_overlay_file(c, KRUN_FS_ROOT_TAG, "etc/hostname", data, 3, 0100644, true));
                    data.put(0, new byte[] {'x', 'y', 'z'}, 0, 3); // jkrun copies: later changes do not count
                    assertEquals(-EEXIST, krun.krun_fs_add_overlay_file(c, KRUN_FS_ROOT_TAG, "/etc/hostname", data, 3, 0644, false));
                    assertEquals(-dev.jkrun.devices.fs.Errnos.ENOTDIR, krun.krun_fs_add_overlay_file(c, KRUN_FS_ROOT_TAG, "etc/hostname/x", data, 3, 0644, false));
                    assertEquals(-EINVAL, krun.krun_fs_add_overlay_file(c, KRUN_FS_ROOT_TAG, "etc//x", data, 3, 0644, false));
                    assertEquals(-EINVAL, krun.krun_fs_add_overlay_file(c, KRUN_FS_ROOT_TAG, "../x", data, 3, 0644, false));
                    List<dev.jkrun.devices.fs.augment.VirtualEntry> entries = config(c).root().orElseThrow().virtualEntries();
                    assertEquals(2, entries.size());
                    assertTrue(entries.get(0).isDir());
                    assertEquals("etc/hostname", entries.get(1).path());
                    assertArrayEquals(new byte[] {'a', 'b', 'c'}, entries.get(1).content());
                    assertEquals(0644, entries.get(1).mode());
                    assertTrue(entries.get(1).oneShot());
                    assertEquals(0, krun.krun_add_virtiofs(c, "data", root));
                    assertEquals(0, krun.krun_fs_add_overlay_dir(c, "data", "mnt", 0755));
                    assertEquals(1, config(c).shares().stream().filter(s -> s.tag().equals("data")).findFirst().orElseThrow()
                            .virtualEntries().size(), "each tag has its own entries");
                });
        spec(m, "krun_fs_add_overlay_dir").setup(c -> assertEquals(0, krun.krun_set_root(c, root)))
                .valid(0, c -> new Object[] {c, KRUN_FS_ROOT_TAG, "mnt", 040755})
                .invalid(c -> {
                    assertEquals(-EINVAL, krun.krun_fs_add_overlay_dir(c, KRUN_FS_ROOT_TAG, null, 0755));
                    assertEquals(-ENOENT, krun.krun_fs_add_overlay_dir(c, KRUN_FS_ROOT_TAG, "mnt", 0755), "no root yet");
                    assertEquals(0, krun.krun_add_virtiofs3(c, KRUN_FS_ROOT_TAG, null, 0, false));
                    assertEquals(0, krun.krun_fs_add_overlay_dir(c, KRUN_FS_ROOT_TAG, "usr", 0755));
                    assertEquals(0, krun.krun_fs_add_overlay_dir(c, KRUN_FS_ROOT_TAG, "usr/lib", 0755));
                    assertEquals(-ENOENT, krun.krun_fs_add_overlay_dir(c, KRUN_FS_ROOT_TAG, "var/lib", 0755));
                });

        // --- workload
        spec(m, "krun_set_rlimits").valid(0, c -> new Object[] {c, new String[] {"6=1024:1024", "NOFILE=256:unlimited"}}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_set_rlimits(c, null));
            assertEquals(-EINVAL, krun.krun_set_rlimits(c, new String[] {"abc"}));
            assertEquals(-EINVAL, krun.krun_set_rlimits(c, new String[] {"7=10:5"}), "soft above hard");
            assertEquals(-EINVAL, krun.krun_set_rlimits(c, new String[] {"99=1:1"}), "no such resource");
            assertEquals(-EINVAL, krun.krun_set_rlimits(UNKNOWN, new String[] {"abc"}), "the array is parsed before the context");
            assertEquals(0, krun.krun_set_rlimits(c, new String[] {"7=1024:4096"}));
            assertEquals(0, krun.krun_set_root(c, root));
            assertEquals(0, krun.krun_set_exec(c, "/bin/true", null, new String[0]));
            assertEquals(List.of(new RLimit(RLimit.Resource.NOFILE, 1024, 4096)), config(c).exec().orElseThrow().rlimits());
        });
        spec(m, "krun_set_smbios_oem_strings").valid(0, c -> new Object[] {c, new String[] {"io.systemd.credential:a=b"}}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_set_smbios_oem_strings(c, null));
            assertEquals(0, krun.krun_set_smbios_oem_strings(c, new String[] {"x", "y"}));
            assertEquals(List.of("x", "y"), config(c).smbiosOemStrings());
            assertEquals(0, krun.krun_set_smbios_oem_strings(c, new String[0]), "an empty array clears them");
            assertEquals(List.of(), config(c).smbiosOemStrings());
        });
        spec(m, "krun_set_workdir").valid(0, c -> new Object[] {c, "/tmp"}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_set_workdir(c, null));
            assertEquals(0, krun.krun_set_workdir(c, "srv/app"));
            assertEquals(0, krun.krun_set_root(c, root));
            assertEquals(0, krun.krun_set_exec(c, "/bin/true", null, new String[0]));
            assertEquals("/srv/app", config(c).exec().orElseThrow().workdir(), "relative to the root");
        });
        spec(m, "krun_set_exec").valid(0, c -> new Object[] {c, "/bin/sh", new String[] {"-c", "echo hi"}, new String[] {"A=1"}})
                .invalid(c -> {
                    assertEquals(-EINVAL, krun.krun_set_exec(c, null, null, null));
                    assertEquals(-EINVAL, krun.krun_set_exec(c, "/bin/sh", null, new String[] {"NOEQUALS"}), "not NAME=VALUE");
                    assertEquals(-EINVAL, krun.krun_set_exec(c, "/bin/sh", null, new String[] {"=value"}), "no name");
                    assertEquals(0, krun.krun_set_root(c, root));
                    assertEquals(0, krun.krun_set_exec(c, "ls", new String[] {"-l", null, "dropped"}, null));
                    var e = config(c).exec().orElseThrow();
                    assertEquals("ls", e.exec());
                    assertEquals(List.of("-l"), e.args(), "the array ends at the first NULL");
                    String path = System.getenv("PATH");
                    if (path != null) {
                        assertTrue(e.env().contains("PATH=" + path), "NULL envp: this process's environment");
                    }
                });
        spec(m, "krun_set_env").valid(0, c -> new Object[] {c, new String[] {"LANG=C.UTF-8"}}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_set_env(c, new String[] {"BAD"}));
            assertEquals(0, krun.krun_set_root(c, root));
            assertEquals(0, krun.krun_set_exec(c, "/bin/true", null, new String[] {"A=1"}));
            assertEquals(0, krun.krun_set_env(c, new String[] {"B=2", "C=x=y"}));
            assertEquals(List.of("B=2", "C=x=y"), config(c).exec().orElseThrow().env(), "krun_set_env replaces");
            assertEquals(0, krun.krun_set_env(c, null), "NULL: this process's environment");
        });

        // --- kernel and machine
        spec(m, "krun_set_kernel").valid(0, c -> new Object[] {c, kernelFile.toString(), KRUN_KERNEL_FORMAT_ELF, null, "console=hvc0"})
                .invalid(c -> {
                    String k = kernelFile.toString();
                    assertEquals(-EINVAL, krun.krun_set_kernel(c, null, KRUN_KERNEL_FORMAT_ELF, null, null));
                    assertEquals(-EINVAL, krun.krun_set_kernel(c, k, 6, null, null), "unknown format");
                    assertEquals(-EINVAL, krun.krun_set_kernel(c, k, KRUN_KERNEL_FORMAT_ELF, tmp.resolve("no-initrd").toString(), null),
                            "a missing initramfs");
                    assertEquals(-EINVAL, krun.krun_set_kernel(c, tmp.resolve("no-kernel").toString(), KRUN_KERNEL_FORMAT_RAW, null, null),
                            "a raw kernel libkrun cannot map");
                    assertEquals(0, krun.krun_set_kernel(c, k, KRUN_KERNEL_FORMAT_RAW, null, null), "raw, at 0x80000000");
                    assertEquals(dev.jkrun.loader.KernelFormat.RAW, config(c).kernel().kernelFormat());
                    assertEquals(-EINVAL, krun.krun_set_kernel(c, k, KRUN_KERNEL_FORMAT_PE_GZ, null, null),
                            "arm64 only: unknown to libkrun on x86_64");
                    assertEquals(0, krun.krun_set_kernel(c, k, KRUN_KERNEL_FORMAT_IMAGE_BZ2, null, null), "bzip2");
                    assertEquals(dev.jkrun.loader.KernelFormat.IMAGE_BZ2, config(c).kernel().kernelFormat());
                    assertEquals(0, krun.krun_set_kernel(c, k, KRUN_KERNEL_FORMAT_IMAGE_ZSTD, k, null), "zstd, an initramfs");
                    VmConfig z = config(c);
                    assertEquals(dev.jkrun.loader.KernelFormat.IMAGE_ZSTD, z.kernel().kernelFormat());
                    assertEquals(kernelFile, z.kernel().initramfs().orElseThrow());
                    assertEquals(0, krun.krun_set_kernel(c, k, KRUN_KERNEL_FORMAT_IMAGE_GZ, null, null));
                    assertEquals(dev.jkrun.loader.KernelFormat.IMAGE_GZ, config(c).kernel().kernelFormat());
                    assertEquals(Optional.empty(), config(c).kernel().initramfs(), "a later call replaces the initramfs");
                    assertEquals(0, krun.krun_set_kernel(c, k, KRUN_KERNEL_FORMAT_ELF, null, "quiet"));
                    VmConfig v = config(c);
                    assertEquals(kernelFile, v.kernel().kernel().orElseThrow());
                    assertEquals(dev.jkrun.loader.KernelFormat.ELF, v.kernel().kernelFormat());
                    assertEquals("quiet", v.kernel().cmdline().orElseThrow(), "the command line replaces the default");
                    int d = krun.krun_create_ctx();
                    assertEquals(0, krun.krun_set_kernel(d, tmp.resolve("no-kernel").toString(), KRUN_KERNEL_FORMAT_ELF, null, null),
                            "libkrun opens an ELF kernel at krun_start_enter");
                    assertEquals(-EINVAL, krun.startEnter(d, r -> { throw new AssertionError("ran"); }));
                });
        spec(m, "krun_set_kernel_console").valid(0, c -> new Object[] {c, "ttyS0"}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_set_kernel_console(c, null));
            assertEquals(-EINVAL, krun.krun_set_kernel_console(c, "hvc0 init=/bin/sh"));
            assertEquals(0, krun.krun_set_kernel_console(c, "hvc1"));
            assertEquals(List.of("console=hvc1"), config(c).kernel().extraCmdline());
        });
        spec(m, "krun_set_nested_virt").valid(0, c -> new Object[] {c, true}).invalid(c -> {
            assertEquals(0, krun.krun_set_nested_virt(c, true));
            assertTrue(config(c).machine().nestedVirt());
        });
        spec(m, "krun_check_nested_virt").noCtx().custom(c -> {
            int rc = krun.krun_check_nested_virt();
            assertTrue(rc == 0 || rc == 1, "0 or 1, got " + rc);
        });
        spec(m, "krun_has_feature").noCtx().valid(1, c -> new Object[] {KrunConstants.KRUN_FEATURE_BLK}).invalid(c -> {
            assertEquals(1, krun.krun_has_feature(KrunConstants.KRUN_FEATURE_INIT_BLOB), "krun_get_default_init works");
            for (long f : new long[] {KrunConstants.KRUN_FEATURE_NET, KrunConstants.KRUN_FEATURE_GPU, KrunConstants.KRUN_FEATURE_INPUT,
                    KrunConstants.KRUN_FEATURE_TEE, KrunConstants.KRUN_FEATURE_AMD_SEV, KrunConstants.KRUN_FEATURE_INTEL_TDX,
                    KrunConstants.KRUN_FEATURE_AWS_NITRO, KrunConstants.KRUN_FEATURE_VIRGL_RESOURCE_MAP2}) {
                assertEquals(0, krun.krun_has_feature(f), "feature " + f);
            }
            for (long f : new long[] {3, 5, 12, -1}) {
                assertEquals(-EINVAL, krun.krun_has_feature(f), "unknown feature " + f);
            }
        });
        spec(m, "krun_get_max_vcpus").noCtx().custom(c -> {
            int rc = krun.krun_get_max_vcpus();
            if (KvmAvailability.unavailableReason() == null) {
                assertTrue(rc >= 1 && rc <= dev.jkrun.vmm.MachineConfig.MAX_VCPUS, "got " + rc);
            } else {
                assertEquals(-EINVAL, rc, "libkrun's answer without KVM");
            }
        });
        int uid = procSelf("unix:uid");
        int gid = procSelf("unix:gid");
        // Recorded here; krun_start_enter switches (LibKrunStartEnterTest, tier 3's ApiE2E).
        spec(m, "krun_setuid").valid(0, c -> new Object[] {c, uid})
                .invalid(c -> assertEquals(0, krun.krun_setuid(c, uid + 4242), "another uid"));
        spec(m, "krun_setgid").valid(0, c -> new Object[] {c, gid})
                .invalid(c -> assertEquals(0, krun.krun_setgid(c, gid + 4242), "another gid"));

        // --- consoles
        spec(m, "krun_get_shutdown_eventfd").valid(ANY_ID, c -> new Object[] {c}).invalid(c -> {
            int fd = krun.krun_get_shutdown_eventfd(c);
            assertTrue(fd >= 0);
            assertEquals(fd, krun.krun_get_shutdown_eventfd(c), "one eventfd per context");
            assertEquals(0, krun.krun_free_ctx(c));
        });
        spec(m, "krun_set_console_output").valid(0, c -> new Object[] {c, tmp.resolve("console.log").toString()}).invalid(c -> {
            assertEquals(-EINVAL, krun.krun_set_console_output(c, null));
            assertEquals(0, krun.krun_set_console_output(c, tmp.resolve("c.log").toString()));
            assertEquals(-EINVAL, krun.krun_set_console_output(c, tmp.resolve("c.log").toString()), "set twice");
            assertEquals(new ConsoleConfig.ToFile(tmp.resolve("c.log")), config(c).console());
        });
        spec(m, "krun_disable_implicit_console").valid(0, c -> new Object[] {c}).invalid(c -> {
            assertEquals(0, krun.krun_set_console_output(c, tmp.resolve("c.log").toString()));
            assertEquals(0, krun.krun_disable_implicit_console(c));
            assertEquals(new ConsoleConfig.None(), config(c).console(), "the console output then does nothing, as libkrun's");
        });
        spec(m, "krun_add_virtio_console_default").valid(0, c -> new Object[] {c, 0, 1, 2}).invalid(c -> {
            assertEquals(0, krun.krun_add_virtio_console_default(c, 5, 6, 7));
            assertEquals(0, krun.krun_add_virtio_console_default(c, -1, 8, -1), "output only");
            VmConfig v = config(c);
            assertEquals(List.of(new VirtioConsoleConfig(5, 6, 7), new VirtioConsoleConfig(-1, 8, -1)),
                    v.devices().stream().filter(d -> d instanceof VirtioConsoleConfig).toList());
            assertTrue(v.attachOrder().contains(new VirtioConsoleConfig(5, 6, 7)), "a virtio-mmio device of its own");
        });
        spec(m, "krun_add_serial_console_default").valid(0, c -> new Object[] {c, 0, 1}).invalid(c -> {
            assertEquals(0, krun.krun_add_serial_console_default(c, 5, 6));
            assertEquals(0, krun.krun_add_serial_console_default(c, -1, 7), "no input");
            assertEquals(0, krun.krun_add_serial_console_default(c, 8, -1), "no output");
            assertEquals(0, krun.krun_add_serial_console_default(c, -1, -1), "a UART with nothing behind it");
            assertEquals(-EINVAL, krun.krun_add_serial_console_default(c, 0, 1), "COM1 to COM4 only");
            assertEquals(List.of(new SerialConsoleConfig(5, 6), new SerialConsoleConfig(-1, 7), new SerialConsoleConfig(8, -1),
                    new SerialConsoleConfig(-1, -1)), config(c).serialConsoles(), "COM1 first");
        });
        spec(m, "krun_add_virtio_console_multiport").valid(ANY_ID, c -> new Object[] {c}).invalid(c -> {
            assertEquals(0, krun.krun_add_virtio_console_multiport(c));
            assertEquals(1, krun.krun_add_virtio_console_multiport(c), "console ids count up");
        });
        spec(m, "krun_add_console_port_tty").custom(c -> {
            assertEquals(0, krun.krun_add_virtio_console_multiport(c));
            try (FileDescriptor tty = FileDescriptor.open("/dev/ptmx", FileDescriptor.O_RDWR);
                 FileDescriptor file = FileDescriptor.open(diskFile.toString(), FileDescriptor.O_RDONLY)) {
                assertEquals(0, krun.krun_add_console_port_tty(c, 0, "term", tty.raw()));
                assertEquals(-ENOENT, krun.krun_add_console_port_tty(UNKNOWN, 0, "term", tty.raw()));
                assertEquals(-EINVAL, krun.krun_add_console_port_tty(c, 1, "term", tty.raw()), "unknown console id");
                assertEquals(-EINVAL, krun.krun_add_console_port_tty(c, 0, "term", -1), "negative fd");
                assertEquals(-ENOTTY, krun.krun_add_console_port_tty(c, 0, "term", file.raw()), "not a terminal");
                assertEquals(0, krun.krun_add_console_port_tty(c, 0, "", tty.raw()), "an unnamed port");
                assertEquals(0, krun.krun_add_console_port_tty(c, 0, null, tty.raw()), "an unnamed port");
                assertEquals(List.of(new VirtioConsolePortsConfig(List.of(new ConsolePortConfig.Fds("term", tty.raw(), tty.raw(), true),
                        new ConsolePortConfig.Fds("", tty.raw(), tty.raw(), true), new ConsolePortConfig.Fds("", tty.raw(), tty.raw(), true)))),
                        multiport(config(c)), "a device of its own, the ports in order");
            }
        });
        spec(m, "krun_add_console_port_inout").setup(c -> assertEquals(0, krun.krun_add_virtio_console_multiport(c)))
                .valid(0, c -> new Object[] {c, 0, "data", 0, 1}).invalid(c -> {
                    assertEquals(-EINVAL, krun.krun_add_console_port_inout(c, 0, "data", 0, 1), "no multiport console yet");
                    assertEquals(0, krun.krun_add_virtio_console_multiport(c));
                    assertEquals(0, krun.krun_add_console_port_inout(c, 0, "", 0, 1), "an unnamed port");
                    assertEquals(0, krun.krun_add_console_port_inout(c, 0, "data", 0, 1));
                    assertEquals(1, krun.krun_add_virtio_console_multiport(c), "a second device, no ports: none added");
                    VmConfig v = config(c);
                    assertEquals(List.of(new VirtioConsolePortsConfig(List.of(new ConsolePortConfig.Fds("", 0, 1, false),
                            new ConsolePortConfig.Fds("data", 0, 1, false)))), multiport(v));
                    assertEquals(List.of(), v.consolePorts(), "not on the implicit console");
                });

        // --- start
        spec(m, "krun_start_enter").custom(c -> {
            // A valid krun_start_enter exits this JVM: LibKrunStartEnterTest runs it in child processes. Here: the
            // paths where it returns, and (with KVM) the same run with a recording exit instead of System.exit.
            assertEquals(-ENOENT, krun.krun_start_enter(UNKNOWN));
            assertEquals(-ENOENT, krun.krun_start_enter(-1));
            assertEquals(0, krun.krun_set_vm_config(c, 1, 64));
            assertEquals(0, krun.krun_set_exec(c, "/bin/true", null, new String[0]));
            assertEquals(-EINVAL, krun.krun_start_enter(c), "a command without a root filesystem");
            assertEquals(-ENOENT, krun.krun_start_enter(c), "the context was consumed");
            assertEquals(-ENOENT, krun.krun_set_root(c, root));
            if (KvmAvailability.unavailableReason() == null) {
                int d = krun.krun_create_ctx();
                assertEquals(0, krun.krun_set_vm_config(d, 1, 64));
                assertEquals(0, krun.krun_set_kernel(d, TestGuests.path("triple_fault").toString(), KRUN_KERNEL_FORMAT_ELF, null, null));
                AtomicReference<StopReason> exited = new AtomicReference<>();
                assertEquals(0, krun.startEnter(d, exited::set));
                assertEquals(StopReason.Kind.CRASH, exited.get().kind(), String.valueOf(exited.get()));
                assertEquals(1, exited.get().processExitStatus());
                assertNull(krun.context(d), "consumed");
            }
        });
        return m;
    }


    private static int procSelf(String attribute) {
        try {
            return (Integer) Files.getAttribute(Path.of("/proc/self"), attribute);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private Spec spec(Map<String, Spec> m, String name) {
        Spec s = new Spec(name);
        m.put(name, s);
        return s;
    }

    /** The TSI configuration of the VM's vsock device. */
    private static dev.jkrun.devices.virtio.vsock.tsi.TsiConfig tsi(VmConfig config) {
        return config.devices().stream().filter(d -> d instanceof dev.jkrun.vmm.VsockDeviceConfig)
                .map(d -> ((dev.jkrun.vmm.VsockDeviceConfig) d).vsock().tsi()).findFirst().orElseThrow();
    }

    private VmConfig config(int ctx) {
        KrunContext c = krun.context(ctx);
        assertNotNull(c, "context " + ctx);
        synchronized (c) {
            return JkrunLibKrun.toVmConfig(c);
        }
    }
}
