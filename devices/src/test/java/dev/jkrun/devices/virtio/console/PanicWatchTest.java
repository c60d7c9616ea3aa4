package dev.jkrun.devices.virtio.console;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class PanicWatchTest {
    private static byte[] bytes(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    @Test
    void findsThePanicLineAcrossWritesAndPassesEverythingThrough() throws Exception {
        ByteArrayOutputStream sink = new ByteArrayOutputStream();
        PanicWatch w = new PanicWatch(PortOutput.of(sink));
        String text = "[    0.1] booting\r\n[    2.5] Kernel panic - not sync" + "ing: Attempted to kill init! exitcode=0x00000100\r\nafter\n";
        byte[] b = bytes(text);
        w.write(b, 0, 30);
        w.write(b, 30, b.length - 30);
        assertEquals(Optional.of("Attempted to kill init! exitcode=0x00000100"), w.panic());
        assertArrayEquals(b, sink.toByteArray());
    }

    @Test
    void keepsTheFirstPanicAndIgnoresOrdinaryLines() throws Exception {
        PanicWatch w = new PanicWatch(PortOutput.discard());
        byte[] b = bytes("Kernel panic? no\nKernel panic - not syncing: first\nKernel panic - not syncing: second\n");
        w.write(b, 0, b.length);
        assertEquals(Optional.of("first"), w.panic());
        PanicWatch none = new PanicWatch(PortOutput.discard());
        byte[] n = bytes("x".repeat(5000) + "\nhello\n");
        none.write(n, 0, n.length);
        assertEquals(Optional.empty(), none.panic());
    }
}
