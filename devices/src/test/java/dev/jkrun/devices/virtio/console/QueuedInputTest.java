package dev.jkrun.devices.virtio.console;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class QueuedInputTest {
    @Test
    void deliversPostedBytesInOrderAndWakesUp() throws Exception {
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
        Thread t = new Thread(() -> {
            try {
                Thread.sleep(50);
            } catch (InterruptedException ignored) {
                // fine
            }
            in.wakeup();
        });
        t.start();
        assertEquals(0, in.read(b, 0, b.length)); // blocked until the wake-up
        t.join();
    }
}
