package dev.jkrun.krun;

import jnr.ffi.Pointer;
import jnr.ffi.annotations.In;
import jnr.ffi.byref.NumberByReference;
import jnr.ffi.byref.PointerByReference;
import jnr.ffi.types.gid_t;
import jnr.ffi.types.size_t;
import jnr.ffi.types.u_int16_t;
import jnr.ffi.types.u_int32_t;
import jnr.ffi.types.u_int64_t;
import jnr.ffi.types.u_int8_t;
import jnr.ffi.types.uid_t;

/**
 * libkrun's C API (include/libkrun.h), one method per function: same names, same argument order, {@code int}
 * results that are 0 (or an id, fd, count) on success and a negative errno on failure ({@code -EINVAL},
 * {@code -ENOENT} for an unknown context, {@code -EEXIST}, {@code -ENOTSUP}; values in {@link KrunConstants}).
 *
 * <p>The Java types are the ones JNR-FFI maps to the C types, so this very interface also binds the native
 * library: {@code LibraryLoader.create(LibKrun.class).load("krun")}. {@link Jkrun#libkrun()} is jkrun's pure-Java
 * implementation; a program swaps one for the other and nothing else changes. Mapping: {@code const char *} →
 * {@code String} (may be null), NULL-terminated {@code const char *const[]} → {@code String[]} (JNR appends the
 * NULL; a null array is a NULL pointer), {@code bool} → {@code boolean}, {@code uint32_t}/{@code int} →
 * {@code int} (unsigned where annotated), {@code uint8_t}/{@code uint16_t} → {@code int} annotated with the C type
 * (the value is truncated to it, as C would), {@code uint64_t}/{@code size_t} → {@code long},
 * {@code uint8_t *} arrays the callee copies → {@code byte[]}, memory the callee keeps or C structures →
 * {@link Pointer}.
 *
 * <p>The javadoc of each method gives libkrun's meaning and, after "jkrun:", what jkrun does with it. Functions
 * for devices or host features jkrun does not have return {@code -ENOTSUP} (after the context check, so an
 * unknown context still gets {@code -ENOENT}); krun/README.md lists them.
 *
 * <p>Functions that exist only in forks (krun_set_overlayfs_root, krun_set_tsi_scope, krun_set_snd_device, from
 * the libkrun used by microsandbox) are included so programs written against those bindings also find them.
 */
public interface LibKrun {
    /**
     * Sets the library's log level: 0 off, 1 error, 2 warn, 3 info, 4 debug, 5 trace.
     * jkrun: applied to the SLF4J backend's {@code dev.jkrun} logger tree (Logback, java.util.logging, Log4j 2,
     * slf4j-simple) via reflection; a level above 5 is {@code -EINVAL} (libkrun treats it as trace).
     */
    int krun_set_log_level(@u_int32_t int level);

    /**
     * Initializes logging: target fd ({@code KRUN_LOG_TARGET_DEFAULT} = stderr), level, style (colors), options
     * ({@code KRUN_LOG_OPTION_NO_ENV}). jkrun: the level as {@link #krun_set_log_level}; style and options are
     * validated ({@code -EINVAL} when unknown) but the backend's configuration decides colors. A target descriptor
     * (jkrun writes to its own duplicate) receives the {@code dev.jkrun} tree's records with Logback, Log4j 2 or
     * java.util.logging, and everything slf4j-simple logs; with another backend (slf4j-nop) it is {@code -ENOTSUP};
     * {@code KRUN_LOG_TARGET_DEFAULT} gives the backend its own output back. A negative target other than -1,
     * stdin, a descriptor that is not open or is read-only is {@code -EINVAL}.
     */
    int krun_init_log(int target_fd, @u_int32_t int level, @u_int32_t int style, @u_int32_t int options);

    /** Creates a configuration context; returns its id (0, 1, 2... as libkrun) or a negative errno. jkrun: same. */
    int krun_create_ctx();

    /** Frees a context ({@code -ENOENT} if unknown). jkrun: same; also closes its shutdown eventfd, if any. */
    int krun_free_ctx(@u_int32_t int ctx_id);

    /**
     * Sets the number of vCPUs and the RAM in MiB. jkrun: 1 to {@code MachineConfig.MAX_VCPUS} vCPUs and 1 MiB
     * to {@code MachineConfig.MAX_MEMORY_MIB}; anything else is {@code -EINVAL}. Without this call jkrun's
     * defaults apply (1 vCPU, 512 MiB).
     */
    int krun_set_vm_config(@u_int32_t int ctx_id, @u_int8_t int num_vcpus, @u_int32_t int ram_mib);

