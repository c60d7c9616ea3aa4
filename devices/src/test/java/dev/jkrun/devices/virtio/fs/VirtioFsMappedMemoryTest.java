package dev.jkrun.devices.virtio.fs;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.memory.MemoryRegion;
import dev.jkrun.memory.MmapGuestMemory;
import java.util.List;

/** {@link VirtioFsTest} on mapped guest memory, as a VM has it: READ and WRITE data move with preadv/pwritev. */
class VirtioFsMappedMemoryTest extends VirtioFsTest {
    @Override
    GuestMemory newMemory() { return MmapGuestMemory.create(List.of(new MemoryRegion(GuestAddress.ZERO, 8 << 20))); }
}
