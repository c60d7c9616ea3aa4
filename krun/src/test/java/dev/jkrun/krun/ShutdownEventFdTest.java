package dev.jkrun.krun;

import static dev.jkrun.krun.KrunConstants.ENOENT;
import static dev.jkrun.krun.KrunConstants.KRUN_KERNEL_FORMAT_ELF;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.guests.TestGuests;
import dev.jkrun.kvm.testing.KvmAvailable;
import dev.jkrun.vmm.StopReason;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** krun_get_shutdown_eventfd: a real eventfd, owned by its context, that stops a running VM when written. */
class ShutdownEventFdTest {
    private final JkrunLibKrun krun = new JkrunLibKrun();

    @Test
    void itIsAReadableAndWritableEventfd() throws Exception {
        int ctx = krun.krun_create_ctx();
        int fd = krun.krun_get_shutdown_eventfd(ctx);
        assertTrue(fd >= 0, "fd " + fd);
        Path link = Path.of("/proc/self/fd/" + fd);
        assertEquals("anon_inode:[eventfd]", Files.readSymbolicLink(link).toString());
        assertEquals(8, TestLibC.writeU64(fd, 3));
        assertEquals(8, TestLibC.writeU64(fd, 4));
        assertEquals(7, TestLibC.readU64(fd), "an eventfd adds what is written and read clears it");
        assertEquals(fd, krun.krun_get_shutdown_eventfd(ctx), "one per context");
        assertEquals(0, krun.krun_free_ctx(ctx));
        assertFalse(Files.exists(link, java.nio.file.LinkOption.NOFOLLOW_LINKS)
                && Files.readSymbolicLink(link).toString().equals("anon_inode:[eventfd]"), "krun_free_ctx closes it");
    }

    @Test
    void anUnknownContextGetsENOENT() {
        assertEquals(-ENOENT, krun.krun_get_shutdown_eventfd(424242));
        int ctx = krun.krun_create_ctx();
        assertEquals(0, krun.krun_free_ctx(ctx));
        assertEquals(-ENOENT, krun.krun_get_shutdown_eventfd(ctx), "a freed context");
    }

    @Test
    void writingItStopsTheRunningVm() throws Exception {
        KvmAvailable.assumeKvm();
        int ctx = krun.krun_create_ctx();
        assertEquals(0, krun.krun_set_vm_config(ctx, 1, 64));
        assertEquals(0, krun.krun_set_kernel(ctx, TestGuests.path("spin").toString(), KRUN_KERNEL_FORMAT_ELF, null, null));
        int fd = krun.krun_get_shutdown_eventfd(ctx);
        assertTrue(fd >= 0);
        Thread writer = new Thread(() -> {
            try {
                Thread.sleep(500);
            } catch (InterruptedException e) {
                return;
            }
            TestLibC.writeU64(fd, 1);
        });
        writer.start();
        AtomicReference<StopReason> exited = new AtomicReference<>();
        long t0 = System.nanoTime();
        assertEquals(0, krun.startEnter(ctx, exited::set));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        writer.join();
        assertEquals(StopReason.Kind.KILLED, exited.get().kind(), exited.get().toString());
        assertEquals(137, exited.get().processExitStatus());
        assertTrue(ms < JkrunLibKrun.SHUTDOWN_GRACE.toMillis() + 20_000, "took " + ms + " ms");
    }
}
