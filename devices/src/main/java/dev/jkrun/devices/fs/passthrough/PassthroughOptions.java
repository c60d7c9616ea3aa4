package dev.jkrun.devices.fs.passthrough;

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
 */
public record PassthroughOptions(boolean readOnly, Map<String, VirtualFile> virtualFiles, IntConsumer exitCodeListener,
                                 long entryTimeoutNanos, long attrTimeoutNanos) {
    public static final long DEFAULT_TIMEOUT_NANOS = 5_000_000_000L;

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
    }

    public static PassthroughOptions defaults() { return builder().build(); }

    public static Builder builder() { return new Builder(); }

    public static final class Builder {
        private boolean readOnly;
        private final Map<String, VirtualFile> virtualFiles = new LinkedHashMap<>();
        private IntConsumer exitCodeListener;
        private long entryTimeoutNanos = DEFAULT_TIMEOUT_NANOS, attrTimeoutNanos = DEFAULT_TIMEOUT_NANOS;

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

        public PassthroughOptions build() {
            return new PassthroughOptions(readOnly, virtualFiles, exitCodeListener, entryTimeoutNanos, attrTimeoutNanos);
        }
    }
}
