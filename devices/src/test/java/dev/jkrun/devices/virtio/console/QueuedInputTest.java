package dev.jkrun.devices.virtio.console;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.devices.runtime.EventLoop;
import dev.jkrun.devices.virtio.DeviceThreads;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class QueuedInputTest {
    @Test
    void deliversPostedBytesInOrderAndTellsTheLoop() throws Exception {
        QueuedInput in = new QueuedInput();
        in.post("power".getBytes(StandardCharsets.US_ASCII));
        in.post("off\n".getBytes(StandardCharsets.US_ASCII));
        byte[] b = new byte[3];
        StringBuilder got = new StringBuilder();
        while (got.length() < 9) {
            int n = in.read(b, 0, b.length);
            got.append(new String(b, 0, n, StandardCharsets.US_ASCII));
        }
        assertEquals("poweroff\n", got.toString());
        assertEquals(0, in.read(b, 0, b.length), "nothing now: never blocks");
        DeviceThreads threads = new DeviceThreads("queued-input-test");
        try (EventLoop loop = new EventLoop("queued-input-test")) {
            CountDownLatch told = new CountDownLatch(1);
            in.start(loop, threads, "unused", told::countDown);
            loop.start(threads);
            in.post(new byte[] {1});
            assertTrue(told.await(5, TimeUnit.SECONDS));
            assertEquals(1, in.read(b, 0, b.length));
            in.stop();
        }
    }
}
