package dev.jkrun.arch.aarch64;

import java.util.Comparator;
import java.util.List;
import java.util.Optional;

/**
 * The device tree an aarch64 guest boots with, as libkrun (src/devices/src/fdt/aarch64.rs) and Firecracker write it:
 * the root ({@code linux,dummy-virt}, 2 address and size cells, the GIC as interrupt parent), one cpu node per vCPU
 * (PSCI as enable method), the memory node, chosen (bootargs, initramfs, stdout), the GIC, the architected timer,
 * the 24 MHz APB clock, PSCI 0.2 over HVC, then the devices sorted by address: virtio-mmio (edge-rising SPIs), the
 * 8250-compatible serial consoles and the PL031 RTC (level-high SPIs).
 */
public final class DeviceTree {
    private DeviceTree() {}

    /** GIC_FDT_IRQ_TYPE_*: an interrupt specifier's first cell. */
    static final int IRQ_SPI = 0, IRQ_PPI = 1;
    /** The specifier's third cell: IRQ_TYPE_EDGE_RISING, IRQ_TYPE_LEVEL_HIGH (dt-bindings/interrupt-controller/irq.h). */
    static final int EDGE_RISING = 1, LEVEL_HIGH = 4;
    static final int GIC_PHANDLE = 1, CLOCK_PHANDLE = 2;

    /** Which GIC the VM has: v3 (distributor + redistributors) or v2 (distributor + CPU interface). */
    public enum GicVersion { V2, V3 }

    /**
     * A device window and its interrupt (an SPI's INTID, 32 and up); {@code level}: the line is level-triggered
     * (active high), else edge (rising).
     */
    public record Device(long base, long size, int irq, boolean level) {
        public Device {
            if (irq < 32) {
                throw new IllegalArgumentException("a device's interrupt is an SPI (INTID 32 and up), not " + irq);
            }
        }
    }

    /**
     * What the tree describes. {@code mpidrs}: each vCPU's affinity in id order; {@code initrd}: {start, end} or
     * empty; {@code gicRegions}: v3 {dist, dist size, redist, redist size}, v2 {dist, size, cpu, size}.
     */
    public record Machine(long ramStart, long ramSize, List<Long> mpidrs, String bootargs, Optional<long[]> initrd,
                          GicVersion gic, long[] gicRegions, List<Device> virtio, List<Device> serials,
                          Optional<Device> rtc) {
        public Machine {
            if (mpidrs.isEmpty()) {
                throw new IllegalArgumentException("a machine without vCPUs");
            }
            if (gicRegions.length != 4) {
                throw new IllegalArgumentException("the GIC has two regions (four numbers), not " + gicRegions.length);
            }
            mpidrs = List.copyOf(mpidrs);
            virtio = List.copyOf(virtio);
            serials = List.copyOf(serials);
            gicRegions = gicRegions.clone();
        }
    }