    /**
     * Sets a host directory as the guest's root filesystem (virtio-fs tag {@code /dev/root}). jkrun: supported;
     * {@code -EEXIST} if a root is already set (krun_set_root, krun_set_overlayfs_root, krun_add_virtiofs* with
     * {@code KRUN_FS_ROOT_TAG}, krun_set_root_disk_remount). The directory is checked at krun_start_enter.
     */
    int krun_set_root(@u_int32_t int ctx_id, String root_path);

    /**
     * DEPRECATED in libkrun: a raw disk image with block id "root" (replaces an earlier call). jkrun: supported,
     * with libkrun's rule that krun_add_disk* disks, when there are any, are used instead of root/data disks.
     */
    int krun_set_root_disk(@u_int32_t int ctx_id, String disk_path);

    /** DEPRECATED in libkrun: a raw data disk with block id "data". jkrun: supported as krun_set_root_disk. */
    int krun_set_data_disk(@u_int32_t int ctx_id, String disk_path);

    /** Adds a raw disk image ({@code /dev/vda}, {@code /dev/vdb}... in call order). jkrun: supported. */
    int krun_add_disk(@u_int32_t int ctx_id, String block_id, String disk_path, boolean read_only);

    /**
     * Adds a disk image in {@code KRUN_DISK_FORMAT_RAW/QCOW2/VMDK} ({@code -EINVAL} for others). jkrun: supported;
     * qcow2 backing files are not followed (libkrun's security note), and VMDK extents must be regular files in the
     * descriptor's directory, named plainly (no path, no symlink); the API has no opt-in for either.
     */
    int krun_add_disk2(@u_int32_t int ctx_id, String block_id, String disk_path, @u_int32_t int disk_format, boolean read_only);

    /**
     * Adds a disk image with a format, direct I/O and a {@code KRUN_SYNC_NONE/RELAXED/FULL} sync mode
     * ({@code -EINVAL} for unknown formats or modes). jkrun: supported; {@code direct_io} is accepted and ignored
     * (jkrun always goes through the host page cache).
     */
    int krun_add_disk3(@u_int32_t int ctx_id, String block_id, String disk_path, @u_int32_t int disk_format,
                       boolean read_only, boolean direct_io, @u_int32_t int sync_mode);

    /** NO LONGER SUPPORTED by libkrun, which returns {@code -EINVAL} whatever the arguments. jkrun: the same. */
    int krun_set_mapped_volumes(@u_int32_t int ctx_id, String[] mapped_volumes);

    /** Adds a virtio-fs share of a host directory under a tag. jkrun: supported ({@code -EEXIST} for a tag used twice). */
    int krun_add_virtiofs(@u_int32_t int ctx_id, String c_tag, String c_path);

    /**
     * Adds a virtio-fs share with a DAX window of {@code shm_size} bytes. jkrun: supported (the size rounded up to
     * 2 MiB; a guest that mounts with {@code -o dax} maps files through it).
     */
    int krun_add_virtiofs2(@u_int32_t int ctx_id, String c_tag, String c_path, @u_int64_t long shm_size);

    /**
     * Adds a virtio-fs share with a DAX window size and a read-only flag; a NULL path is a virtual-only (NullFs)
     * share. jkrun: supported; a NULL path is an empty read-only directory ({@code NullFs}) that
     * krun_fs_add_overlay_file/dir fill, for the root tag too.
     */
    int krun_add_virtiofs3(@u_int32_t int ctx_id, String c_tag, String c_path, @u_int64_t long shm_size, boolean read_only);

    /**
     * Adds a virtio-net device on a unixstream proxy (passt, socket_vmnet) by path or connected fd (exactly one).
     * jkrun: supported, with NET_FLAG_DHCP_CLIENT (jkrun's init leases the address); the first NIC turns TSI off.
     */
    int krun_add_net_unixstream(@u_int32_t int ctx_id, String c_path, int fd, @In byte[] c_mac, @u_int32_t int features, @u_int32_t int flags);

    /**
     * Adds a virtio-net device on a unixgram proxy (gvproxy, vmnet-helper) by path or connected fd. jkrun: supported,
     * with NET_FLAG_VFKIT (the "VFKT" handshake) and NET_FLAG_DHCP_CLIENT.
     */
    int krun_add_net_unixgram(@u_int32_t int ctx_id, String c_path, int fd, @In byte[] c_mac, @u_int32_t int features, @u_int32_t int flags);

