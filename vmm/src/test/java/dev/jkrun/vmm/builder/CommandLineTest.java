package dev.jkrun.vmm.builder;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.vmm.VmBuilder;
import dev.jkrun.vmm.VmConfig;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The kernel command line: libkrunfw's TSI switches follow the vsock device's scope. */
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
}
