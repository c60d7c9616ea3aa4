package dev.jkrun.vmm.builder;

import dev.jkrun.devices.fs.dax.DaxWindow;
import dev.jkrun.devices.fs.dax.HostDaxWindow;
import dev.jkrun.hypervisor.Hypervisor;
import dev.jkrun.libc.AnonymousMapping;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.vmm.ConfigurationException;
import dev.jkrun.vmm.FsShare;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The DAX windows of the shares that ask for one (krun_add_virtiofs2/3's shm_size, {@code FsBuilder.shmSize}): host
 * memory reserved without backing (MAP_NORESERVE: only what the guest touches or maps costs anything), a KVM memory
 * slot each, one after another above RAM on 1 GiB boundaries. Sizes are rounded up to 2 MiB, the granule Linux maps
 * a DAX window in (fs/fuse/dax.c FUSE_DAX_SZ).
 *
 * <p>A guest can split its window into one host mapping (VMA) per granule, and every VM of the JVM shares the
 * process's {@code vm.max_map_count}: past it thread creation and allocations fail for all of them. So the windows
 * of all VMs alive in the JVM together hold at most a quarter of that count in granules ({@link #budgetGranules()};
 * 32 GiB at the default 65530), and a window beyond it is a configuration error naming {@code fs.shm_size}.
 */
final class DaxWindows {
    static final long GRANULE = 2L << 20;

    private static final java.util.concurrent.atomic.AtomicLong RESERVED_GRANULES = new java.util.concurrent.atomic.AtomicLong();

    private DaxWindows() {}

    /** Granules all live windows of this JVM may hold together. */
    static long budgetGranules() {
        long maxMapCount = 65530;
        try {
            // readAllLines, not readString: procfs reports a size that makes readString stop after one byte
            maxMapCount = Long.parseLong(java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/sys/vm/max_map_count")).get(0).trim());
        } catch (java.io.IOException | RuntimeException e) {
            // the kernel's default
        }
        return Math.max(0, maxMapCount / 4);
    }

    /** Granules the live windows of this JVM hold. */
    static long reservedGranules() { return RESERVED_GRANULES.get(); }

    /** Windows by share tag; each is added to {@code resources} (closed with the VM). */
    static Map<String, DaxWindow> create(List<FsShare> shares, Hypervisor.Vm vm, int firstSlot,
                                         Platform.SharedMemorySpace space, List<AutoCloseable> resources) {
        Map<String, DaxWindow> windows = new HashMap<>();
        long at = space.start();
        int slot = firstSlot;
        for (FsShare s : shares) {
            if (s.shmSizeBytes() == 0) {
                continue;
            }
            long size = roundUp(s.shmSizeBytes());
            if (size < 0 || size > space.limit() - at) {
                throw new ConfigurationException("fs.shm_size", "share '" + s.tag() + "': a DAX window of "
                        + s.shmSizeBytes() + " bytes does not fit below " + (space.limit() >> 30) + " GiB of guest-physical space");
            }
            long granules = size / GRANULE;
            long budget = budgetGranules();
            if (RESERVED_GRANULES.addAndGet(granules) > budget) {
                RESERVED_GRANULES.addAndGet(-granules);
                throw new ConfigurationException("fs.shm_size", "share '" + s.tag() + "': a DAX window of " + (size >> 20)
                        + " MiB would take the DAX windows of this JVM's VMs past " + (budget * GRANULE >> 30)
                        + " GiB (a quarter of vm.max_map_count in 2 MiB granules)");
            }
            HostDaxWindow w;
            try {
                w = new HostDaxWindow(AnonymousMapping.map(size), at);
            } catch (RuntimeException e) {
                RESERVED_GRANULES.addAndGet(-granules);
                throw e;
            }
            boolean[] closed = {false};
            resources.add(() -> {
                synchronized (closed) {
                    if (!closed[0]) {
                        closed[0] = true;
                        w.close();
                        RESERVED_GRANULES.addAndGet(-granules);
                    }
                }
            });
            vm.mapMemory(slot++, GuestAddress.of(at), w.mapping());
            windows.put(s.tag(), w);
            at = (at + size + space.alignment() - 1) & -space.alignment();
        }
        return windows;
    }

    static long roundUp(long bytes) { return bytes > Long.MAX_VALUE - GRANULE ? -1 : (bytes + GRANULE - 1) & -GRANULE; }
}
