package dev.jkrun.devices.block;

import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.PosixFs;
import dev.jkrun.libc.Stat;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Opens the files an image names (VMDK extents, qcow2 backing files). Those names are image data, as untrusted as
 * the rest of it, so they are looked at through an O_PATH descriptor first, which opens nothing (no FIFO wait, no
 * device open with side effects): only a regular file is then reopened for I/O, through {@code /proc/self/fd}, so
 * the file checked is the file used.
 */
final class ImageFiles {
    private ImageFiles() {}

    /**
     * Opens the file an image names for I/O.
     *
     * @param image the image that names it (messages name both)
     * @param what how messages call it, e.g. "extent 'x.vmdk'"
     * @param name the name as the image gives it: relative names resolve in the image's directory
     * @param anywhere false: {@code name} must be a plain name (no '/', not "." or "..") of a file in the image's
     *     directory, opened without following a symlink; true (the user allowed it): any path, symlinks followed
     * @param minSize the least size the file must have (what the image maps onto it)
     */
    static FileChannel open(Path image, ImageFormat format, String what, String name, boolean write, boolean anywhere,
                            long minSize) throws DiskImageException {
        try (FileDescriptor p = lookUp(image, format, what, name, anywhere)) {
            Stat st = PosixFs.fstat(p);
            requireRegular(image, format, what, st);
            if (st.size() < minSize) {
                throw DiskImageException.of(image, format, what + " holds " + st.size() + " bytes, the image maps "
                        + minSize + " onto it");
            }
            Path same = Path.of("/proc/self/fd/" + p.raw());
            return write ? FileChannel.open(same, StandardOpenOption.READ, StandardOpenOption.WRITE)
                    : FileChannel.open(same, StandardOpenOption.READ);
        } catch (NativeCallException | IOException e) {
            if (e instanceof DiskImageException d) {
                throw d;
            }
            throw new DiskImageException(image + ": " + format + ": " + what + " cannot be opened: " + e.getMessage(), e);
        }
    }

    /**
     * An image's own file as a channel, and a descriptor of the same inode for what a channel cannot do (preadv and
     * pwritev, fallocate); {@code fd} is null where there is none to be had.
     */
    record Opened(FileChannel channel, FileDescriptor fd) {
        /** Closes both after {@code cause} (an image that failed to open on them), adding what that throws to it. */
        void closeAfter(Exception cause) {
            try (FileChannel c = channel; FileDescriptor d = fd) {
                // both closed, whatever the other throws
            } catch (IOException | RuntimeException e) {
                cause.addSuppressed(e);
            }
        }
    }

    /**
     * Opens {@code path} (the file the user named) read-only or read-write: with open(2) first, then the channel
     * reopens that very inode through {@code /proc/self/fd}, so both always name the same file (a second open of the
     * path could meet a file renamed in between). Without /proc, or when open(2) refuses, the channel alone opens the
     * path, reporting any problem in Java's terms, and there is no descriptor.
     */
    static Opened openSame(Path path, boolean write) throws IOException {
        try {
            return openBoth(nativeName(path), write);
        } catch (NativeCallException | IOException e) {
            return new Opened(FileChannel.open(path, how(write)), null);
        }
    }

    /** open(2) of {@code name}, then a channel on that descriptor's inode; the descriptor is closed if that fails. */
    private static Opened openBoth(byte[] name, boolean write) throws IOException {
        FileDescriptor fd = PosixFs.openat(null, name, write ? PosixFs.O_RDWR : PosixFs.O_RDONLY, 0);
        try {
            return new Opened(FileChannel.open(Path.of("/proc/self/fd/" + fd.raw()), how(write)), fd);
        } catch (IOException | RuntimeException e) {
            fd.close();
            throw e;
        }
    }

    private static StandardOpenOption[] how(boolean write) {
        return write ? new StandardOpenOption[] {StandardOpenOption.READ, StandardOpenOption.WRITE}
                : new StandardOpenOption[] {StandardOpenOption.READ};
    }

    /**
     * The bytes the JDK's own file calls pass for {@code path} (in {@code sun.jnu.encoding}, the locale's, which need
     * not be UTF-8): so open(2) names the file that {@code FileChannel.open(path)} would.
     */
    private static byte[] nativeName(Path path) {
        Charset cs;
        try {
            cs = Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));
        } catch (IllegalArgumentException e) {
            cs = StandardCharsets.UTF_8;
        }
        return path.toString().getBytes(cs);
    }

    /**
     * Opens a backing file an image names, read-only: {@code file} (symlinks followed, as backing files are allowed)
     * is looked up through an O_PATH descriptor, must be a regular file, and that very inode is reopened through
     * {@code /proc/self/fd}. A check of the path followed by a second open of it would let a file swapped in
     * between (a FIFO, on which open(2) blocks; a device) be opened after all.
     */
    static Opened openBacking(Path image, ImageFormat format, String what, Path file) throws DiskImageException {
        try (FileDescriptor p = lookUp(image, format, what, file.toString(), true)) {
            requireRegular(image, format, what, PosixFs.fstat(p));
            return openBoth(PosixFs.bytes("/proc/self/fd/" + p.raw()), false);
        } catch (NativeCallException | IOException e) {
            if (e instanceof DiskImageException d) {
                throw d;
            }
            throw new DiskImageException(image + ": " + format + ": " + what + " cannot be opened: " + e.getMessage(), e);
        }
    }

    /** An O_PATH descriptor of {@code name} looked up from the image's directory. */
    private static FileDescriptor lookUp(Path image, ImageFormat format, String what, String name, boolean anywhere)
            throws DiskImageException {
        if (name.indexOf('\0') >= 0) {
            throw DiskImageException.of(image, format, what + " has a NUL in its name");
        }
        if (!anywhere && !plainName(name)) {
            throw DiskImageException.of(image, format, what + " is not a plain file name in the image's directory"
                    + " (files elsewhere are followed only when backing files are allowed)");
        }
        Path dir = image.toAbsolutePath().getParent();
        try (FileDescriptor d = PosixFs.openat(null, PosixFs.bytes(dir.toString()), PosixFs.O_PATH | PosixFs.O_DIRECTORY, 0)) {
            return PosixFs.openat(d, PosixFs.bytes(name), PosixFs.O_PATH | (anywhere ? 0 : PosixFs.O_NOFOLLOW), 0);
        } catch (NativeCallException e) {
            throw new DiskImageException(image + ": " + format + ": " + what + " cannot be opened: " + e.getMessage(), e);
        }
    }

    private static boolean plainName(String name) {
        return !name.isEmpty() && name.indexOf('/') < 0 && !name.equals(".") && !name.equals("..");
    }

    private static void requireRegular(Path image, ImageFormat format, String what, Stat st) throws DiskImageException {
        if (!st.isRegular()) {
            throw DiskImageException.of(image, format, what + " is " + typeName(st) + ", not a regular file");
        }
    }

    private static String typeName(Stat st) {
        return switch (st.type()) {
            case Stat.S_IFLNK -> "a symbolic link";
            case Stat.S_IFDIR -> "a directory";
            case Stat.S_IFIFO -> "a FIFO";
            case Stat.S_IFCHR -> "a character device";
            case Stat.S_IFBLK -> "a block device";
            case Stat.S_IFSOCK -> "a socket";
            default -> "of type 0" + Integer.toOctalString(st.type());
        };
    }
}
