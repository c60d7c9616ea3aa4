package dev.jkrun.loader;

import dev.jkrun.memory.GuestMemory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * libkrun's {@code KRUN_KERNEL_FORMAT_RAW} on x86_64: the file's bytes as they are, at guest physical
 * {@link #LOAD_ADDRESS} (0x8000_0000), entered there in 64-bit mode with RSI at the zero page, as libkrun maps it
 * ({@code map_kernel} in its lib.rs). Like the libkrunfw bundle it lies in RAM of its own: the guest's memory is
 * counted after it. At most {@link #MAX_SIZE} bytes, so that it ends below the MMIO hole at 0xD000_0000.
 */
public final class RawKernel implements KernelPayload {
    public static final long LOAD_ADDRESS = 0x8000_0000L;
    public static final long MAX_SIZE = 0xD000_0000L - LOAD_ADDRESS;

    private final Path path;
    private final byte[] image;

    private RawKernel(Path path, byte[] image) {
        this.path = path;
        this.image = image;
    }

    public static RawKernel load(Path path) {
        try {
            long size = Files.size(path);
            if (size == 0 || size > MAX_SIZE) {
                throw new KernelFormatException(KernelFormatException.Reason.OVERFLOW, path + ": a raw kernel is 1 to "
                        + MAX_SIZE + " bytes (it lies at 0x80000000, below the MMIO hole), got " + size);
            }
            return new RawKernel(path, Files.readAllBytes(path));
        } catch (IOException e) {
            throw new KernelFormatException(KernelFormatException.Reason.IO, path + ": cannot read: " + e, e);
        }
    }

    @Override
    public long loadAddress() { return LOAD_ADDRESS; }

    @Override
    public long end() { return LOAD_ADDRESS + image.length; }

    @Override
    public long entry() { return LOAD_ADDRESS; }

    @Override
    public void writeInto(GuestMemory mem) {
        GuestWrites.checkFits(mem, LOAD_ADDRESS, image.length, () -> "raw kernel " + path);
        GuestWrites.write(mem, LOAD_ADDRESS, image, 0, image.length);
    }

    @Override
    public String description() {
        return "raw kernel " + path + " (" + image.length + " bytes at 0x80000000)";
    }
}
