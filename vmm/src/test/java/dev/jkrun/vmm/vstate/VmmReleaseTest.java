package dev.jkrun.vmm.vstate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.devices.bus.Bus;
import dev.jkrun.libc.AnonymousMapping;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.MemoryRegion;
import dev.jkrun.memory.MmapGuestMemory;
import dev.jkrun.vmm.StopReason;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Guest memory is unmapped at a VM's stop only when nothing can touch it any more: a device thread that outlives
 * the stop (it ignored the request and the join gave up) keeps the mapping alive until it ends. No vCPUs and no
 * KVM are needed for this: the Vmm is built around the memory alone.
 */
class VmmReleaseTest {
    private static final long RAM = 1 << 20;

    private static MmapGuestMemory ram() {
        return MmapGuestMemory.create(List.of(new MemoryRegion(GuestAddress.of(0), RAM)));
    }

    private static Vmm vmm(MmapGuestMemory mem) {
        return new Vmm("jkrun-vmtest", mem, List.of(), new Bus(), new Bus(), List.of(), new DebugLog(null));
    }

    @Test
    void memoryStaysMappedWhileADeviceThreadOutlivesTheStop() throws Exception {
        long before = AnonymousMapping.mappedBytes();
        MmapGuestMemory mem = ram();
        // A buffer in flight, as a block request's view of guest memory would be.
        ByteBuffer inFlight = mem.view(GuestAddress.of(0x1000), 4096);
        CountDownLatch release = new CountDownLatch(1);
        Thread straggler = new Thread(() -> {
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            inFlight.put(0, (byte) 0x5A); // the copy it was doing when the VM stopped
        }, "virtio-test-straggler");
        straggler.setDaemon(true);
        straggler.start();
        Vmm vmm = vmm(mem);
        vmm.setDeviceThreads(() -> straggler.isAlive() ? List.of(straggler) : List.of());
        vmm.start();
        vmm.guestStopped(StopReason.of(StopReason.Kind.KILLED, "test"));
        assertEquals(StopReason.Kind.KILLED, vmm.stopped().get(10, TimeUnit.SECONDS).kind());
        assertEquals(before + RAM, AnonymousMapping.mappedBytes(), "guest memory unmapped while a device thread still runs");
        assertThrows(IllegalStateException.class, () -> mem.readByte(GuestAddress.of(0)), "new accesses are refused");
        release.countDown();
        straggler.join(5000);
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (AnonymousMapping.mappedBytes() != before && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertEquals(before, AnonymousMapping.mappedBytes(), "unmapped once the straggler ended");
    }

    @Test
    void memoryIsUnmappedAtANormalStop() throws Exception {
        long before = AnonymousMapping.mappedBytes();
        MmapGuestMemory mem = ram();
        Vmm vmm = vmm(mem);
        vmm.start();
        vmm.guestStopped(StopReason.of(StopReason.Kind.KILLED, "test"));
        vmm.stopped().get(10, TimeUnit.SECONDS);
        assertEquals(before, AnonymousMapping.mappedBytes());
        assertThrows(IllegalStateException.class, () -> mem.readByte(GuestAddress.of(0)));
    }
}