    /**
     * Adds a virtio-net device on a tap interface (IFF_VNET_HDR, offloads through TUNSETOFFLOAD). jkrun: supported;
     * GUEST_TSO4/6 or GUEST_UFO without GUEST_CSUM is {@code -EINVAL}, as in libkrun.
     */
    int krun_add_net_tap(@u_int32_t int ctx_id, String c_tap_name, @In byte[] c_mac, @u_int32_t int features, @u_int32_t int flags);

    /** DEPRECATED in libkrun: networking through passt on a connected fd (the legacy NIC). jkrun: supported. */
    int krun_set_passt_fd(@u_int32_t int ctx_id, int fd);

    /** DEPRECATED in libkrun: networking through gvproxy at a path, vfkit mode (the legacy NIC). jkrun: supported. */
    int krun_set_gvproxy_path(@u_int32_t int ctx_id, String c_path);

    /** The MAC address (6 bytes) of the legacy passt/gvproxy NIC. jkrun: supported. */
    int krun_set_net_mac(@u_int32_t int ctx_id, @In byte[] c_mac);

    /**
     * Host-to-guest port map for TSI ({@code "host_port:guest_port"}): a guest listener is published on the host only
     * on a mapped port. Duplicate host or guest ports are {@code -EINVAL}, a disabled vsock {@code -ENODEV}; NULL
     * (libkrun: expose every listening port) is {@code -ENOTSUP}.
     */
    int krun_set_port_map(@u_int32_t int ctx_id, String[] port_map);

    /**
     * (microsandbox's libkrun) Static IP, subnet and scope 0-3 of the TSI backend. jkrun: supported (the scope and
     * subnet govern where TSI connects); a scope above 3 or a malformed address or subnet is {@code -EINVAL}.
     */
    int krun_set_tsi_scope(@u_int32_t int ctx_id, String c_ip, String c_subnet, @u_int8_t int scope);

    /** Enables a virtio-gpu device with virglrenderer flags. jkrun: {@code -ENOTSUP} (no GPU). */
    int krun_set_gpu_options(@u_int32_t int ctx_id, @u_int32_t int virgl_flags);

    /** Enables a virtio-gpu device with a host window size. jkrun: {@code -ENOTSUP} (no GPU). */
    int krun_set_gpu_options2(@u_int32_t int ctx_id, @u_int32_t int virgl_flags, @u_int64_t long shm_size);

    /** Adds a display; returns its id. jkrun: {@code -ENOTSUP} (no GPU). */
    int krun_add_display(@u_int32_t int ctx_id, @u_int32_t int width, @u_int32_t int height);

    /** Sets a display's EDID blob (copied). jkrun: {@code -ENOTSUP} (no GPU). */
    int krun_display_set_edid(@u_int32_t int ctx_id, @u_int32_t int display_id, @In byte[] edid_blob, @size_t long blob_size);

    /** Sets a display's DPI. jkrun: {@code -ENOTSUP} (no GPU). */
    int krun_display_set_dpi(@u_int32_t int ctx_id, @u_int32_t int display_id, @u_int32_t int dpi);

    /** Sets a display's physical size in millimetres. jkrun: {@code -ENOTSUP} (no GPU). */
    int krun_display_set_physical_size(@u_int32_t int ctx_id, @u_int32_t int display_id, @u_int16_t int width_mm, @u_int16_t int height_mm);

    /** Sets a display's refresh rate in Hz. jkrun: {@code -ENOTSUP} (no GPU). */
    int krun_display_set_refresh_rate(@u_int32_t int ctx_id, @u_int32_t int display_id, @u_int32_t int refresh_rate);

    /** Sets the display backend (a struct krun_display_backend). jkrun: {@code -ENOTSUP} (no GPU). */
    int krun_set_display_backend(@u_int32_t int ctx_id, Pointer display_backend, @size_t long backend_size);

    /** Adds a virtio-input device from config and event-provider structs. jkrun: {@code -ENOTSUP} (no virtio-input). */
    int krun_add_input_device(@u_int32_t int ctx_id, Pointer config_backend, @size_t long config_backend_size,
                              Pointer events_backend, @size_t long events_backend_size);

