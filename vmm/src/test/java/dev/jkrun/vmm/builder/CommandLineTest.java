package dev.jkrun.vmm.builder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.vmm.builder.MmioPlacement;
import dev.jkrun.loader.KernelPayload;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.vmm.ConfigurationException;
import dev.jkrun.vmm.KernelConfig;
import dev.jkrun.vmm.VmBuilder;
import dev.jkrun.vmm.VmConfig;
import java.util.List;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;

/**
 * The kernel command line: libkrunfw's TSI switches follow the vsock device's scope; the device words stay within
 * what the kernel takes (2047 bytes for libkrunfw's x86 kernel), and beyond it the error names the devices.
 */
class CommandLineTest {
    private static List<String> words(VmConfig c) {
        return List.of(VmmBuilder.commandLine(c, true, List.of("virtio_mmio.device=4K@0xd0000000:5")).split(" "));
    }

    @Test
    void tsiHijackFollowsTheScope() {
        List<String> inet = words(VmBuilder.create().build());
        assertTrue(inet.contains("tsi_hijack") && !inet.contains("tsi_hijack_unix"), inet.toString());
        assertTrue(inet.indexOf("tsi_hijack") > inet.indexOf("virtio_mmio.device=4K@0xd0000000:5"), "after the devices");
        List<String> both = words(VmBuilder.create().network(n -> n.unixSockets(true)).build());
        assertTrue(both.contains("tsi_hijack") && both.contains("tsi_hijack_unix"), both.toString());
        List<String> none = words(VmBuilder.create().network(n -> n.none()).build());
        assertFalse(none.stream().anyMatch(w -> w.startsWith("tsi_hijack")), none.toString());
    }

    @Test
    void deviceWords() {
        List<MmioPlacement.Slot> slots = MmioPlacement.place(X86_64Platform.DEVICES, 64);
        assertEquals("virtio_mmio.device=4K@0xd0000000:5", X86_64Platform.word(slots.get(0)));
        assertEquals("virtio_mmio.device=4K@0xd0001000:6", X86_64Platform.word(slots.get(1)));
        assertEquals("virtio_mmio.device=4K@0xd0013000:5", X86_64Platform.word(slots.get(19)));
        assertEquals("virtio_mmio.device=4K@0xd003f000:11", X86_64Platform.word(slots.get(63)));
    }

    /** A kernel that says how long a command line it takes. */
    private record Kernel(int limit) implements KernelPayload {
        @Override public long loadAddress() { return 0x1000000; }
        @Override public long end() { return 0x2000000; }
        @Override public long entry() { return 0x1000000; }
        @Override public void writeInto(GuestMemory mem) { }
        @Override public String description() { return "a test kernel"; }
        @Override public OptionalInt commandLineLimit() { return OptionalInt.of(limit); }
    }

    private static List<String> deviceWords(int n) {
        return MmioPlacement.place(X86_64Platform.DEVICES, n).stream().map(X86_64Platform::word).toList();
    }

    /**
     * The libkrunfw defaults with a command to run (init=, tsi_hijack): the tier-3 VM of 40 disks, 8 shares, the
     * root and the console fits in 2047 bytes; 64 devices do not, and the error names the devices and how many fit.
     */
    @Test
    void libkrunfwTakesFiftyDevicesNotSixtyFour() {
        VmConfig c = VmBuilder.create().build();
        Kernel krunfw = new Kernel(2047);
        List<String> fifty = deviceWords(50);
        String line = VmmBuilder.commandLine(c, true, fifty);
        assertTrue(line.length() <= 2047, line.length() + ": " + line);
        VmmBuilder.checkCommandLine(line, krunfw, fifty);

        List<String> all = deviceWords(64);
        String longLine = VmmBuilder.commandLine(c, true, all);
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> VmmBuilder.checkCommandLine(longLine, krunfw, all));
        assertEquals("devices", e.field());
        assertTrue(e.getMessage().contains("64 virtio devices") && e.getMessage().contains("at most 2047"), e.getMessage());
        int fit = Integer.parseInt(e.getMessage().replaceAll(".*: (\\d+) devices fit$", "$1"));
        assertTrue(fit >= 50 && fit < 64, e.getMessage());
        String fitting = VmmBuilder.commandLine(c, true, all.subList(0, fit));
        assertTrue(fitting.length() <= 2047 && fitting.length() + 1 + all.get(fit).length() > 2047, e.getMessage());
    }

    @Test
    void aLongCommandLineOfItsOwnNamesTheCommandLine() {
        VmConfig c = VmBuilder.create().kernel(k -> k.cmdline("x=" + "y".repeat(3000))).build();
        String line = VmmBuilder.commandLine(c, true, deviceWords(2));
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> VmmBuilder.checkCommandLine(line, new Kernel(2047), deviceWords(2)));
        assertEquals("kernel.cmdline", e.field());
    }

    /** A kernel that does not say (an ELF test guest) keeps the 64 KiB bound the boot structures have room for. */
    @Test
    void aKernelWithoutALimitTakesSixtyFourDevices() {
        KernelPayload unknown = new KernelPayload() {
            @Override public long loadAddress() { return 0x100000; }
            @Override public long end() { return 0x200000; }
            @Override public long entry() { return 0x100000; }
            @Override public void writeInto(GuestMemory mem) { }
            @Override public String description() { return "an ELF"; }
        };
        List<String> all = deviceWords(64);
        VmmBuilder.checkCommandLine(VmmBuilder.commandLine(VmBuilder.create().build(), false, all), unknown, all);
    }

    @Test
    void sixtyFiveDevicesAreRefusedByName() {
        ConfigurationException e = assertThrows(ConfigurationException.class, () -> MmioDeviceManager.placement(X86_64Platform.DEVICES, 65));
        assertEquals("devices", e.field());
        assertTrue(e.getMessage().contains("at most 64"), e.getMessage());
        assertEquals(64, MmioDeviceManager.placement(X86_64Platform.DEVICES, 64).size());
    }
}