    /** The blob. */
    public static byte[] build(Machine m) {
        Fdt f = new Fdt();
        f.beginNode("");
        f.property("compatible", "linux,dummy-virt");
        f.propertyU32("#address-cells", 2);
        f.propertyU32("#size-cells", 2);
        f.propertyU32("interrupt-parent", GIC_PHANDLE);

        f.beginNode("cpus");
        f.propertyU32("#address-cells", 1);
        f.propertyU32("#size-cells", 0);
        for (long mpidr : m.mpidrs()) {
            f.beginNode("cpu@" + Long.toHexString(mpidr));
            f.property("device_type", "cpu");
            f.property("compatible", "arm,arm-v8");
            if (m.mpidrs().size() > 1) {
                f.property("enable-method", "psci");
            }
            f.propertyU32("reg", (int) (mpidr & 0xFF_FFFF)); // Aff2..Aff0
            f.endNode();
        }
        f.endNode();

        f.beginNode("memory@" + Long.toHexString(m.ramStart()));
        f.property("device_type", "memory");
        f.propertyU64("reg", m.ramStart(), m.ramSize());
        f.endNode();

        f.beginNode("chosen");
        f.property("bootargs", m.bootargs());
        if (m.initrd().isPresent()) {
            f.propertyU64("linux,initrd-start", m.initrd().get()[0]);
            f.propertyU64("linux,initrd-end", m.initrd().get()[1]);
        }
        if (!m.serials().isEmpty()) {
            f.property("stdout-path", "/" + serialName(m.serials().get(0)));
        }
        f.endNode();

        long[] g = m.gicRegions();
        f.beginNode("intc@" + Long.toHexString(g[0]));
        f.property("compatible", m.gic() == GicVersion.V3 ? "arm,gic-v3" : "arm,cortex-a15-gic");
        f.propertyU32("#interrupt-cells", 3);
        f.property("interrupt-controller");
        f.propertyU64("reg", g);
        f.propertyU32("phandle", GIC_PHANDLE);
        f.propertyU32("#address-cells", 2);
        f.propertyU32("#size-cells", 2);
        f.property("ranges");
        f.propertyU32("interrupts", IRQ_PPI, 9, LEVEL_HIGH); // the virtual GIC's maintenance interrupt
        f.endNode();

        f.beginNode("timer");
        f.property("compatible", "arm,armv8-timer");
        f.property("always-on");
        // secure physical, non-secure physical, virtual, hypervisor timer PPIs
        f.propertyU32("interrupts", IRQ_PPI, 13, LEVEL_HIGH, IRQ_PPI, 14, LEVEL_HIGH, IRQ_PPI, 11, LEVEL_HIGH,
                IRQ_PPI, 10, LEVEL_HIGH);
        f.endNode();

        f.beginNode("apb-pclk");
        f.property("compatible", "fixed-clock");
        f.propertyU32("#clock-cells", 0);
        f.propertyU32("clock-frequency", 24_000_000);
        f.property("clock-output-names", "clk24mhz");
        f.propertyU32("phandle", CLOCK_PHANDLE);
        f.endNode();

        f.beginNode("psci");
        f.property("compatible", "arm,psci-0.2");
        f.property("method", "hvc");
        f.endNode();

        record Named(Device d, int kind) {}
        List<Named> devices = new java.util.ArrayList<>();
        m.virtio().forEach(d -> devices.add(new Named(d, 0)));
        m.serials().forEach(d -> devices.add(new Named(d, 1)));
        m.rtc().ifPresent(d -> devices.add(new Named(d, 2)));
        devices.sort(Comparator.comparingLong(n -> n.d().base()));
        for (Named n : devices) {
            Device d = n.d();
            switch (n.kind()) {
                case 0 -> {
                    f.beginNode("virtio_mmio@" + Long.toHexString(d.base()));
                    f.property("compatible", "virtio,mmio");
                    f.propertyU64("reg", d.base(), d.size());
                    f.propertyU32("interrupts", IRQ_SPI, d.irq() - 32, d.level() ? LEVEL_HIGH : EDGE_RISING);
                    f.property("dma-coherent");
                }
                case 1 -> {
                    f.beginNode(serialName(d));
                    f.property("compatible", "ns16550a");
                    f.propertyU64("reg", d.base(), d.size());
                    f.propertyU32("interrupts", IRQ_SPI, d.irq() - 32, LEVEL_HIGH);
                    f.propertyU32("clock-frequency", 1_843_200); // 115200 baud × 16
                }
                default -> {
                    f.beginNode("rtc@" + Long.toHexString(d.base()));
                    f.propertyStrings("compatible", "arm,pl031", "arm,primecell");
                    f.propertyU64("reg", d.base(), d.size());
                    f.propertyU32("interrupts", IRQ_SPI, d.irq() - 32, LEVEL_HIGH);
                    f.propertyU32("clocks", CLOCK_PHANDLE);
                    f.property("clock-names", "apb_pclk");
                }
            }
            f.endNode();
        }
        f.endNode();
        byte[] blob = f.finish();
        if (blob.length > Layout.FDT_MAX_SIZE) {
            throw new IllegalStateException("the device tree is " + blob.length + " bytes, more than its "
                    + Layout.FDT_MAX_SIZE + " of room");
        }
        return blob;
    }

    static String serialName(Device d) { return "uart@" + Long.toHexString(d.base()); }
}
