package dev.jkrun.vmm.builder;

import dev.jkrun.arch.x86_64.Layout;
import dev.jkrun.devices.fs.dax.DaxWindow;
import dev.jkrun.devices.fs.dax.HostDaxWindow;
import dev.jkrun.kvm.Vm;
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
 */
final class DaxWindows {
    static final long GRANULE = 2L << 20;

    private DaxWindows() {}

    /** Windows by share tag; each is added to {@code resources} (closed with the VM). */
    static Map<String, DaxWindow> create(List<FsShare> shares, Vm vm, int firstSlot, long ramEnd,
                                         List<AutoCloseable> resources) {
        Map<String, DaxWindow> windows = new HashMap<>();
        long at = Layout.sharedMemoryStart(ramEnd);
        int slot = firstSlot;
        for (FsShare s : shares) {
            if (s.shmSizeBytes() == 0) {
                continue;
            }
            long size = roundUp(s.shmSizeBytes());
            if (size < 0 || size > Layout.SHM_LIMIT - at) {
                throw new ConfigurationException("fs.shm_size", "share '" + s.tag() + "': a DAX window of "
                        + s.shmSizeBytes() + " bytes does not fit below " + (Layout.SHM_LIMIT >> 30) + " GiB of guest-physical space");
            }
            HostDaxWindow w = new HostDaxWindow(AnonymousMapping.map(size), at);
            resources.add(w);
            vm.setUserMemoryRegion(slot++, GuestAddress.of(at), w.mapping());
            windows.put(s.tag(), w);
            at = (at + size + Layout.SHM_ALIGNMENT - 1) & -Layout.SHM_ALIGNMENT;
        }
        return windows;
    }

    static long roundUp(long bytes) { return bytes > Long.MAX_VALUE - GRANULE ? -1 : (bytes + GRANULE - 1) & -GRANULE; }
}
