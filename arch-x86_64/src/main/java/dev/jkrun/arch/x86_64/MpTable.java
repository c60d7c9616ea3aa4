package dev.jkrun.arch.x86_64;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Set;

/**
 * The Intel MP 1.4 table at {@link Layout#MPTABLE} (notes §1.10; libkrun {@code mptable.rs}). There is no ACPI, so
 * this is how Linux finds the APs, the IOAPIC and the IRQ routing: it scans the last KiB of base memory for the
 * floating pointer. Layout: floating pointer (16), config header (44), n processors (20 each), one ISA bus (8),
 * one IOAPIC (8), 24 interrupt sources (8 each, one per IOAPIC pin), 2 local interrupt sources (8 each) =
 * 284 + 20n bytes.
 *
 * <p>Every pin's source is ISA IRQ n on pin n (as Firecracker's table, which Linux maps to IRQ n also above 15).
 * Its trigger mode conforms to the bus (edge, active high) unless the pin is a shared virtio line: those are
 * level-triggered, active high ({@link MmioPlacement}).
 */
public final class MpTable {
    private MpTable() {}

    public static final int FLOATING_POINTER_SIZE = 16;
    public static final int HEADER_SIZE = 44;
    public static final int CPU_ENTRY_SIZE = 20;
    public static final int SMALL_ENTRY_SIZE = 8;
    /** Interrupt source entries: IRQ n goes to the IOAPIC pin of the same number (KVM's default routing). */
    public static final int IRQ_SOURCES = Layout.IOAPIC_PINS;

    // Entry types (MP spec table 4-3) and field values.
    static final int MP_PROCESSOR = 0;
    static final int MP_BUS = 1;
    static final int MP_IOAPIC = 2;
    static final int MP_INTSRC = 3;
    static final int MP_LINTSRC = 4;
    static final int MP_IRQ_INT = 0;
    static final int MP_IRQ_NMI = 1;
    static final int MP_IRQ_EXTINT = 3;
    /** Interrupt source flags: 0 conforms to the bus; polarity bits 1:0 = 01 active high, trigger bits 3:2 = 11 level. */
    static final int IRQFLAG_CONFORMS = 0;
    static final int IRQFLAG_LEVEL_HIGH = 0x01 | 0x03 << 2;
    static final int APIC_VERSION = 0x14;
    static final int CPU_ENABLED = 1;
    static final int CPU_BOOTPROCESSOR = 2;
    /** CPU signature: family 6. */
    static final int CPU_STEPPING = 0x600;
    /** Feature flags: APIC (bit 9) | FPU (bit 0). */
    static final int CPU_FEATURES = 0x201;

    public static int size(int vcpuCount) {
        checkVcpus(vcpuCount);
        return FLOATING_POINTER_SIZE + HEADER_SIZE + CPU_ENTRY_SIZE * vcpuCount
                + SMALL_ENTRY_SIZE * (1 + 1 + IRQ_SOURCES + 2);
    }

    /** Writes the whole table at {@link Layout#MPTABLE} with every IRQ edge-triggered. */
    public static void write(GuestMemory mem, int vcpuCount) { write(mem, vcpuCount, Set.of()); }

    /**
     * Writes the whole table at {@link Layout#MPTABLE}; the memory must hold all {@link #size} bytes. The pins in
     * {@code levelIrqs} are described level-triggered, active high; the others conform to the ISA bus (edge).
     */
    public static void write(GuestMemory mem, int vcpuCount, Set<Integer> levelIrqs) {
        mem.write(GuestAddress.of(Layout.MPTABLE), build(vcpuCount, levelIrqs));
    }

    /** The table's bytes, to be placed at {@link Layout#MPTABLE} (the pointers inside assume that address). */
    public static byte[] build(int vcpuCount, Set<Integer> levelIrqs) {
        for (int irq : levelIrqs) {
            if (irq < 0 || irq >= IRQ_SOURCES) {
                throw new IllegalArgumentException("no IOAPIC pin " + irq + " (there are " + IRQ_SOURCES + ")");
            }
        }
        int size = size(vcpuCount);
        int ioapicId = vcpuCount + 1;
        ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);

