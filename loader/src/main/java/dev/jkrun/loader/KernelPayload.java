package dev.jkrun.loader;

import dev.jkrun.memory.GuestMemory;
import java.util.OptionalInt;

/**
 * A kernel the VMM places in guest RAM before boot: the libkrunfw bundle ({@link KrunfwBundle}), an ELF
 * vmlinux or test guest ({@link ElfKernel}), or a bzImage ({@link BzImage}). {@link Kernels#open} picks the
 * format of a file.
 *
 * <p>The boot contract for every format is the same: the BSP starts in 64-bit long mode at {@link #entry()}
 * with RSI pointing at the zero page (the {@code startup_64} contract of an uncompressed vmlinux).
 */
public interface KernelPayload {
    /** Lowest guest physical address written. */
    long loadAddress();

    /** Exclusive end of the bytes written in RAM (for the bundle: load + size rounded up to 64 KiB). */
    long end();

    /** The 64-bit entry point, a guest physical address. */
    long entry();

    /**
     * Copies the image into guest memory. Checks first that every byte it would write lies in RAM and throws
     * {@link KernelFormatException} ({@link KernelFormatException.Reason#DOES_NOT_FIT}) without writing anything
     * if not. A range may span adjacent regions as long as they are contiguous.
     */
    void writeInto(GuestMemory mem);

    /** One line for logs, e.g. {@code libkrunfw 5 (Linux kernel bundle, 21.3 MiB at 0x1000000)}. */
    String description();

    /**
     * The longest command line (bytes, without the terminating NUL) this kernel takes whole, where the image says or
     * its format fixes it: Linux copies at most COMMAND_LINE_SIZE − 1 bytes and silently drops the rest. Empty when
     * unknown (an ELF kernel or test guest does not say).
     */
    default OptionalInt commandLineLimit() { return OptionalInt.empty(); }
}
