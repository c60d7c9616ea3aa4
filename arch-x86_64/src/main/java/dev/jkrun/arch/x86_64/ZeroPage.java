package dev.jkrun.arch.x86_64;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import java.util.List;

/**
 * The zero page (struct boot_params, Documentation/arch/x86/zero-page.rst) at {@link Layout#ZERO_PAGE}, as
 * libkrun's {@code configure_64bit_boot} fills it (notes §1.5): the page is zeroed and only these fields are set.
 * {@code version} stays 0, which the 64-bit entry point does not look at.
 */
public final class ZeroPage {
    private ZeroPage() {}

    public static final int SIZE = 0x1000;

    // Offsets in struct boot_params (arch/x86/include/uapi/asm/bootparam.h).
    public static final int EXT_RAMDISK_IMAGE = 0x0C0;
    public static final int EXT_RAMDISK_SIZE = 0x0C4;
    public static final int E820_ENTRIES = 0x1E8;
    public static final int BOOT_FLAG = 0x1FE;
    public static final int HEADER = 0x202;
    public static final int TYPE_OF_LOADER = 0x210;
    public static final int RAMDISK_IMAGE = 0x218;
    public static final int RAMDISK_SIZE = 0x21C;
    public static final int CMD_LINE_PTR = 0x228;
    public static final int KERNEL_ALIGNMENT = 0x230;
    public static final int CMDLINE_SIZE = 0x238;
    public static final int E820_TABLE = 0x2D0;

    public static final short BOOT_FLAG_MAGIC = (short) 0xAA55;
    /** "HdrS" little-endian. */
    public static final int HEADER_MAGIC = 0x5372_6448;
    /** 0xFF: an undefined boot loader, as libkrun says. */
    public static final byte LOADER_UNDEFINED = (byte) 0xFF;

    /**
     * @param cmdlineSize strlen + 1 (the NUL counts)
     * @param initrdSize 0 when there is no initrd; then the ramdisk fields stay 0
     */
    public static void write(GuestMemory mem, RamLayout layout, long cmdlineAddress, int cmdlineSize,
            long initrdAddress, long initrdSize) {
        // cmd_line_ptr is a u32 (ext_cmd_line_ptr exists, but the command line always lives below 1 MiB here).
        if (cmdlineAddress < 0 || cmdlineAddress > 0xFFFF_FFFFL) {
            throw new IllegalArgumentException("cmdline address above 4 GiB: " + Long.toHexString(cmdlineAddress));
        }
        if (cmdlineSize < 1 || cmdlineSize > Layout.CMDLINE_MAX) {
            throw new IllegalArgumentException("cmdline size out of range: " + cmdlineSize);
        }
        if (initrdSize < 0 || initrdAddress < 0 || initrdSize > 0xFFFF_FFFFL) {
            throw new IllegalArgumentException("initrd out of range: " + initrdAddress + "+" + initrdSize);
        }
        List<E820.Entry> e820 = E820.entries(layout);

        GuestAddress base = GuestAddress.of(Layout.ZERO_PAGE);
        mem.fill(base, SIZE, (byte) 0);
        mem.writeShort(base.checkedAdd(BOOT_FLAG), BOOT_FLAG_MAGIC);
        mem.writeInt(base.checkedAdd(HEADER), HEADER_MAGIC);
        mem.writeByte(base.checkedAdd(TYPE_OF_LOADER), LOADER_UNDEFINED);
        mem.writeInt(base.checkedAdd(CMD_LINE_PTR), (int) cmdlineAddress);
        mem.writeInt(base.checkedAdd(CMDLINE_SIZE), cmdlineSize);
        mem.writeInt(base.checkedAdd(KERNEL_ALIGNMENT), (int) Layout.KERNEL_START);
        if (initrdSize > 0) {
            // The 64-bit kernel reads ext_ramdisk_image as the high half, so an initrd above 4 GiB also works.
            mem.writeInt(base.checkedAdd(RAMDISK_IMAGE), (int) initrdAddress);
            mem.writeInt(base.checkedAdd(RAMDISK_SIZE), (int) initrdSize);
            mem.writeInt(base.checkedAdd(EXT_RAMDISK_IMAGE), (int) (initrdAddress >>> 32));
        }
        mem.writeByte(base.checkedAdd(E820_ENTRIES), (byte) e820.size());
        GuestAddress table = base.checkedAdd(E820_TABLE);
        for (int i = 0; i < e820.size(); i++) {
            E820.Entry e = e820.get(i);
            GuestAddress at = table.checkedAdd((long) i * E820.Entry.SIZE);
            mem.writeLong(at, e.address());
            mem.writeLong(at.checkedAdd(8), e.size());
            mem.writeInt(at.checkedAdd(16), e.type());
        }
    }
}
