package dev.jkrun.devices.fs.augment;

import dev.jkrun.devices.fs.Errnos;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * A file or directory that exists only in the VMM and is served inside a share ({@link AugmentFs}): libkrun's
 * krun_fs_add_overlay_file/dir. {@code path} is relative to the share's root ("etc/hostname"; one leading '/' is
 * ignored); every directory above it must be a virtual directory added earlier. {@code content} is null for a
 * directory. Only the permission bits of {@code mode} count: the type comes from the kind. A {@code oneShot} file can be
 * looked up once (the name is gone afterwards; an open file stays readable).
 */
public record VirtualEntry(String path, byte[] content, int mode, boolean oneShot) {
    /** NAME_MAX of Linux: a longer component could not be looked up. */
    public static final int MAX_NAME_BYTES = 255;

    public VirtualEntry {
        Objects.requireNonNull(path, "path");
        mode &= 07777;
    }

    public static VirtualEntry file(String path, byte[] content, int mode, boolean oneShot) {
        return new VirtualEntry(path, Objects.requireNonNull(content, "content"), mode, oneShot);
    }

    public static VirtualEntry dir(String path, int mode) { return new VirtualEntry(path, null, mode, false); }

    public boolean isDir() { return content == null; }

    /** The path's components; empty when the path itself is unusable (see {@link #problem}). */
    public List<String> components() {
        String p = path.startsWith("/") ? path.substring(1) : path;
        List<String> out = new ArrayList<>();
        for (String c : p.split("/", -1)) {
            if (c.isEmpty() || c.equals(".") || c.equals("..") || c.indexOf('\0') >= 0
                    || c.getBytes(StandardCharsets.UTF_8).length > MAX_NAME_BYTES) {
                return List.of();
            }
            out.add(c);
        }
        return out;
    }

    /** Why {@code entry} cannot follow {@code before} (an errno and the reason), or null when it can. */
    public static Problem problem(List<VirtualEntry> before, VirtualEntry entry) {
        List<String> parts = entry.components();
        if (parts.isEmpty()) {
            return new Problem(Errnos.EINVAL, "'" + entry.path + "' has an empty, '.', '..' or over-long component");
        }
        for (int depth = 1; depth <= parts.size(); depth++) {
            List<String> prefix = parts.subList(0, depth);
            VirtualEntry found = before.stream().filter(e -> e.components().equals(prefix)).findFirst().orElse(null);
            if (depth == parts.size()) {
                if (found != null) {
                    return new Problem(Errnos.EEXIST, "'" + entry.path + "' was added already");
                }
            } else if (found == null) {
                return new Problem(Errnos.ENOENT, "'" + String.join("/", prefix) + "' is not a virtual directory added before '"
                        + entry.path + "'");
            } else if (!found.isDir()) {
                return new Problem(Errnos.ENOTDIR, "'" + String.join("/", prefix) + "' is a virtual file");
            }
        }
        return null;
    }

    /** A refused entry: a Linux errno (what libkrun answers) and the reason. */
    public record Problem(int errno, String reason) {}
}
