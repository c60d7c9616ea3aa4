package dev.jkrun.vmm.builder;

import static org.junit.jupiter.api.Assertions.*;

import dev.jkrun.devices.fs.dax.DaxWindow;
import dev.jkrun.kvm.Kvm;
import dev.jkrun.kvm.Vm;
import dev.jkrun.vmm.ConfigurationException;
import dev.jkrun.vmm.FsShare;
import dev.jkrun.kvm.testing.KvmAvailable;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Where DAX windows go in guest-physical memory, on a real KVM VM (each is a memory slot). */
class DaxWindowsTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void kvm() { KvmAvailable.assumeKvm(); }

    private FsShare share(String tag, long shm) {
        return new FsShare(tag, Optional.of(dir), Optional.empty(), false, shm);
    }

    @Test
    void windowsSitAboveRamAndFourGibOnGibBoundariesRoundedToTwoMib() throws Exception {
        List<AutoCloseable> resources = new ArrayList<>();
        long before = DaxWindows.reservedGranules();
        try (Kvm kvm = Kvm.open(); Vm vm = kvm.createVm()) {
            Map<String, DaxWindow> w = DaxWindows.create(List.of(share("a", 3 << 20), share("none", 0),
                    share("b", 1L << 30)), vm, 1, X86_64Platform.sharedMemorySpace(512L << 20), resources);
            assertEquals(2, w.size(), "a share without shm_size has no window");
            assertEquals(1L << 32, w.get("a").guestAddress());
            assertEquals(4L << 20, w.get("a").size(), "3 MiB rounds up to the 2 MiB granule");
            assertEquals(5L << 30, w.get("b").guestAddress());
            assertEquals(1L << 30, w.get("b").size());
            Map<String, DaxWindow> high = DaxWindows.create(List.of(share("c", 2 << 20)), vm, 3, X86_64Platform.sharedMemorySpace((6L << 30) + 1), resources);
            assertEquals(7L << 30, high.get("c").guestAddress(), "above RAM that ends past 4 GiB");
            ConfigurationException e = assertThrows(ConfigurationException.class,
                    () -> DaxWindows.create(List.of(share("huge", 1L << 40)), vm, 4, X86_64Platform.sharedMemorySpace(1L << 30), resources));
            assertTrue(e.getMessage().contains("fs.shm_size"), e.getMessage());
            long budget = DaxWindows.budgetGranules() * DaxWindows.GRANULE;
            ConfigurationException over = assertThrows(ConfigurationException.class,
                    () -> DaxWindows.create(List.of(share("over", budget)), vm, 5, X86_64Platform.sharedMemorySpace(1L << 30), resources));
            assertTrue(over.getMessage().contains("max_map_count"), over.getMessage());
            assertEquals(before + 2 + 512 + 1, DaxWindows.reservedGranules(), "the refused window holds nothing");
        } finally {
            for (AutoCloseable r : resources) {
                r.close();
            }
        }
        assertEquals(before, DaxWindows.reservedGranules(), "closing the windows gives their granules back");
    }
}
