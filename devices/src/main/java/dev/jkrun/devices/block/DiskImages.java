package dev.jkrun.devices.block;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Opens disk images. The format is always the caller's word: files are never probed. */
public final class DiskImages {
    private DiskImages() {}

    /**
     * Opens {@code path} as {@code format}. A file whose header does not match the format is a
     * {@link DiskImageException} naming the file and the format (a raw image has no header: any file is raw).
     *
     * @param allowBackingFiles whether a qcow2 image may open the backing file it names; when false, an image that
     *     has one is refused (an image could otherwise make the VMM open any host file)
     */
    public static DiskImage open(Path path, ImageFormat format, boolean readOnly, boolean allowBackingFiles) throws IOException {
        if (!Files.isRegularFile(path) && !Files.exists(path)) {
            throw DiskImageException.of(path, format, "no such file");
        }
        return switch (format) {
            case RAW -> RawImage.open(path, readOnly);
            case QCOW2 -> Qcow2Image.open(path, readOnly, allowBackingFiles);
            case VMDK -> VmdkImage.open(path, readOnly);
        };
    }
}
