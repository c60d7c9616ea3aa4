package dev.jkrun.vmm;

import dev.jkrun.devices.fs.FileSystem;
import dev.jkrun.devices.fs.augment.VirtualEntry;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * A filesystem served to the guest by virtio-fs under {@code tag}: a host directory (passthrough), or a custom
 * Java {@link FileSystem} made by {@code backend} once per VM (closed with the VM when it is AutoCloseable). The
 * root share's tag is {@code /dev/root}. {@code shmSizeBytes} is the DAX window libkrun's krun_add_virtiofs2
 * asks for (0: none; rounded up to 2 MiB), offered when the backend can map files.
 * {@code lowerLayers} (bottom to top) make a host-path share an overlay ({@code OverlayFs}): they are read-only
 * layers under {@code hostPath}, the upper layer that takes every change (libkrun's krun_set_overlayfs_root).
 * {@code virtualEntries} are files and directories served in the share without existing on the host
 * (krun_fs_add_overlay_file/dir; {@code AugmentFs}), in the order they were added. {@code allowSetuid} lets the
 * guest keep set-ID bits on host files ({@code PassthroughOptions.allowSetuid}; off by default).
 * {@code requestQueues} is how many virtio-fs request queues the device offers (1, libkrun's number, by default; up
 * to {@value #MAX_REQUEST_QUEUES}): each is served by a thread of its own, so a guest with several vCPUs has that many
 * requests in flight at once (Linux 6.11 and newer spread their CPUs over the queues), and a custom backend is then
 * called from several threads at once.
 */
public record FsShare(String tag, Optional<Path> hostPath, Optional<Supplier<? extends FileSystem>> backend,
                      boolean readOnly, long shmSizeBytes, List<Path> lowerLayers, List<VirtualEntry> virtualEntries,
                      boolean allowSetuid, int requestQueues)
        implements DeviceConfig {
    public static final String ROOT_TAG = "/dev/root";
    /** virtio-fs config space holds 36 bytes of tag. */
    public static final int MAX_TAG_BYTES = 36;
    /** The most request queues a share's device offers (each one a host thread). */
    public static final int MAX_REQUEST_QUEUES = 16;

    public FsShare {
        if (tag == null || tag.isEmpty() || tag.getBytes(StandardCharsets.UTF_8).length > MAX_TAG_BYTES) {
            throw new ConfigurationException("fs.tag", "must be 1 to " + MAX_TAG_BYTES + " bytes, got '" + tag + "'");
        }
        if (hostPath.isPresent() == backend.isPresent()) {
            throw new ConfigurationException("fs.path", "share '" + tag + "' needs exactly one of a host path or a custom backend");
        }
        if (hostPath.isPresent()) {
            Path p = hostPath.get();
            if (!Files.isDirectory(p)) {
                throw new ConfigurationException("fs.path", "share '" + tag + "': " + p + " is not a directory");
            }
            hostPath = Optional.of(p.toAbsolutePath().normalize());
        }
        lowerLayers = List.copyOf(lowerLayers);
        if (!lowerLayers.isEmpty() && hostPath.isEmpty()) {
            throw new ConfigurationException("fs.layers", "share '" + tag + "': lower layers need a host upper layer");
        }
        List<Path> normalized = new ArrayList<>();
        for (Path p : lowerLayers) {
            if (!Files.isDirectory(p)) {
                throw new ConfigurationException("fs.layers", "share '" + tag + "': layer " + p + " is not a directory");
            }
            normalized.add(p.toAbsolutePath().normalize());
        }
        lowerLayers = List.copyOf(normalized);
        if (!lowerLayers.isEmpty()) {
            // The upper layer takes every write: one inside a lower layer, or holding one, would let the guest change
            // what must stay read-only.
            Path upper = realPath(hostPath.get(), tag);
            for (Path p : lowerLayers) {
                Path lower = realPath(p, tag);
                if (upper.startsWith(lower) || lower.startsWith(upper)) {
                    throw new ConfigurationException("fs.layers", "share '" + tag + "': the upper layer " + upper
                            + " and the lower layer " + lower + " overlap");
                }
            }
        }
        virtualEntries = List.copyOf(virtualEntries);
        for (int i = 0; i < virtualEntries.size(); i++) {
            VirtualEntry.Problem problem = VirtualEntry.problem(virtualEntries.subList(0, i), virtualEntries.get(i));
            if (problem != null) {
                throw new ConfigurationException("fs.virtual_entries", "share '" + tag + "': " + problem.reason());
            }
        }
        if (shmSizeBytes < 0) {
            throw new ConfigurationException("fs.shm_size", "share '" + tag + "': must not be negative, got " + shmSizeBytes);
        }
        if (requestQueues < 1 || requestQueues > MAX_REQUEST_QUEUES) {
            throw new ConfigurationException("fs.request_queues", "share '" + tag + "': must be 1 to " + MAX_REQUEST_QUEUES
                    + ", got " + requestQueues);
        }
    }

    private static Path realPath(Path p, String tag) {
        try {
            return p.toRealPath();
        } catch (java.io.IOException e) {
            throw new ConfigurationException("fs.layers", "share '" + tag + "': " + p + ": " + e.getMessage());
        }
    }

    public FsShare(String tag, Optional<Path> hostPath, Optional<Supplier<? extends FileSystem>> backend,
                   boolean readOnly, long shmSizeBytes, List<Path> lowerLayers, List<VirtualEntry> virtualEntries,
                   boolean allowSetuid) {
        this(tag, hostPath, backend, readOnly, shmSizeBytes, lowerLayers, virtualEntries, allowSetuid, 1);
    }

    public FsShare(String tag, Optional<Path> hostPath, Optional<Supplier<? extends FileSystem>> backend,
                   boolean readOnly, long shmSizeBytes, List<Path> lowerLayers, List<VirtualEntry> virtualEntries) {
        this(tag, hostPath, backend, readOnly, shmSizeBytes, lowerLayers, virtualEntries, false);
    }

    public FsShare(String tag, Optional<Path> hostPath, Optional<Supplier<? extends FileSystem>> backend,
                   boolean readOnly, long shmSizeBytes, List<Path> lowerLayers) {
        this(tag, hostPath, backend, readOnly, shmSizeBytes, lowerLayers, List.of());
    }

    public FsShare(String tag, Optional<Path> hostPath, Optional<Supplier<? extends FileSystem>> backend,
                   boolean readOnly, long shmSizeBytes) {
        this(tag, hostPath, backend, readOnly, shmSizeBytes, List.of());
    }

    /**
     * An overlay of host directories, bottom to top: the last is the writable upper layer (read-only with
     * {@code readOnly}), the others are never written.
     */
    public static FsShare overlay(String tag, List<Path> layers, boolean readOnly) {
        if (layers.isEmpty()) {
            throw new ConfigurationException("fs.layers", "share '" + tag + "' needs at least one layer");
        }
        return new FsShare(tag, Optional.of(layers.get(layers.size() - 1)), Optional.empty(), readOnly, 0,
                layers.subList(0, layers.size() - 1));
    }

    /** All layers bottom to top (the upper one last); just the host path for a plain share. */
    public List<Path> layers() {
        List<Path> all = new ArrayList<>(lowerLayers);
        all.add(path());
        return all;
    }

    /** A host directory shared with passthrough semantics. */
    public FsShare(String tag, Path path, boolean readOnly) {
        this(tag, Optional.ofNullable(path), Optional.empty(), readOnly, 0);
    }

    /** A custom backend; {@code backend} is called once per VM built from this configuration. */
    public static FsShare custom(String tag, Supplier<? extends FileSystem> backend, boolean readOnly) {
        return new FsShare(tag, Optional.empty(), Optional.of(backend), readOnly, 0);
    }

    /**
     * This share with the guest allowed to keep set-user-ID and set-group-ID bits on host files (off by default:
     * {@code PassthroughOptions.allowSetuid}), as a local file system would for a guest that needs their semantics.
     */
    public FsShare withSetuid(boolean allow) {
        return new FsShare(tag, hostPath, backend, readOnly, shmSizeBytes, lowerLayers, virtualEntries, allow, requestQueues);
    }

    /** This share with {@code n} request queues (1 to {@value #MAX_REQUEST_QUEUES}). */
    public FsShare withRequestQueues(int n) {
        return new FsShare(tag, hostPath, backend, readOnly, shmSizeBytes, lowerLayers, virtualEntries, allowSetuid, n);
    }

    /** The host directory of a passthrough share. */
    public Path path() {
        return hostPath.orElseThrow(() -> new IllegalStateException("share '" + tag + "' has a custom backend, not a host path"));
    }

    public boolean isRoot() { return tag.equals(ROOT_TAG); }
}
