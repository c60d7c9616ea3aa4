package dev.jkrun.libc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@link Poll#writeFully} to a reader that never reads: it waits without spinning and leaves when told to stop. */
class PollTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void writeToAStalledReaderWaitsQuietlyAndStops(boolean nonBlocking) throws Exception {
        Path fifo = dir.resolve("fifo");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        // O_RDWR: the open does not wait for a reader, and this descriptor is the only (never reading) one.
        try (FileDescriptor fd = FileDescriptor.open(fifo.toString(),
                FileDescriptor.O_RDWR | (nonBlocking ? FileDescriptor.O_NONBLOCK : 0))) {
            byte[] data = new byte[256 << 10]; // four times what a pipe holds
            AtomicBoolean stop = new AtomicBoolean();
            AtomicInteger written = new AtomicInteger(-1);
            Thread w = new Thread(() -> written.set(Poll.writeFully(fd.raw(), data, 0, data.length, stop::get)), "poll-test-writer");
            w.start();
            Thread.sleep(300);
            assertTrue(w.isAlive(), "waiting for room");
            ThreadMXBean mx = ManagementFactory.getThreadMXBean();
            long cpu0 = mx.getThreadCpuTime(w.getId());
            Thread.sleep(500);
            long cpuMs = (mx.getThreadCpuTime(w.getId()) - cpu0) / 1_000_000;
            assertTrue(cpuMs < 100, "the writer burnt " + cpuMs + " ms of CPU in 500 ms");
            stop.set(true);
            w.join(2000);
            assertFalse(w.isAlive(), "the writer did not stop");
            assertTrue(written.get() > 0 && written.get() < data.length, "written " + written.get());
        }
    }
}
