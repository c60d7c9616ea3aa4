package dev.jkrun.arch.aarch64;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.arch.aarch64.FdtReader.Node;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The aarch64 device tree: written, read back node by node, and (where dtc is installed) decompiled by dtc. */
class DeviceTreeTest {
    static DeviceTree.Machine machine(int vcpus, boolean initrd) {
        List<Long> mpidrs = java.util.stream.IntStream.range(0, vcpus).mapToObj(Layout::mpidrOf).toList();
        return new DeviceTree.Machine(Layout.RAM_START, 256L << 20, mpidrs, "console=ttyS0 jkrun.test.status=7",
                initrd ? Optional.of(new long[] {0x8F00_0000L, 0x8F10_0000L}) : Optional.empty(),
                DeviceTree.GicVersion.V3,
                new long[] {Layout.GIC_DIST, Layout.GIC_DIST_SIZE, Layout.gicRedistributors(vcpus),
                        Layout.GIC_REDIST_SIZE_PER_CPU * vcpus},
                List.of(new DeviceTree.Device(Layout.VIRTIO_START + 0x1000, 0x1000, 41, true),
                        new DeviceTree.Device(Layout.VIRTIO_START, 0x1000, 40, false)),
                List.of(new DeviceTree.Device(Layout.SERIAL_START, 0x1000, 32, true)),
                Optional.of(new DeviceTree.Device(Layout.RTC, 0x1000, Layout.RTC_IRQ, true)));
    }

    @Test
    void whatIsWrittenReadsBack() {
        Node root = FdtReader.read(DeviceTree.build(machine(3, true)));
        assertEquals("linux,dummy-virt", root.string("compatible").orElseThrow());
        assertArrayEquals(new int[] {2}, root.cells("#address-cells").orElseThrow());
        Node cpus = root.at("/cpus").orElseThrow();
        assertEquals(3, cpus.children().size());
        assertEquals("psci", cpus.children().get(2).string("enable-method").orElseThrow());
        assertArrayEquals(new int[] {2}, cpus.children().get(2).cells("reg").orElseThrow());
        Node mem = root.at("/memory@80000000").orElseThrow();
        assertArrayEquals(new int[] {0, 0x8000_0000, 0, 256 << 20}, mem.cells("reg").orElseThrow());
        Node chosen = root.at("/chosen").orElseThrow();
        assertEquals("console=ttyS0 jkrun.test.status=7", chosen.string("bootargs").orElseThrow());
        assertArrayEquals(new int[] {0, 0x8F00_0000}, chosen.cells("linux,initrd-start").orElseThrow());
        assertEquals("/uart@a001000", chosen.string("stdout-path").orElseThrow());
        Node gic = root.at("/intc@9ff0000").orElseThrow();
        assertEquals("arm,gic-v3", gic.string("compatible").orElseThrow());
        assertTrue(gic.properties().containsKey("interrupt-controller"));
        assertArrayEquals(new int[] {0, 0x09FF_0000, 0, 0x1_0000, 0, 0x09F9_0000, 0, 0x6_0000}, gic.cells("reg").orElseThrow());
        assertEquals("arm,psci-0.2", root.at("/psci").orElseThrow().string("compatible").orElseThrow());
        assertEquals("hvc", root.at("/psci").orElseThrow().string("method").orElseThrow());
        // devices sorted by address: serial, rtc, then the two virtio windows in address order
        List<String> names = root.children().stream().map(Node::name).toList();
        assertEquals(List.of("cpus", "memory@80000000", "chosen", "intc@9ff0000", "timer", "apb-pclk", "psci",
                "uart@a001000", "rtc@a005000", "virtio_mmio@a010000", "virtio_mmio@a011000"), names);
        Node v0 = root.at("/virtio_mmio@a010000").orElseThrow();
        assertArrayEquals(new int[] {0, 8, 1}, v0.cells("interrupts").orElseThrow(), "SPI 8 = INTID 40, edge rising");
        assertArrayEquals(new int[] {0, 9, 4}, root.at("/virtio_mmio@a011000").orElseThrow().cells("interrupts").orElseThrow(),
                "a shared (level) line is level-high");
        assertEquals("arm,pl031", root.at("/rtc@a005000").orElseThrow().string("compatible").orElseThrow());
    }

    @Test
    void oneCpuNeedsNoEnableMethodAndNoInitrdNoProperties() {
        Node root = FdtReader.read(DeviceTree.build(machine(1, false)));
        assertTrue(root.at("/cpus/cpu@0").orElseThrow().string("enable-method").isEmpty());
        assertTrue(root.at("/chosen").orElseThrow().cells("linux,initrd-start").isEmpty());
    }

    @Test
    void mpidrsFollowKvm() {
        assertEquals(0x0L, Layout.mpidrOf(0));
        assertEquals(0xFL, Layout.mpidrOf(15));
        assertEquals(0x100L, Layout.mpidrOf(16));
        assertEquals(0x10FL, Layout.mpidrOf(31));
    }

    @Test
    void deviceInterruptsAreSpis() {
        assertThrows(IllegalArgumentException.class, () -> new DeviceTree.Device(0x1000, 0x1000, 27, false));
    }

    /** dtc (device-tree-compiler), where installed, reads the blob without a warning about its structure. */
    @Test
    void dtcReadsIt(@TempDir Path dir) throws Exception {
        boolean dtc;
        try {
            dtc = new ProcessBuilder("dtc", "--version").redirectErrorStream(true).start().waitFor() == 0;
        } catch (java.io.IOException e) {
            dtc = false;
        }
        Assumptions.assumeTrue(dtc, "dtc is not installed (apt-get install device-tree-compiler)");
        Path blob = dir.resolve("t.dtb");
        Files.write(blob, DeviceTree.build(machine(2, true)));
        Process p = new ProcessBuilder("dtc", "-I", "dtb", "-O", "dts", blob.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("compatible = \"virtio,mmio\";"), out);
        assertTrue(out.contains("bootargs = \"console=ttyS0 jkrun.test.status=7\";"), out);
    }
}
