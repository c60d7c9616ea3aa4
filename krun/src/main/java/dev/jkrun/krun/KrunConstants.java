package dev.jkrun.krun;

/**
 * The {@code #define}s of include/libkrun.h, with the same names and values, and the Linux errno values the
 * functions return negated ({@code -EINVAL}...). {@code import static dev.jkrun.krun.KrunConstants.*} makes C
 * examples read the same in Java.
 */
public final class KrunConstants {
    private KrunConstants() {}

    // Errnos (Linux x86_64 values); libkrun functions return them negated.
    public static final int EPERM = 1;
    public static final int ENOENT = 2;
    public static final int ENOMEM = 12;
    public static final int EEXIST = 17;
    public static final int ENODEV = 19;
    public static final int ENOTDIR = 20;
    public static final int EINVAL = 22;
    public static final int ENOTTY = 25;
    public static final int EALREADY = 114;
    /** Linux defines ENOTSUP as EOPNOTSUPP (95). */
    public static final int ENOTSUP = 95;
    public static final int EOPNOTSUPP = 95;

    // Logging
    public static final int KRUN_LOG_TARGET_DEFAULT = -1;
    public static final int KRUN_LOG_LEVEL_OFF = 0;
    public static final int KRUN_LOG_LEVEL_ERROR = 1;
    public static final int KRUN_LOG_LEVEL_WARN = 2;
    public static final int KRUN_LOG_LEVEL_INFO = 3;
    public static final int KRUN_LOG_LEVEL_DEBUG = 4;
    public static final int KRUN_LOG_LEVEL_TRACE = 5;
    public static final int KRUN_LOG_STYLE_AUTO = 0;
    public static final int KRUN_LOG_STYLE_ALWAYS = 1;
    public static final int KRUN_LOG_STYLE_NEVER = 2;
    public static final int KRUN_LOG_OPTION_NO_ENV = 1;

    /** The virtiofs tag of the root filesystem (usable with krun_add_virtiofs*). */
    public static final String KRUN_FS_ROOT_TAG = "/dev/root";

    // Disk image formats
    public static final int KRUN_DISK_FORMAT_RAW = 0;
    public static final int KRUN_DISK_FORMAT_QCOW2 = 1;
    public static final int KRUN_DISK_FORMAT_VMDK = 2;

    // Disk sync modes
    public static final int KRUN_SYNC_NONE = 0;
    public static final int KRUN_SYNC_RELAXED = 1;
    public static final int KRUN_SYNC_FULL = 2;

    // Network flags and virtio-net features
    public static final int NET_FLAG_VFKIT = 1 << 0;
    public static final int NET_FLAG_DHCP_CLIENT = 1 << 1;
    public static final int NET_FEATURE_CSUM = 1 << 0;
    public static final int NET_FEATURE_GUEST_CSUM = 1 << 1;
    public static final int NET_FEATURE_GUEST_TSO4 = 1 << 7;
    public static final int NET_FEATURE_GUEST_TSO6 = 1 << 8;
    public static final int NET_FEATURE_GUEST_UFO = 1 << 10;
    public static final int NET_FEATURE_HOST_TSO4 = 1 << 11;
    public static final int NET_FEATURE_HOST_TSO6 = 1 << 12;
    public static final int NET_FEATURE_HOST_UFO = 1 << 14;
    public static final int COMPAT_NET_FEATURES = NET_FEATURE_CSUM | NET_FEATURE_GUEST_CSUM | NET_FEATURE_GUEST_TSO4
            | NET_FEATURE_GUEST_UFO | NET_FEATURE_HOST_TSO4 | NET_FEATURE_HOST_UFO;

    // TSI feature flags for krun_add_vsock
    public static final int KRUN_TSI_HIJACK_INET = 1 << 0;
    public static final int KRUN_TSI_HIJACK_UNIX = 1 << 1;

    // virglrenderer flags for krun_set_gpu_options
    public static final int VIRGLRENDERER_USE_EGL = 1 << 0;
    public static final int VIRGLRENDERER_THREAD_SYNC = 1 << 1;
    public static final int VIRGLRENDERER_USE_GLX = 1 << 2;
    public static final int VIRGLRENDERER_USE_SURFACELESS = 1 << 3;
    public static final int VIRGLRENDERER_USE_GLES = 1 << 4;
    public static final int VIRGLRENDERER_USE_EXTERNAL_BLOB = 1 << 5;
    public static final int VIRGLRENDERER_VENUS = 1 << 6;
    public static final int VIRGLRENDERER_NO_VIRGL = 1 << 7;
    public static final int VIRGLRENDERER_USE_ASYNC_FENCE_CB = 1 << 8;
    public static final int VIRGLRENDERER_RENDER_SERVER = 1 << 9;
    public static final int VIRGLRENDERER_DRM = 1 << 10;

