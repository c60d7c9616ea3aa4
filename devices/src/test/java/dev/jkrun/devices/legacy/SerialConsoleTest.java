package dev.jkrun.devices.legacy;

import static dev.jkrun.devices.legacy.Uart16550.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.devices.virtio.console.PortInput;
import dev.jkrun.devices.virtio.console.PortOutput;
import java.io.ByteArrayOutputStream;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/**
 * The UART's host side on its event loop: guest output reaches the host (and what is left at the stop is handed over
 * then), host input enters only as the receive FIFO has room and comes out in order as the guest reads.
 */
class SerialConsoleTest {
    private static void await(BooleanSupplier cond, String what) throws InterruptedException {
        long until = System.nanoTime() + 10_000_000_000L;
        while (!cond.getAsBoolean()) {
            assertTrue(System.nanoTime() < until, "waited for " + what);
            Thread.sleep(2);
        }
    }

    private static String text(ByteArrayOutputStream b) {
        synchronized (b) {
            return b.toString(StandardCharsets.ISO_8859_1);
        }
    }

    @Test
    void outputAndInputFlowThroughTheLoop() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PipedOutputStream host = new PipedOutputStream();
        PipedInputStream in = new PipedInputStream(host, 64);
        SerialConsole console = new SerialConsole("ttyS-test", PortInput.of(in), PortOutput.of(out), () -> { });
        Uart16550 u = console.uart();
        try {
            console.start();
            for (byte b : "hello".getBytes(StandardCharsets.US_ASCII)) {
                u.write(THR, new byte[] {b});
            }
            await(() -> text(out).equals("hello"), "the guest's output on the host");

            u.write(FCR, new byte[] {FCR_ENABLE});
            byte[] sent = new byte[40];
            for (int i = 0; i < sent.length; i++) {
                sent[i] = (byte) ('A' + i);
            }
            host.write(sent);
            host.flush();
            StringBuilder got = new StringBuilder();
            while (got.length() < sent.length) {
                await(() -> u.rxRoom() < FIFO_SIZE, "host input in the FIFO");
                assertTrue(u.rxRoom() >= 0, "never more than the FIFO holds");
                byte[] b = {0};
                u.read(LSR, b);
                while ((b[0] & LSR_DR) != 0) {
                    u.read(RBR, b);
                    got.append((char) b[0]);
                    u.read(LSR, b);
                }
            }
            assertEquals(new String(sent, StandardCharsets.ISO_8859_1), got.toString());

            for (byte b : "bye\n".getBytes(StandardCharsets.US_ASCII)) {
                u.write(THR, new byte[] {b});
            }
        } finally {
            console.close();
        }
        assertEquals("hellobye\n", text(out), "the last output is handed over at the stop");
        assertEquals(java.util.List.of(), console.liveThreads(), "the loop and the input's reader ended");
    }
}