    /** Adds a passthrough virtio-input device from a host /dev/input fd. jkrun: {@code -ENOTSUP} (no virtio-input). */
    int krun_add_input_device_fd(@u_int32_t int ctx_id, int input_fd);

    /**
     * Adds a vhost-user device (RNG, sound, CAN...) served by an external backend; {@code queue_sizes} may be
     * NULL. jkrun: {@code -ENOTSUP} (no vhost-user, as libkrun built without it).
     */
    int krun_add_vhost_user_device(@u_int32_t int ctx_id, @u_int32_t int device_type, String socket_path, String name,
                                   @u_int16_t int num_queues, @In short[] queue_sizes);

    /** (microsandbox's libkrun) Enables or disables a virtio-snd device. jkrun: disabling is 0, enabling {@code -ENOTSUP}. */
    int krun_set_snd_device(@u_int32_t int ctx_id, boolean enable);

    /**
     * Resource limits for the workload, {@code "RESOURCE=CUR:MAX"} (a number or a name such as NOFILE; NULL array
     * is {@code -EINVAL}). jkrun: supported; malformed entries are {@code -EINVAL} at once (libkrun leaves them to
     * its init).
     */
    int krun_set_rlimits(@u_int32_t int ctx_id, String[] rlimits);

    /** SMBIOS type 11 OEM strings (NULL array is {@code -EINVAL}; empty array clears). jkrun: supported. */
    int krun_set_smbios_oem_strings(@u_int32_t int ctx_id, String[] oem_strings);

    /** The workload's working directory inside the guest. jkrun: supported (a relative path is taken from "/"). */
    int krun_set_workdir(@u_int32_t int ctx_id, String workdir_path);

    /**
     * The workload: executable path inside the guest, its arguments (NULL: none) and environment ({@code
     * NAME=VALUE}; NULL: a copy of this process's environment). jkrun: supported through jkrun's init; an
     * environment entry without a name is {@code -EINVAL}.
     */
    int krun_set_exec(@u_int32_t int ctx_id, String exec_path, String[] argv, String[] envp);

    /**
     * Firmware to boot instead of a kernel: placed so that it ends at 4 GiB and entered at the reset vector with the
     * vCPUs in their reset state (libkrun: registers not set up). jkrun: supported for images of up to 256 KiB (what
     * fits above KVM's TSS); a larger or missing file fails {@code krun_start_enter} with {@code -EINVAL}; NULL is
     * {@code -EINVAL}.
     */
    int krun_set_firmware(@u_int32_t int ctx_id, String firmware_path);

    /**
     * A kernel to boot instead of libkrunfw's, with its format, an optional initramfs and an optional command line
     * (which then replaces the default one). jkrun: {@code KRUN_KERNEL_FORMAT_ELF} (jkrun also recognises a bzImage
     * passed as ELF) and the gzip/zstd/bzip2-compressed ELF formats {@code IMAGE_GZ}/{@code IMAGE_ZSTD}/{@code
     * IMAGE_BZ2}, each with an optional initramfs, and RAW (the file at 0x80000000, entered there; jkrun's boot page
     * tables then map 4 GiB, where libkrun's 1 GiB leaves it unable to run); {@code PE_GZ} (arm64), an unknown format
     * or a missing initramfs is {@code -EINVAL}, as in libkrun on x86_64.
     */
    int krun_set_kernel(@u_int32_t int ctx_id, String kernel_path, @u_int32_t int kernel_format, String initramfs, String cmdline);

    /** Replaces the workload's environment (NULL: this process's). jkrun: supported. */
    int krun_set_env(@u_int32_t int ctx_id, String[] envp);

    /** The TEE configuration file (libkrun-sev/tdx). jkrun: {@code -ENOTSUP} (no TEE). */
    int krun_set_tee_config_file(@u_int32_t int ctx_id, String filepath);

    /** krun_add_vsock_port2 with {@code listen} false. */
    int krun_add_vsock_port(@u_int32_t int ctx_id, @u_int32_t int port, String c_filepath);

    /**
     * Bridges guest vsock port {@code port} to a host UNIX socket: the guest connects to CID 2 and jkrun connects to
     * {@code c_filepath}; with {@code listen}, jkrun listens there and connects each client to the guest's listener.
     * {@code -EEXIST} when a listen path exists or the port or path is bridged already, {@code -ENODEV} once vsock is
     * disabled, {@code -EINVAL} for a path a unix socket cannot hold.
     */
    int krun_add_vsock_port2(@u_int32_t int ctx_id, @u_int32_t int port, String c_filepath, boolean listen);

