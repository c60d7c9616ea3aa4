package dev.jkrun.loader;

import dev.jkrun.memory.GuestMemory;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * An initramfs (or initrd) image copied verbatim into guest RAM, where the kernel finds it through the zero page's
 * {@code ramdisk_image}/{@code ramdisk_size} (Documentation/arch/x86/boot.rst). The bytes are not parsed: the
 * kernel unpacks the cpio (or mounts the initrd) itself. The file is opened when the VM is built and streamed
 * straight into guest memory, never held on the heap.
 */
public final class Initramfs {
    /** {@code ramdisk_size} is a u32 (the 64-bit kernel adds ext_ramdisk_size, which libkrun never sets). */
    public static final long MAX_SIZE = 0xFFFF_FFFFL;
    private static final int CHUNK = 1 << 20;

    private final Path path;
    private final long size;

    private Initramfs(Path path, long size) {
        this.path = path;
        this.size = size;
    }

    /** Checks that {@code path} is a readable regular file of 1 byte to {@link #MAX_SIZE}. */
    public static Initramfs open(Path path) {
        long size;
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            size = ch.size();
        } catch (IOException e) {
            throw new KernelFormatException(KernelFormatException.Reason.IO, path + ": cannot read the initramfs: " + e, e);
        }
        if (size == 0) {
            throw new KernelFormatException(KernelFormatException.Reason.TRUNCATED, path + ": the initramfs is empty");
        }
        if (size > MAX_SIZE) {
            throw new KernelFormatException(KernelFormatException.Reason.OVERFLOW,
                    path + ": the initramfs is " + size + " bytes; the boot protocol's ramdisk_size holds at most " + MAX_SIZE);
        }
        return new Initramfs(path, size);
    }

    public Path path() { return path; }

    /** Bytes as the file had them when opened. */
    public long size() { return size; }

    /**
     * Copies the file to {@code [address, address + size)}, which must be RAM (checked first, nothing written
     * otherwise). A file that shrank since {@link #open} is an {@link KernelFormatException.Reason#IO} error; bytes it
     * grew by are not copied.
     */
    public void writeInto(GuestMemory mem, long address) {
        GuestWrites.checkFits(mem, address, size, () -> "initramfs " + path);
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long done = 0;
            byte[] buf = new byte[(int) Math.min(CHUNK, size)];
            while (done < size) {
                ByteBuffer b = ByteBuffer.wrap(buf, 0, (int) Math.min(buf.length, size - done));
                while (b.hasRemaining()) {
                    if (ch.read(b, done + b.position()) < 0) {
                        throw new KernelFormatException(KernelFormatException.Reason.TRUNCATED,
                                path + ": the initramfs shrank to " + (done + b.position()) + " bytes while it was loaded (was " + size + ")");
                    }
                }
                GuestWrites.write(mem, address + done, buf, 0, b.position());
                done += b.position();
            }
        } catch (IOException e) {
            throw new KernelFormatException(KernelFormatException.Reason.IO, path + ": cannot read the initramfs: " + e, e);
        }
    }

    public String description() { return "initramfs " + path.getFileName() + " (" + GuestWrites.mib(size) + ")"; }

}
