package dev.jkrun.devices.fs.passthrough;

import java.lang.management.ManagementFactory;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.function.IntConsumer;

/**
 * How a {@link PassthroughFs} serves its host directory.
 *
 * @param readOnly every modifying operation fails EROFS and changes nothing on the host
 * @param virtualFiles root entries name to content, served read-only and never created on the host; a host file
 *     of the same name is hidden
 * @param exitCodeListener receives the guest's exit status from the {@code 0x7602} ioctl on the root (may be null)
 * @param entryTimeoutNanos how long the guest may cache names
 * @param attrTimeoutNanos how long the guest may cache attributes
 * @param allowDeviceNodes MKNOD may create character and block device nodes on the host (never opened by the
 *     share either way); off, they fail EPERM, except the 0:0 character device that is an overlayfs whiteout
 * @param allowSetuid the guest may set S_ISUID (and S_ISGID on non-directories) on host files, and rewriting a
 *     host file keeps its setuid/setgid bits and {@code security.capability}; off, the bits are dropped from
 *     every mode the guest sets and cleared, with the file capability, when the guest opens such a file for writing
 * @param maxInodes host descriptors the share holds for looked-up inodes (the root not counted); past it LOOKUP
 *     and the creating operations fail ENFILE and READDIRPLUS entries come without attributes
 * @param maxHandles open files and directories the guest may hold; past it OPEN, CREATE and OPENDIR fail EMFILE
 */
public record PassthroughOptions(boolean readOnly, Map<String, VirtualFile> virtualFiles, IntConsumer exitCodeListener,
                                 long entryTimeoutNanos, long attrTimeoutNanos, boolean allowDeviceNodes,
                                 boolean allowSetuid, int maxInodes, int maxHandles) {
    public static final long DEFAULT_TIMEOUT_NANOS = 5_000_000_000L;
    /**
     * Upper bounds of the default caps. The guest releases an inode only when its own cache drops it, so the inode
     * cap is what a guest may keep cached at once (a tree walk of that many files); open handles are what it holds
     * open.
     */
    public static final int DEFAULT_MAX_INODES = 65536, DEFAULT_MAX_HANDLES = 8192;
    /**
     * The default caps take at most these fractions of the process's descriptor limit (RLIMIT_NOFILE, which the
     * JVM raises to the hard limit), so one share cannot take the descriptors every other VM in the JVM needs.
     */
    static final int INODES_SHARE_OF_NOFILE = 4, HANDLES_SHARE_OF_NOFILE = 16;
    /** Floor of the default caps on a host with a tiny descriptor limit. */
    static final int MIN_DEFAULT_CAP = 64;

    public PassthroughOptions {
        virtualFiles = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(Objects.requireNonNull(virtualFiles)));
        for (String name : virtualFiles.keySet()) {
            if (name.isEmpty() || name.equals(".") || name.equals("..") || name.indexOf('/') >= 0
                    || name.indexOf('\0') >= 0 || name.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > 255) {
                throw new IllegalArgumentException("bad virtual file name: " + name);
            }
        }
        if (entryTimeoutNanos < 0 || attrTimeoutNanos < 0) {
            throw new IllegalArgumentException("negative timeout");
        }
        if (maxInodes < 1 || maxHandles < 1) {
            throw new IllegalArgumentException("descriptor caps must be positive: " + maxInodes + ", " + maxHandles);
        }
    }

    public static PassthroughOptions defaults() { return builder().build(); }

    public static Builder builder() { return new Builder(); }

    /** The process's soft RLIMIT_NOFILE, or {@link Integer#MAX_VALUE} when the JVM cannot tell. */
    static long descriptorLimit() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.UnixOperatingSystemMXBean os) {
            long max = os.getMaxFileDescriptorCount();
            return max > 0 ? max : Integer.MAX_VALUE;
        }
        return Integer.MAX_VALUE;
    }

    static int defaultCap(int upper, int shareOfLimit) {
        return (int) Math.max(MIN_DEFAULT_CAP, Math.min(upper, descriptorLimit() / shareOfLimit));
    }

    public static final class Builder {
        private boolean readOnly;
        private final Map<String, VirtualFile> virtualFiles = new LinkedHashMap<>();
        private IntConsumer exitCodeListener;
        private long entryTimeoutNanos = DEFAULT_TIMEOUT_NANOS, attrTimeoutNanos = DEFAULT_TIMEOUT_NANOS;
        private boolean allowDeviceNodes, allowSetuid;
        private int maxInodes = defaultCap(DEFAULT_MAX_INODES, INODES_SHARE_OF_NOFILE);
        private int maxHandles = defaultCap(DEFAULT_MAX_HANDLES, HANDLES_SHARE_OF_NOFILE);

        public Builder readOnly(boolean readOnly) {
            this.readOnly = readOnly;
            return this;
        }

        public Builder virtualFile(String name, byte[] content, int permissions) {
            virtualFiles.put(name, new VirtualFile(content, permissions));
            return this;
        }

        public Builder exitCodeListener(IntConsumer listener) {
            this.exitCodeListener = listener;
            return this;
        }

        public Builder timeouts(long entryNanos, long attrNanos) {
            this.entryTimeoutNanos = entryNanos;
            this.attrTimeoutNanos = attrNanos;
            return this;
        }

        public Builder allowDeviceNodes(boolean allow) {
            this.allowDeviceNodes = allow;
            return this;
        }

        public Builder allowSetuid(boolean allow) {
            this.allowSetuid = allow;
            return this;
        }

        /** Caps the host descriptors of looked-up inodes and of open handles (see the record's components). */
        public Builder descriptorCaps(int maxInodes, int maxHandles) {
            this.maxInodes = maxInodes;
            this.maxHandles = maxHandles;
            return this;
        }

        public PassthroughOptions build() {
            return new PassthroughOptions(readOnly, virtualFiles, exitCodeListener, entryTimeoutNanos, attrTimeoutNanos,
                    allowDeviceNodes, allowSetuid, maxInodes, maxHandles);
        }
    }
}