    /** Maximum number of displays (VIRTIO_GPU_MAX_SCANOUTS). */
    public static final int KRUN_MAX_DISPLAYS = 16;

    // vhost-user device types and default queue layouts
    public static final int KRUN_VIRTIO_DEVICE_CONSOLE = 3;
    public static final int KRUN_VIRTIO_DEVICE_RNG = 4;
    public static final int KRUN_VIRTIO_DEVICE_GPU = 16;
    public static final int KRUN_VIRTIO_DEVICE_RTC = 17;
    public static final int KRUN_VIRTIO_DEVICE_INPUT = 18;
    public static final int KRUN_VIRTIO_DEVICE_VSOCK = 19;
    public static final int KRUN_VIRTIO_DEVICE_SND = 25;
    public static final int KRUN_VIRTIO_DEVICE_CAN = 36;
    // The *_QUEUE_SIZES macros are C compound literals ((uint16_t[]){...}): here methods returning a fresh array.
    public static final int KRUN_VHOST_USER_CONSOLE_NUM_QUEUES = 4;
    public static final short[] KRUN_VHOST_USER_CONSOLE_QUEUE_SIZES() { return new short[] {128, 128, 64, 64}; }
    public static final int KRUN_VHOST_USER_RNG_NUM_QUEUES = 1;
    public static final short[] KRUN_VHOST_USER_RNG_QUEUE_SIZES() { return new short[] {256}; }
    public static final int KRUN_VHOST_USER_RTC_NUM_QUEUES = 2;
    public static final short[] KRUN_VHOST_USER_RTC_QUEUE_SIZES() { return new short[] {1024, 1024}; }
    public static final int KRUN_VHOST_USER_INPUT_NUM_QUEUES = 2;
    public static final short[] KRUN_VHOST_USER_INPUT_QUEUE_SIZES() { return new short[] {1024, 1024}; }
    public static final int KRUN_VHOST_USER_SND_NUM_QUEUES = 4;
    public static final short[] KRUN_VHOST_USER_SND_QUEUE_SIZES() { return new short[] {64, 64, 64, 64}; }
    public static final int KRUN_VHOST_USER_VSOCK_NUM_QUEUES = 3;
    public static final short[] KRUN_VHOST_USER_VSOCK_QUEUE_SIZES() { return new short[] {128, 128, 128}; }
    public static final int KRUN_VHOST_USER_CAN_NUM_QUEUES = 3;
    public static final short[] KRUN_VHOST_USER_CAN_QUEUE_SIZES() { return new short[] {64, 64, 64}; }
    public static final int KRUN_VHOST_USER_GPU_NUM_QUEUES = 2;
    public static final short[] KRUN_VHOST_USER_GPU_QUEUE_SIZES() { return new short[] {1024, 1024}; }

    // Kernel formats for krun_set_kernel
    public static final int KRUN_KERNEL_FORMAT_RAW = 0;
    public static final int KRUN_KERNEL_FORMAT_ELF = 1;
    public static final int KRUN_KERNEL_FORMAT_PE_GZ = 2;
    public static final int KRUN_KERNEL_FORMAT_IMAGE_BZ2 = 3;
    public static final int KRUN_KERNEL_FORMAT_IMAGE_GZ = 4;
    public static final int KRUN_KERNEL_FORMAT_IMAGE_ZSTD = 5;

    // Features for krun_has_feature
    public static final long KRUN_FEATURE_NET = 0;
    public static final long KRUN_FEATURE_BLK = 1;
    public static final long KRUN_FEATURE_GPU = 2;
    public static final long KRUN_FEATURE_INPUT = 4;
    public static final long KRUN_FEATURE_TEE = 6;
    public static final long KRUN_FEATURE_AMD_SEV = 7;
    public static final long KRUN_FEATURE_INTEL_TDX = 8;
    public static final long KRUN_FEATURE_AWS_NITRO = 9;
    public static final long KRUN_FEATURE_VIRGL_RESOURCE_MAP2 = 10;
    public static final long KRUN_FEATURE_INIT_BLOB = 11;
}