    /**
     * An explicit vsock device with TSI features (KRUN_TSI_HIJACK_INET, KRUN_TSI_HIJACK_UNIX), after
     * krun_disable_implicit_vsock (else {@code -EEXIST}); bits beyond 0-1 are {@code -EINVAL}.
     */
    int krun_add_vsock(@u_int32_t int ctx_id, @u_int32_t int tsi_features);

    /**
     * An eventfd; writing to it while the VM runs asks the guest to shut down in order. Call before
     * krun_start_enter. jkrun: supported (libkrun has it only on macOS/libkrun-efi): the same fd for every call on
     * a context; a write makes jkrun stop the VM (orderly, forced after 10 s), and the process then exits as
     * krun_start_enter says.
     */
    int krun_get_shutdown_eventfd(@u_int32_t int ctx_id);

    /**
     * Sends the implicit console's output to a file and ignores stdin ({@code -EINVAL} when called twice).
     * jkrun: supported.
     */
    int krun_set_console_output(@u_int32_t int ctx_id, String c_filepath);

    /**
     * The uid the process switches to right before the VM starts (after it is built: disks and devices opened as
     * the caller). jkrun: supported; the whole process (every JVM thread) switches, as libkrun's does, and a failed
     * switch, or one after which any thread keeps another id or a capability, makes krun_start_enter return its
     * negative errno ({@code -EPERM}) with nothing run.
     */
    int krun_setuid(@u_int32_t int ctx_id, @uid_t int uid);

    /**
     * The gid the process switches to before the VM starts (before the uid). jkrun: as {@link #krun_setuid}; root's
     * supplementary groups are dropped too (libkrun keeps them).
     */
    int krun_setgid(@u_int32_t int ctx_id, @gid_t int gid);

    /** Requests nested virtualization (VMX/SVM) in the guest. jkrun: supported. */
    int krun_set_nested_virt(@u_int32_t int ctx_id, boolean enabled);

    /** 1 if the host's KVM allows nested virtualization, 0 if not. jkrun: same check (kvm_intel/kvm_amd parameter). */
    int krun_check_nested_virt();

    /**
     * 1 if a {@code KRUN_FEATURE_*} was built in, 0 if not, {@code -EINVAL} for an unknown constant. jkrun: BLK
     * and INIT_BLOB are 1; NET, GPU, INPUT, TEE, AMD_SEV, INTEL_TDX, AWS_NITRO and VIRGL_RESOURCE_MAP2 are 0.
     */
    int krun_has_feature(@u_int64_t long feature);

    /** The most vCPUs the hypervisor supports. jkrun: KVM's limit capped to jkrun's {@code MachineConfig.MAX_VCPUS}. */
    int krun_get_max_vcpus();

    /**
     * Splits the IRQ chip between KVM and the VMM (x86_64): true keeps the LAPICs in KVM and emulates the IOAPIC in
     * jkrun, with no PIC or PIT (as libkrun); false (the default) is KVM's whole irqchip.
     */
    int krun_split_irqchip(@u_int32_t int ctx_id, boolean enable);

    /** No implicit console device. jkrun: supported (named ports still get a device). */
    int krun_disable_implicit_console(@u_int32_t int ctx_id);

    /**
     * Do not inject the default init ({@code /init.krun}) into the root: the kernel still runs {@code /init.krun},
     * which the root directory must then hold. jkrun: supported; unlike libkrun it also applies when called after
     * krun_set_root. The workload config ({@code /.jkrun-config}) is still served.
     */
    int krun_disable_implicit_init(@u_int32_t int ctx_id);

    /**
     * The built-in init binary, valid for the life of the process; {@code -EINVAL} for a NULL argument. jkrun: its own
     * static init, which reads the workload from {@code /.jkrun-config}.
     */
    int krun_get_default_init(PointerByReference data_out, NumberByReference len_out);

    /**
     * A read-only virtual file in the virtio-fs share tagged {@code fs_tag} ({@code -ENOENT} if none yet); parents
     * must be virtual directories ({@code -ENOENT}/{@code -ENOTDIR}). jkrun copies the bytes at the call; a path added
     * twice is {@code -EEXIST}; a NULL tag or path, or NULL data with a length, is {@code -EINVAL}.
     */
    int krun_fs_add_overlay_file(@u_int32_t int ctx_id, String fs_tag, String path, Pointer data, @size_t long data_len,
                                 @u_int32_t int mode, boolean one_shot);

