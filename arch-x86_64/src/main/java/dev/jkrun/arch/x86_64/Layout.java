package dev.jkrun.arch.x86_64;

/**
 * The guest physical memory map (notes §1.3; libkrun {@code src/arch/src/x86_64/layout.rs}). Everything below
 * 1 MiB is boot structures written by the VMM; the kernel is copied to {@link #KERNEL_START}.
 */
public final class Layout {
    private Layout() {}

    /** Boot GDT: 4 × 8 bytes, GDTR limit 31. */
    public static final long GDT = 0x500;
    /** Boot IDT: one zero 8-byte entry, IDTR limit 7. */
    public static final long IDT = 0x520;
    /** Zero page (boot_params) for the 64-bit boot protocol; RSI points here at entry. */
    public static final long ZERO_PAGE = 0x7000;
    /** Initial RSP and RBP. */
    public static final long BOOT_STACK = 0x8FF0;
    public static final long PML4 = 0x9000;
    public static final long PDPT = 0xA000;
    public static final long PD = 0xB000;
    /** Kernel command line, NUL-terminated. */
    public static final long CMDLINE = 0x20000;
    /** Command line capacity including the NUL (libkrun's x86 builder). */
    public static final int CMDLINE_MAX = 0x10000;
    /** The MP floating pointer, followed by the config table, at the start of the EBDA. */
    public static final long MPTABLE = 0x9FC00;
    /** End of the first e820 RAM range (start of the EBDA). */
    public static final long EBDA_START = 0x9FC00;
    /**
     * The SMBIOS 3.0 entry point, followed by the structure table ({@link Smbios}): the start of the legacy BIOS
     * area that Linux's dmi_scan searches (16-byte steps) when there is no EFI system table.
     */
    public static final long SMBIOS_START = 0xF0000;
    /** End (exclusive) of the area dmi_scan searches; all SMBIOS data must lie below it. */
    public static final long SMBIOS_END = 0x100000;
    /** Start of the second e820 RAM range. */
    public static final long HIMEM_START = 0x100000;
    /** Where the libkrunfw kernel is loaded (CONFIG_PHYSICAL_START); also boot_params.kernel_alignment. */
    public static final long KERNEL_START = 0x1000000;
    /** Start of the MMIO hole (4 GiB − 768 MiB): virtio-mmio slots, IOAPIC, LAPIC, TSS. */
    public static final long MMIO_START = 0xD000_0000L;
    /** End of the MMIO hole; RAM that does not fit below the hole continues here. */
    public static final long MMIO_GAP_END = 0x1_0000_0000L;
    public static final long IOAPIC = 0xFEC0_0000L;
    public static final long LAPIC = 0xFEE0_0000L;
    /** KVM_SET_TSS_ADDR: 3 pages, inside the MMIO hole so they never overlap RAM. */
    public static final long TSS_ADDRESS = 0xFFFB_D000L;
    /** Each virtio-mmio device gets one 4 KiB slot from {@link #MMIO_START}. */
    public static final int MMIO_SLOT_SIZE = 0x1000;
    /** Input pins of KVM's in-kernel IOAPIC (KVM_IOAPIC_NUM_PINS); its default routing maps GSI n to pin n. */
    public static final int IOAPIC_PINS = 24;
    /**
     * IRQ lines handed to virtio-mmio devices, inclusive ({@link MmioPlacement}): 5–15 as libkrun, then the IOAPIC's
     * pins above the ISA range. 0–4 stay with the PIT, the cascade, the keyboard and the serial ports.
     */
    public static final int FIRST_IRQ = 5;
    public static final int LAST_IRQ = IOAPIC_PINS - 1;

    /** The guest physical address of virtio-mmio slot {@code slot}. */
    public static long mmioSlot(int slot) {
        if (slot < 0 || slot >= (IOAPIC - MMIO_START) / MMIO_SLOT_SIZE) {
            throw new IllegalArgumentException("mmio slot out of range: " + slot);
        }
        return MMIO_START + (long) slot * MMIO_SLOT_SIZE;
    }

    /** Shared memory regions (virtio-fs DAX windows) start on a 1 GiB boundary above RAM and the 4 GiB line. */
    public static final long SHM_ALIGNMENT = 1L << 30;
    /**
     * Where shared memory regions may end at the latest: 2^39 (512 GiB), inside the guest-physical space of every
     * x86_64 host KVM runs on (39 address bits at the least).
     */
    public static final long SHM_LIMIT = 1L << 39;

    /** The first guest physical address for shared memory regions when RAM ends (exclusive) at {@code ramEnd}. */
    public static long sharedMemoryStart(long ramEnd) {
        long from = Math.max(ramEnd, MMIO_GAP_END);
        return (from + SHM_ALIGNMENT - 1) & -SHM_ALIGNMENT;
    }
}
