package dev.jkrun.devices.block;

import dev.jkrun.libc.Errno;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.PosixFs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Opens disk images. The format is always the caller's word: files are never probed. */
public final class DiskImages {
    private DiskImages() {}

    /** {@link #open(Path, ImageFormat, boolean, boolean, boolean)} through the host page cache. */
    public static DiskImage open(Path path, ImageFormat format, boolean readOnly, boolean allowBackingFiles) throws IOException {
        return open(path, format, readOnly, allowBackingFiles, false);
    }

    /**
     * Opens {@code path} as {@code format}. A file whose header does not match the format is a
     * {@link DiskImageException} naming the file and the format (a raw image has no header: any file is raw).
     *
     * @param allowBackingFiles whether an image may open host files it names beyond its own: a qcow2 image's backing
     *     file, a VMDK descriptor's extents outside the descriptor's directory or through symlinks. When false, a
     *     qcow2 image with a backing file is refused, and VMDK extents must be regular files in the descriptor's
     *     directory named plainly (an image could otherwise make the VMM open any host file, read-write for a
     *     writable VMDK). Either way a name from an image opens only a regular file.
     * @param directIo bypass the host page cache (O_DIRECT); raw images only, and the file system must support it
     */
    public static DiskImage open(Path path, ImageFormat format, boolean readOnly, boolean allowBackingFiles,
                                 boolean directIo) throws IOException {
        if (!Files.isRegularFile(path) && !Files.exists(path)) {
            throw DiskImageException.of(path, format, "no such file");
        }
        if (directIo && format != ImageFormat.RAW) {
            throw DiskImageException.of(path, format, "direct I/O is implemented for raw images only");
        }
        return switch (format) {
            case RAW -> RawImage.open(path, readOnly, directIo);
            case QCOW2 -> Qcow2Image.open(path, readOnly, allowBackingFiles);
            case VMDK -> VmdkImage.open(path, readOnly, allowBackingFiles);
        };
    }

    /**
     * Whether the file system holding {@code file} takes O_DIRECT (open(2) with it succeeds; EINVAL is the file
     * system's refusal), so callers can choose direct I/O only where it will attach.
     */
    public static boolean directIoSupported(Path file) {
        try (FileDescriptor fd = PosixFs.openat(null,
                PosixFs.bytes(file.toString()), PosixFs.O_RDONLY | PosixFs.O_DIRECT, 0)) {
            return true;
        } catch (NativeCallException e) {
            if (e.errno() == Errno.EINVAL) {
                return false;
            }
            throw e;
        }
    }
}