    /** An empty read-only virtual directory in a virtio-fs share, with krun_fs_add_overlay_file's rules. */
    int krun_fs_add_overlay_dir(@u_int32_t int ctx_id, String fs_tag, String path, @u_int32_t int mode);

    /** No implicit vsock device (the one jkrun adds when vsock ports were bridged). */
    int krun_disable_implicit_vsock(@u_int32_t int ctx_id);

    /**
     * The kernel's {@code console=} value. jkrun: supported ({@code console=ID} is appended to the command line,
     * so it is the kernel's /dev/console); an id with blanks is {@code -EINVAL}.
     */
    int krun_set_kernel_console(@u_int32_t int ctx_id, String console_id);

    /**
     * A further virtio-console device autoconfigured on three fds (each negative for none), as the implicit console is
     * on stdin/stdout/stderr: port 0 (the guest's hvc1 behind the implicit console, else hvc0) on the terminal among
     * them, a krun-stdin/-stdout/-stderr port for each that is not one. The fds stay the caller's.
     */
    int krun_add_virtio_console_default(@u_int32_t int ctx_id, int input_fd, int output_fd, int err_fd);

    /**
     * A legacy serial console (a 16550A UART) on two fds, either negative for none: the first is COM1 (0x3F8, IRQ 4,
     * the guest's ttyS0), then COM2, COM3, COM4. The fds stay the caller's; an input terminal is in raw mode while the
     * VM runs. With {@code krun_set_kernel_console(ctx, "ttyS0")} the kernel logs to it. Returns 0, as libkrun; a
     * fifth is {@code -EINVAL} (libkrun accepts it and never places it).
     */
    int krun_add_serial_console_default(@u_int32_t int ctx_id, int input_fd, int output_fd);

    /**
     * A multi-port virtio-console device; returns its console id (0, 1...). jkrun: supported with one difference:
     * the ports added to it live on jkrun's single console device (beside hvc0), so the guest finds them by name
     * in /sys/class/virtio-ports, not as a further hvcN device.
     */
    int krun_add_virtio_console_multiport(@u_int32_t int ctx_id);

    /**
     * A terminal port on a multi-port console ({@code -EINVAL} for a negative fd or unknown console id,
     * {@code -ENOTTY} if the fd is no terminal). jkrun: supported as a named port; an empty name is
     * {@code -ENOTSUP} (jkrun's ports are found by name).
     */
    int krun_add_console_port_tty(@u_int32_t int ctx_id, @u_int32_t int console_id, String name, int tty_fd);

    /** A generic in/out port on a multi-port console. jkrun: as {@link #krun_add_console_port_tty}, without the tty check. */
    int krun_add_console_port_inout(@u_int32_t int ctx_id, @u_int32_t int console_id, String name, int input_fd, int output_fd);

    /**
     * Boots from a block device added with krun_add_disk*: init mounts {@code device} ({@code fstype} NULL or
     * "auto": probe) with {@code options} and switches root into it. {@code -EINVAL} if a root is already set or
     * no disk was added. jkrun: supported; needs krun_set_exec (jkrun's init does the switch) and serves init from
     * an empty host directory as libkrun's NullFs root.
     */
    int krun_set_root_disk_remount(@u_int32_t int ctx_id, String device, String fstype, String options);

    /**
     * (microsandbox's libkrun) An OverlayFS root from layers, the last one writable ({@code -EINVAL} for none,
     * {@code -EEXIST} if a root is set). jkrun: supported (OverlayFs: the others are read-only lower layers, bottom
     * to top; OCI {@code .wh.} and 0:0 whiteouts, opaque directories); one layer is that directory as root.
     */
    int krun_set_overlayfs_root(@u_int32_t int ctx_id, String[] root_layers);

    /**
     * Builds and runs the microVM, consuming the context. It returns only when the VM cannot be built or started
     * ({@code -ENOENT} unknown context or no kernel, {@code -EINVAL} bad configuration); otherwise the process
     * exits with the workload's status once the VM stops. jkrun: the same contract; the console is this
     * process's stdio, the exit status {@code StopReason.processExitStatus()} (the workload's, 0 for a guest
     * reset without one, 137 when stopped from the host, 1 for a crash).
     */
    int krun_start_enter(@u_int32_t int ctx_id);
}
