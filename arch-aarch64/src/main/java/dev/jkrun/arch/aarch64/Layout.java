package dev.jkrun.arch.aarch64;

/**
 * The aarch64 guest-physical map, libkrun's where it has one (src/arch/src/aarch64/layout.rs): RAM from 2 GiB, the
 * device tree in the last 2 MiB of RAM with the initramfs right below it, devices in the 0x0A00_0000 area, the GIC
 * just below that area, DAX windows from the next GiB above RAM.
 *
 * <p>Interrupts are GIC INTIDs: 0–15 SGIs, 16–31 PPIs (the timers), SPIs from 32. The legacy devices take the first
 * SPIs, virtio devices each an SPI of their own from {@link #FIRST_VIRTIO_IRQ}.
 */
public final class Layout {
    private Layout() {}

    /** Where RAM starts, and where a kernel Image is placed (its text offset added). */
    public static final long RAM_START = 0x8000_0000L;
    /** The highest end of RAM: 1022 GiB, libkrun's bound (a 40-bit IPA space less the DAX room). */
    public static final long RAM_LIMIT = 0xFF_8000_0000L;
    /** The device tree's room at the end of RAM (FDT_MAX_SIZE). */
    public static final long FDT_MAX_SIZE = 0x20_0000;

    /** The device area: one 4 KiB page per device. */
    public static final long MMIO_START = 0x0A00_0000L, MMIO_SLOT_SIZE = 0x1000;
    /** The test-guest toolkit's exit device (only when asked for): a 32-bit write of a status ends the VM. */
    public static final long TEST_EXIT = MMIO_START;
    /** Serial consoles (8250-compatible, byte registers) 0..3, one page each, and their SPIs. */
    public static final long SERIAL_START = MMIO_START + 0x1000;
    public static final int MAX_SERIALS = 4, FIRST_SERIAL_IRQ = 32;
    /** The PL031 real-time clock and its SPI. */
    public static final long RTC = MMIO_START + 0x5000;
    public static final int RTC_IRQ = 36;
    /** virtio-mmio devices: windows from here, each with an SPI of its own from {@link #FIRST_VIRTIO_IRQ}. */
    public static final long VIRTIO_START = MMIO_START + 0x1_0000, VIRTIO_END = 0x0C00_0000L;
    public static final int FIRST_VIRTIO_IRQ = 40, LAST_VIRTIO_IRQ = 159;
    /** The INTIDs the GIC is given: SGIs, PPIs and 128 SPIs (libkrun's nr_irqs). */
    public static final int GIC_NR_IRQS = 160;

    /** GICv3: the distributor just below the device area, one redistributor frame pair per vCPU below it. */
    public static final long GIC_DIST_SIZE = 0x1_0000, GIC_REDIST_SIZE_PER_CPU = 0x2_0000;
    public static final long GIC_DIST = MMIO_START - GIC_DIST_SIZE;
    /** GICv2: the CPU interface's 8 KiB below the distributor. */
    public static final long GIC_V2_CPU_SIZE = 0x2000, GIC_V2_CPU = GIC_DIST - GIC_V2_CPU_SIZE;
    /** The most vCPUs whose redistributors fit between the last RAM-free page at 64 MiB and the distributor. */
    public static final int MAX_VCPUS = 256;

    /** Where the redistributors of {@code vcpus} vCPUs start. */
    public static long gicRedistributors(int vcpus) {
        if (vcpus < 1 || vcpus > MAX_VCPUS) {
            throw new IllegalArgumentException("vcpus " + vcpus + " (1.." + MAX_VCPUS + ")");
        }
        return GIC_DIST - GIC_REDIST_SIZE_PER_CPU * vcpus;
    }

    /** The device tree's address for RAM ending at {@code ramEnd}: the last 2 MiB. */
    public static long fdtAddress(long ramEnd) { return ramEnd - FDT_MAX_SIZE; }

    /** DAX windows: from the first GiB boundary above RAM, each GiB-aligned, below 1 TiB (40-bit IPA). */
    public static final long SHM_ALIGNMENT = 1L << 30, SHM_LIMIT = 1L << 40;

    public static long sharedMemoryStart(long ramEnd) { return (ramEnd + SHM_ALIGNMENT - 1) & -SHM_ALIGNMENT; }

    /**
     * The MPIDR KVM gives vCPU {@code id} (arch/arm64/kvm/sys_regs.c reset_mpidr: Aff0 = id bits 0–3, Aff1 = bits
     * 4–11, Aff2 = bits 12–19; bit 31 RES1), as the device tree's cpu reg names it (without bit 31).
     */
    public static long mpidrOf(int id) {
        return (id & 0xF) | (((long) (id >> 4) & 0xFF) << 8) | (((long) (id >> 12) & 0xFF) << 16);
    }
}