        // Floating pointer structure: physptr → the config table right after it; length in 16-byte units.
        b.put(ascii("_MP_")).putInt((int) Layout.MPTABLE + FLOATING_POINTER_SIZE);
        b.put((byte) 1).put((byte) 4).put((byte) 0); // length, spec rev 1.4, checksum (below)
        b.put(new byte[5]); // feature bytes: 0 = a config table is present
        b.put(10, checksum(b.array(), 0, FLOATING_POINTER_SIZE));

        // Config table header; length and checksum are filled in once the entries are written.
        int header = b.position();
        b.put(ascii("PCMP")).putShort((short) 0).put((byte) 4).put((byte) 0);
        b.put(ascii("FC      ")).put(ascii("000000000000"));
        b.putInt(0).putShort((short) 0); // OEM table pointer and size
        b.putShort((short) (vcpuCount + 1 + 1 + IRQ_SOURCES + 2)); // entry count (Linux walks by length instead)
        b.putInt((int) Layout.LAPIC).putInt(0);

        for (int cpu = 0; cpu < vcpuCount; cpu++) {
            b.put((byte) MP_PROCESSOR).put((byte) cpu).put((byte) APIC_VERSION);
            b.put((byte) (CPU_ENABLED | (cpu == 0 ? CPU_BOOTPROCESSOR : 0)));
            b.putInt(CPU_STEPPING).putInt(CPU_FEATURES).putLong(0);
        }
        b.put((byte) MP_BUS).put((byte) 0).put(ascii("ISA   "));
        b.put((byte) MP_IOAPIC).put((byte) ioapicId).put((byte) APIC_VERSION).put((byte) 1 /* usable */);
        b.putInt((int) Layout.IOAPIC);
        for (int irq = 0; irq < IRQ_SOURCES; irq++) {
            // irqflag 0: polarity and trigger conform to the bus (ISA: active high, edge); shared lines: level, high.
            int flags = levelIrqs.contains(irq) ? IRQFLAG_LEVEL_HIGH : IRQFLAG_CONFORMS;
            b.put((byte) MP_INTSRC).put((byte) MP_IRQ_INT).putShort((short) flags);
            b.put((byte) 0).put((byte) irq).put((byte) ioapicId).put((byte) irq);
        }
        // The PIC's output reaches the BSP's LINT0 as ExtINT; NMI goes to LINT1 of every APIC (0xFF, as SeaBIOS).
        b.put((byte) MP_LINTSRC).put((byte) MP_IRQ_EXTINT).putShort((short) 0);
        b.put((byte) 0).put((byte) 0).put((byte) 0).put((byte) 0);
        b.put((byte) MP_LINTSRC).put((byte) MP_IRQ_NMI).putShort((short) 0);
        b.put((byte) 0).put((byte) 0).put((byte) 0xFF).put((byte) 1);

        if (b.position() != size) {
            throw new IllegalStateException("MP table layout: wrote " + b.position() + " of " + size);
        }
        b.putShort(header + 4, (short) (size - header));
        b.put(header + 7, checksum(b.array(), header, size - header));
        return b.array();
    }

    /** The byte that makes {@code [off, off+len)} sum to 0 mod 256 (the checksum byte itself being 0). */
    static byte checksum(byte[] a, int off, int len) {
        int sum = 0;
        for (int i = off; i < off + len; i++) {
            sum += a[i];
        }
        return (byte) -sum;
    }

    static void checkVcpus(int n) {
        // APIC ids 0..n-1 for CPUs, n+1 for the IOAPIC, 0xFF broadcast: n ≤ 254.
        if (n < 1 || n > Cpuid.MAX_VCPUS) {
            throw new IllegalArgumentException("vcpus must be in [1, " + Cpuid.MAX_VCPUS + "]: " + n);
        }
    }

    private static byte[] ascii(String s) { return s.getBytes(StandardCharsets.US_ASCII); }
}
