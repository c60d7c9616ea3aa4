package dev.jkrun.loader;

import static dev.jkrun.loader.GuestWrites.hex;

import dev.jkrun.memory.GuestMemory;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.OptionalInt;

/**
 * A compressed kernel in the x86 boot protocol format (Documentation/arch/x86/boot.rst). The real-mode
 * setup ({@code setup_sects + 1} sectors) is skipped; the protected-mode part is copied to
 * {@code code32_start} (0x100000) and entered in 64-bit mode at {@code code32_start + 0x200}
 * ({@code startup_64} of the decompressor), which needs boot protocol 2.12+ with {@code XLF_KERNEL_64}.
 *
 * <p>The decompressor then works in place and needs {@link #initSize()} bytes from the load address: the VMM
 * must have that much RAM there, beyond {@link #end()}. The boot configurator copies {@link #setupHeader()}
 * into the zero page at 0x1F1.
 */
public final class BzImage implements KernelPayload {
    /** Offset of {@code struct setup_header} in the file and in {@code boot_params}. */
    public static final int SETUP_HEADER_OFFSET = 0x1f1;
    /** Offset of the "HdrS" signature. */
    public static final int HEADER_MAGIC_OFFSET = 0x202;
    static final byte[] HEADER_MAGIC = {'H', 'd', 'r', 'S'};
    private static final int BOOT_FLAG = 0xaa55;
    private static final int MIN_PROTOCOL = 0x020c;
    private static final int LOADED_HIGH = 0x01;
    private static final int XLF_KERNEL_64 = 0x01;
    private static final int ENTRY_64_OFFSET = 0x200;
    /** The header must at least reach {@code init_size} (0x260 + 4). */
    private static final int MIN_FILE = 0x264;

    private final Path path;
    private final int protocol;
    private final long loadAddress;
    private final long initSize;
    private final byte[] setupHeader;
    private final byte[] kernel;

    private BzImage(Path path, int protocol, long loadAddress, long initSize, byte[] setupHeader, byte[] kernel) {
        this.path = path;
        this.protocol = protocol;
        this.loadAddress = loadAddress;
        this.initSize = initSize;
        this.setupHeader = setupHeader;
        this.kernel = kernel;
    }

    public static BzImage load(Path file) {
        byte[] all;
        try {
            long size = Files.size(file);
            if (size > Integer.MAX_VALUE - 16) {
                throw new KernelFormatException(KernelFormatException.Reason.OVERFLOW, file + ": " + size + " bytes is too large for a bzImage");
            }
            all = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new KernelFormatException(KernelFormatException.Reason.IO, file + ": cannot read: " + e, e);
        }
        return parse(file, all);
    }

    static BzImage parse(Path file, byte[] all) {
        if (all.length < HEADER_MAGIC_OFFSET + 4
                || !Arrays.equals(all, HEADER_MAGIC_OFFSET, HEADER_MAGIC_OFFSET + 4, HEADER_MAGIC, 0, 4)) {
            throw new KernelFormatException(KernelFormatException.Reason.UNKNOWN_FORMAT,
                    file + " is not a bzImage (no \"HdrS\" at 0x202)");
        }
        if (all.length < MIN_FILE) {
            throw new KernelFormatException(KernelFormatException.Reason.TRUNCATED,
                    file + ": truncated bzImage setup header (" + all.length + " bytes)");
        }
        ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        int bootFlag = b.getShort(0x1fe) & 0xffff;
        int protocol = b.getShort(0x206) & 0xffff;
        int loadflags = b.get(0x211) & 0xff;
        long code32Start = b.getInt(0x214) & 0xffffffffL;
        int xloadflags = b.getShort(0x236) & 0xffff;
        long initSize = b.getInt(0x260) & 0xffffffffL;
        int setupSects = b.get(0x1f1) & 0xff;
        if (setupSects == 0) {
            setupSects = 4; // boot.rst: "If this field is 0, the real value is 4."
        }
        if (bootFlag != BOOT_FLAG) {
            throw unsupported(file + ": bad boot_flag " + hex(bootFlag) + " (need 0xaa55)");
        }
        if (protocol < MIN_PROTOCOL) {
            throw unsupported(file + ": boot protocol " + protocolString(protocol) + " is too old (need 2.12 for a 64-bit entry)");
        }
        if ((loadflags & LOADED_HIGH) == 0) {
            throw unsupported(file + ": not a bzImage (LOADED_HIGH clear: a zImage loaded at 0x10000)");
        }
        if ((xloadflags & XLF_KERNEL_64) == 0) {
            throw unsupported(file + ": no 64-bit entry point (XLF_KERNEL_64 clear)");
        }
        int kernelOffset = (setupSects + 1) * 512;
        if (kernelOffset >= all.length) {
            throw new KernelFormatException(KernelFormatException.Reason.TRUNCATED, file + ": setup ("
                    + kernelOffset + " bytes) leaves no protected-mode kernel in a file of " + all.length + " bytes");
        }
        int headerEnd = HEADER_MAGIC_OFFSET + (all[0x201] & 0xff);
        byte[] header = Arrays.copyOfRange(all, SETUP_HEADER_OFFSET, Math.max(MIN_FILE, Math.min(headerEnd, kernelOffset)));
        byte[] kernel = Arrays.copyOfRange(all, kernelOffset, all.length);
        return new BzImage(file, protocol, code32Start, initSize, header, kernel);
    }

    private static String protocolString(int p) { return (p >> 8) + "." + (p & 0xff); }

    private static KernelFormatException unsupported(String msg) {
        return new KernelFormatException(KernelFormatException.Reason.UNSUPPORTED_BZIMAGE, msg);
    }

    public Path path() { return path; }

    /** The boot protocol version, e.g. 0x020f. */
    public int protocol() { return protocol; }

    /** Memory the kernel needs from the load address while it decompresses itself ({@code init_size}). */
    public long initSize() { return initSize; }

    /** The setup header as in the file, from 0x1F1 to the end the header's jump declares; for the zero page. */
    public byte[] setupHeader() { return setupHeader.clone(); }

    /** Size of the protected-mode kernel copied to RAM. */
    public long size() { return kernel.length; }

    @Override
    public long loadAddress() { return loadAddress; }

    @Override
    public long end() { return loadAddress + kernel.length; }

    @Override
    public long entry() { return loadAddress + ENTRY_64_OFFSET; }

    @Override
    public void writeInto(GuestMemory mem) {
        GuestWrites.checkFits(mem, loadAddress, kernel.length, this::description);
        GuestWrites.write(mem, loadAddress, kernel, 0, kernel.length);
    }

    /** Offset of {@code cmdline_size} (boot protocol 2.06+): the longest command line, without its NUL. */
    public static final int CMDLINE_SIZE_OFFSET = 0x238;

    /** The header's {@code cmdline_size}: COMMAND_LINE_SIZE − 1 of the kernel that built it (2047 on x86). */
    @Override
    public OptionalInt commandLineLimit() {
        return OptionalInt.of(ByteBuffer.wrap(setupHeader).order(ByteOrder.LITTLE_ENDIAN)
                .getInt(CMDLINE_SIZE_OFFSET - SETUP_HEADER_OFFSET));
    }

    @Override
    public String description() {
        return "bzImage " + path.getFileName() + " (boot protocol " + protocolString(protocol) + ", "
                + GuestWrites.mib(kernel.length) + " at " + hex(loadAddress) + ")";
    }
}
