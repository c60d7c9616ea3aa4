package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.jkrun.devices.block.ImageFormat;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Devices as data: the attach order, and a new device type joining without a new VmConfig component. */
class VmConfigDevicesTest {
    @TempDir
    Path tmp;

    /** A device type the VMM does not know: configuration takes it, building names it. */
    record Gadget(String name) implements DeviceConfig {}

    @Test
    void rootShareFirstThenSharesDisksAndOtherDevicesInOrder() throws Exception {
        Path disk = Files.write(tmp.resolve("d.img"), new byte[1 << 20]);
        FsShare data = new FsShare("data", Files.createDirectories(tmp.resolve("data")), false);
        FsShare root = new FsShare(FsShare.ROOT_TAG, Files.createDirectories(tmp.resolve("root")), false);
        DiskConfig d = DiskConfig.of("vol", disk, false, ImageFormat.RAW);
        VmConfig c = new VmConfig(MachineConfig.of(1, 64), KernelConfig.elf(disk, ""), new ConsoleConfig.None(),
                List.of(data, root), List.of(d), java.util.Optional.empty(), false)
                .withDevice(new Gadget("a")).withDevice(new Gadget("b"));
        assertEquals(List.of(root, data, d, new Gadget("a"), new Gadget("b")), c.attachOrder());
        assertEquals(List.of(new Gadget("a"), new Gadget("b")), c.withConsole(new ConsoleConfig.None()).devices());
    }

    @Test
    void sharesAndDisksStayInTheirOwnLists() throws Exception {
        Path disk = Files.write(tmp.resolve("d.img"), new byte[1 << 20]);
        VmConfig c = new VmConfig(MachineConfig.of(1, 64), KernelConfig.elf(disk, ""), new ConsoleConfig.None(), false);
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> c.withDevice(DiskConfig.of("vol", disk, false, ImageFormat.RAW)));
        assertEquals("devices", e.field());
    }
}
