package dev.jkrun.devices.virtio.console;

import dev.jkrun.devices.testing.CountingTrigger;
import dev.jkrun.devices.testing.DriverQueue;
import dev.jkrun.devices.testing.MockDriver;
import dev.jkrun.devices.virtio.MmioTransport;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.memory.HeapGuestMemory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class VirtioConsoleTest {
    static final long TIMEOUT = 5000;
    final HeapGuestMemory mem = HeapGuestMemory.of(0, 8 << 20);
    final CountingTrigger irq = new CountingTrigger();
    final List<AutoCloseable> toClose = new ArrayList<>();

    @AfterEach
    void tearDown() throws Exception {
        for (AutoCloseable c : toClose) {
            c.close();
        }
        assertTrue(CountingTrigger.await(() -> Thread.getAllStackTraces().keySet().stream()
                .noneMatch(t -> t.getName().startsWith("virtio-console-")), TIMEOUT), "console threads left running");
    }

    private MockDriver driver(VirtioConsole c) {
        MmioTransport t = new MmioTransport(c, mem, irq);
        toClose.add(t);
        return new MockDriver(t, mem);
    }

    private static byte[] bytes(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    @Test
    void configSpace() {
        VirtioConsole c = new VirtioConsole(List.of(ConsolePort.console(PortInput.empty(), PortOutput.discard()),
                ConsolePort.named("x", PortInput.empty(), PortOutput.discard())), 80, 25);
        MockDriver d = driver(c);
        ByteBuffer cfg = ByteBuffer.wrap(d.readConfig(0, 12)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(80, cfg.getShort());
        assertEquals(25, cfg.getShort());
        assertEquals(2, cfg.getInt());
        assertEquals(0, cfg.getInt());
        assertEquals(3, d.read(MmioTransport.DEVICE_ID));
        assertEquals(6, d.transport().queues().size());
        assertEquals(32, d.read(MmioTransport.QUEUE_NUM_MAX));
    }

    @Test
    void txRoundTrip() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        MockDriver d = driver(Consoles.streams(new java.io.ByteArrayInputStream(new byte[0]), out));
        d.init(1L << VirtioConsole.VIRTIO_CONSOLE_F_SIZE);
        DriverQueue tx = d.queue(1);
        int h = tx.add(List.of(bytes("hello "), bytes("world")));
        tx.kick();
        assertEquals(new DriverQueue.Used(h, 0), tx.awaitUsed(TIMEOUT));
        assertTrue(CountingTrigger.await(() -> out.toString().equals("hello world"), TIMEOUT), out.toString());
        assertTrue(irq.count() >= 1);
    }

    @Test
    void drainOutputTakesWhatTheDriverQueuedWithoutAKick() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        VirtioConsole c = Consoles.streams(new java.io.ByteArrayInputStream(new byte[0]), out);
        assertTrue(c.drainOutput(TIMEOUT), "an inactive device has nothing to drain");
        MockDriver d = driver(c);
        d.init(1L << VirtioConsole.VIRTIO_CONSOLE_F_SIZE);
        DriverQueue tx = d.queue(1);
        tx.add(List.of(bytes("Kernel panic - not syncing: x\n"))); // queued, then the vCPU resets: no kick
        assertTrue(c.drainOutput(TIMEOUT));
        assertEquals("Kernel panic - not syncing: x\n", out.toString());
    }

    @Test
    void rxRoundTripWithEventIdx() throws Exception {
        PipedOutputStream host = new PipedOutputStream();
        PipedInputStream in = new PipedInputStream(host);
        MockDriver d = driver(Consoles.streams(in, new ByteArrayOutputStream()));
        long acked = d.init(1L << Queue.VIRTIO_RING_F_EVENT_IDX);
        assertNotEquals(0, acked & (1L << Queue.VIRTIO_RING_F_EVENT_IDX));
        DriverQueue rx = d.queue(0);
        host.write(bytes("abc"));
        host.flush();
        Thread.sleep(50); // the device holds the bytes until the driver adds a buffer
        int h = rx.addWritable(64);
        rx.kick();
        DriverQueue.Used u = rx.awaitUsed(TIMEOUT);
        assertEquals(h, u.id());
        assertEquals(3, u.len());
        assertArrayEquals(bytes("abc"), rx.written(h, 3));
        assertTrue(CountingTrigger.await(() -> irq.count() >= 1, TIMEOUT));
        assertEquals(MmioTransport.INT_VRING, d.interruptStatus() & MmioTransport.INT_VRING);
        // Input larger than one buffer spreads over several.
        int h1 = rx.addWritable(4), h2 = rx.addWritable(4);
        rx.kick();
        host.write(bytes("12345678"));
        host.flush();
        assertEquals(new DriverQueue.Used(h1, 4), rx.awaitUsed(TIMEOUT));
        assertEquals(new DriverQueue.Used(h2, 4), rx.awaitUsed(TIMEOUT));
        assertArrayEquals(bytes("5678"), rx.written(h2, 4));
    }

    @Test
    void malformedTxChainIsReturnedAndDeviceGoesOn() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        MockDriver d = driver(Consoles.streams(new java.io.ByteArrayInputStream(new byte[0]), out));
        d.init(0);
        DriverQueue tx = d.queue(1);
        // A loop.
        int a = tx.takeDescriptor(), b = tx.takeDescriptor();
        long buf = tx.alloc(4);
        tx.writeDescriptor(a, buf, 4, Queue.VRING_DESC_F_NEXT, b);
        tx.writeDescriptor(b, buf, 4, Queue.VRING_DESC_F_NEXT, a);
        tx.publish(a);
        // A buffer outside RAM.
        int c = tx.takeDescriptor();
        tx.writeDescriptor(c, 16L << 20, 4, 0, 0);
        tx.publish(c);
        // Readable after writable.
        int e = tx.takeDescriptor(), f = tx.takeDescriptor();
        tx.writeDescriptor(e, tx.alloc(4), 4, Queue.VRING_DESC_F_WRITE | Queue.VRING_DESC_F_NEXT, f);
        tx.writeDescriptor(f, tx.alloc(4), 4, 0, 0);
        tx.publish(e);
        int good = tx.addReadable(bytes("ok"));
        tx.kick();
        assertEquals(new DriverQueue.Used(a, 0), tx.awaitUsed(TIMEOUT));
        assertEquals(new DriverQueue.Used(c, 0), tx.awaitUsed(TIMEOUT));
        assertEquals(new DriverQueue.Used(e, 0), tx.awaitUsed(TIMEOUT));
        assertEquals(new DriverQueue.Used(good, 0), tx.awaitUsed(TIMEOUT));
        assertTrue(CountingTrigger.await(() -> out.toString().equals("ok"), TIMEOUT));
        assertEquals(0, d.status() & MmioTransport.STATUS_DEVICE_NEEDS_RESET);
    }

    @Test
    void availIndexJumpNeedsResetThenWorksAgain() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        MockDriver d = driver(Consoles.streams(new java.io.ByteArrayInputStream(new byte[0]), out));
        d.init(0);
        DriverQueue tx = d.queue(1);
        tx.setAvailIdx(33);
        tx.kick();
        assertTrue(CountingTrigger.await(() -> (d.status() & MmioTransport.STATUS_DEVICE_NEEDS_RESET) != 0, TIMEOUT));
        d.setStatus(0);
        d.init(0);
        tx = d.queue(1);
        int h = tx.addReadable(bytes("again"));
        tx.kick();
        assertEquals(new DriverQueue.Used(h, 0), tx.awaitUsed(TIMEOUT));
        assertTrue(CountingTrigger.await(() -> out.toString().equals("again"), TIMEOUT));
    }

    private static int[] ctrl(DriverQueue q, int head) {
        ByteBuffer b = ByteBuffer.wrap(q.written(head, 8)).order(ByteOrder.LITTLE_ENDIAN);
        return new int[] {b.getInt(), b.getShort(), b.getShort()};
    }

    private static byte[] ctrlMsg(int id, int event, int value) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(id).putShort((short) event).putShort((short) value).array();
    }

    @Test
    void multiportHandshake() throws Exception {
        ByteArrayOutputStream out0 = new ByteArrayOutputStream(), out1 = new ByteArrayOutputStream();
        PipedOutputStream host1 = new PipedOutputStream();
        VirtioConsole c = new VirtioConsole(List.of(
                ConsolePort.console(PortInput.empty(), PortOutput.of(out0)),
                ConsolePort.named("krun-stdin", PortInput.of(new PipedInputStream(host1)), PortOutput.of(out1))), 100, 40);
        MockDriver d = driver(c);
        long acked = d.init(1L << VirtioConsole.VIRTIO_CONSOLE_F_MULTIPORT | 1L << VirtioConsole.VIRTIO_CONSOLE_F_SIZE);
        assertNotEquals(0, acked & 2);
        DriverQueue crx = d.queue(2), ctx = d.queue(3);
        List<Integer> heads = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            heads.add(crx.addWritable(64));
        }
        crx.kick();
        ctx.addReadable(ctrlMsg(0, VirtioConsole.DEVICE_READY, 1));
        ctx.kick();
        for (int port = 0; port < 2; port++) {
            DriverQueue.Used u = crx.awaitUsed(TIMEOUT);
            assertArrayEquals(new int[] {port, VirtioConsole.PORT_ADD, 0}, ctrl(crx, u.id()));
        }
        ctx.addReadable(ctrlMsg(0, VirtioConsole.PORT_READY, 1));
        ctx.kick();
        assertArrayEquals(new int[] {0, VirtioConsole.CONSOLE_PORT, 1}, ctrl(crx, crx.awaitUsed(TIMEOUT).id()));
        assertArrayEquals(new int[] {0, VirtioConsole.PORT_OPEN, 1}, ctrl(crx, crx.awaitUsed(TIMEOUT).id()));
        DriverQueue.Used resize = crx.awaitUsed(TIMEOUT);
        assertEquals(12, resize.len());
        ByteBuffer rb = ByteBuffer.wrap(crx.written(resize.id(), 12)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(VirtioConsole.RESIZE, rb.getShort(4));
        assertEquals(100, rb.getShort(8));
        assertEquals(40, rb.getShort(10));
        ctx.addReadable(ctrlMsg(1, VirtioConsole.PORT_READY, 1));
        ctx.kick();
        assertArrayEquals(new int[] {1, VirtioConsole.PORT_OPEN, 1}, ctrl(crx, crx.awaitUsed(TIMEOUT).id()));
        DriverQueue.Used name = crx.awaitUsed(TIMEOUT);
        assertArrayEquals(new int[] {1, VirtioConsole.PORT_NAME, 1}, ctrl(crx, name.id()));
        assertEquals(8 + 10, name.len());
        assertEquals("krun-stdin", new String(crx.written(name.id(), 18), 8, 10, StandardCharsets.UTF_8));

        // Port 1 input waits for the guest to open the port.
        DriverQueue rx1 = d.queue(VirtioConsole.rxQueueIndex(1));
        int h = rx1.addWritable(32);
        rx1.kick();
        host1.write(bytes("in"));
        host1.flush();
        Thread.sleep(50);
        assertTrue(rx1.pollUsed().isEmpty());
        ctx.addReadable(ctrlMsg(1, VirtioConsole.PORT_OPEN, 1));
        ctx.kick();
        assertEquals(new DriverQueue.Used(h, 2), rx1.awaitUsed(TIMEOUT));
        assertArrayEquals(bytes("in"), rx1.written(h, 2));

        // Port outputs are separate.
        DriverQueue tx0 = d.queue(1), tx1 = d.queue(VirtioConsole.txQueueIndex(1));
        tx0.addReadable(bytes("zero"));
        tx0.kick();
        tx1.addReadable(bytes("one"));
        tx1.kick();
        assertTrue(CountingTrigger.await(() -> out0.toString().equals("zero") && out1.toString().equals("one"), TIMEOUT));

        // Host EOF on port 1 → PORT_OPEN(1, 0).
        host1.close();
        assertArrayEquals(new int[] {1, VirtioConsole.PORT_OPEN, 0}, ctrl(crx, crx.awaitUsed(TIMEOUT).id()));

        // Resize reaches console ports.
        c.resize(120, 50);
        DriverQueue.Used r2 = crx.awaitUsed(TIMEOUT);
        ByteBuffer rb2 = ByteBuffer.wrap(crx.written(r2.id(), 12)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(0, rb2.getInt(0));
        assertEquals(120, rb2.getShort(8));
        assertEquals(50, rb2.getShort(10));
    }

    @Test
    void resetAndCloseStopThreadsEvenWhileBlocked() throws Exception {
        PipedOutputStream host = new PipedOutputStream();
        MockDriver d = driver(Consoles.streams(new PipedInputStream(host), new ByteArrayOutputStream()));
        d.init(0);
        host.write(bytes("x")); // the device now holds it for a guest buffer
        host.flush();
        Thread.sleep(20);
        long t0 = System.nanoTime();
        d.setStatus(0);
        assertFalse(d.transport().device().isActivated());
        assertTrue(Thread.getAllStackTraces().keySet().stream().noneMatch(t -> t.getName().startsWith("virtio-console-")));
        d.init(0);
        d.transport().close();
        assertTrue(System.nanoTime() - t0 < 3_000_000_000L, "stopping took too long");
    }

    @Test
    void toFileAppendsOutput(@org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        Path f = dir.resolve("console.log");
        VirtioConsole c = Consoles.toFile(f);
        MockDriver d = driver(c);
        d.init(0);
        DriverQueue tx = d.queue(1);
        int h = tx.addReadable(bytes("boot ok\n"));
        tx.kick();
        assertEquals(h, tx.awaitUsed(TIMEOUT).id());
        assertTrue(CountingTrigger.await(() -> {
            try {
                return Files.readString(f).equals("boot ok\n");
            } catch (IOException e) {
                return false;
            }
        }, TIMEOUT));
    }

    @Test
    void fdInputIsReadOnlyWhenReadableAndEndsAtEof(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        Path fifo = dir.resolve("fifo");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        // O_RDWR and blocking: opening a FIFO this way never blocks, and a read with nothing there would.
        try (dev.jkrun.libc.FileDescriptor fd = dev.jkrun.libc.FileDescriptor.open(fifo.toString(),
                dev.jkrun.libc.FileDescriptor.O_RDWR);
             dev.jkrun.devices.runtime.EventLoop loop = new dev.jkrun.devices.runtime.EventLoop("fd-input-test")) {
            dev.jkrun.devices.virtio.DeviceThreads threads = new dev.jkrun.devices.virtio.DeviceThreads("fd-input-test");
            PortInput in = PortInput.ofFd(fd.raw());
            java.util.concurrent.BlockingQueue<String> got = new java.util.concurrent.LinkedBlockingQueue<>();
            byte[] b = new byte[8];
            in.start(loop, threads, "unused", () -> {
                try {
                    int n;
                    while ((n = in.read(b, 0, 8)) > 0) {
                        got.add(new String(b, 0, n, java.nio.charset.StandardCharsets.US_ASCII));
                    }
                    in.want(true);
                } catch (IOException e) {
                    got.add("error " + e);
                }
            });
            loop.start(threads);
            loop.execute(() -> in.want(true));
            try (java.io.FileOutputStream w = new java.io.FileOutputStream(fifo.toFile())) {
                w.write(bytes("hey"));
            }
            assertEquals("hey", got.poll(TIMEOUT, java.util.concurrent.TimeUnit.MILLISECONDS));
            loop.execute(() -> in.want(false));
            Thread.sleep(50);
            try (java.io.FileOutputStream w = new java.io.FileOutputStream(fifo.toFile())) {
                w.write(bytes("later"));
            }
            assertEquals(null, got.poll(200, java.util.concurrent.TimeUnit.MILLISECONDS), "not watched while unwanted");
            loop.execute(() -> in.want(true));
            assertEquals("later", got.poll(TIMEOUT, java.util.concurrent.TimeUnit.MILLISECONDS));
            loop.stop();
            in.stop();
            assertTrue(threads.alive().isEmpty());
        }
    }

    // ---- hostile drivers --------------------------------------------------------------------------------------

    /**
     * A driver that repeats DEVICE_READY and PORT_READY but never posts a control rx buffer must not grow the
     * host's queue of control messages: repeats coalesce, and once the driver does post buffers it gets each
     * message once, in the order first sent.
     */
    @Test
    void controlFloodWithoutRxBuffersStaysBoundedAndLosesNothing() {
        VirtioConsole c = new VirtioConsole(List.of(ConsolePort.console(PortInput.empty(), PortOutput.discard()),
                ConsolePort.named("p1", PortInput.empty(), PortOutput.discard())), 80, 25);
        MockDriver d = driver(c);
        d.init(1L << VirtioConsole.VIRTIO_CONSOLE_F_MULTIPORT | 1L << VirtioConsole.VIRTIO_CONSOLE_F_SIZE);
        DriverQueue crx = d.queue(2), ctx = d.queue(3);
        for (int round = 0; round < 300; round++) {
            ctx.resetBuffers();
            for (int i = 0; i < 16; i++) {
                ctx.addReadable(ctrlMsg(0, VirtioConsole.DEVICE_READY, 1));
                ctx.addReadable(ctrlMsg(i % 2, VirtioConsole.PORT_READY, 1));
            }
            ctx.kick();
            for (int i = 0; i < 32; i++) {
                ctx.awaitUsed(TIMEOUT);
            }
        }
        int pending = c.pendingControlMessages();
        assertTrue(pending <= VirtioConsole.MAX_PENDING_CONTROL_PER_PORT * 2,
                "control messages queued for a driver that never takes them: " + pending);
        for (int i = 0; i < 16; i++) {
            crx.addWritable(64);
        }
        crx.kick();
        List<int[]> got = new ArrayList<>();
        for (int i = 0; i < 7; i++) {
            got.add(ctrl(crx, crx.awaitUsed(TIMEOUT).id()));
        }
        int[][] want = {{0, VirtioConsole.PORT_ADD, 0}, {1, VirtioConsole.PORT_ADD, 0}, {0, VirtioConsole.CONSOLE_PORT, 1},
                {0, VirtioConsole.PORT_OPEN, 1}, {0, VirtioConsole.RESIZE, 0}, {1, VirtioConsole.PORT_OPEN, 1},
                {1, VirtioConsole.PORT_NAME, 1}};
        for (int i = 0; i < want.length; i++) {
            assertArrayEquals(want[i], got.get(i), "message " + i);
        }
        assertTrue(crx.pollUsed().isEmpty(), "each message once");
    }

    /**
     * One tx chain whose descriptors overlap describes almost 4 GiB for the device to copy out; a reset while it
     * copies must not wait for the copy (the VMM unmaps guest memory after the stop).
     */
    @Test
    void resetDuringAHugeTxChainIsPrompt() throws Exception {
        java.io.OutputStream slow = new java.io.OutputStream() {
            @Override
            public void write(int b) { }

            @Override
            public void write(byte[] b, int off, int len) { java.util.concurrent.locks.LockSupport.parkNanos(200_000); }
        };
        MockDriver d = driver(Consoles.streams(new java.io.ByteArrayInputStream(new byte[0]), slow));
        d.init(1L << Queue.VIRTIO_RING_F_INDIRECT_DESC);
        DriverQueue tx = d.queue(1);
        long table = 4 << 20;
        int n = 1000; // 1000 x 4 MiB, under the 2^32-byte chain limit
        for (int i = 0; i < n; i++) {
            tx.writeDescriptorAt(table + 16L * i, 0, 4 << 20, i + 1 < n ? Queue.VRING_DESC_F_NEXT : 0, i + 1);
        }
        int head = tx.takeDescriptor();
        tx.writeDescriptor(head, table, 16 * n, Queue.VRING_DESC_F_INDIRECT, 0);
        tx.publish(head);
        tx.kick();
        Thread.sleep(200);
        assertTrue(tx.pollUsed().isEmpty(), "the device is still copying");
        long t0 = System.nanoTime();
        d.setStatus(0);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms < 1000, "reset took " + ms + " ms");
        assertTrue(Thread.getAllStackTraces().keySet().stream().noneMatch(t -> t.getName().startsWith("virtio-console-")));
    }

    /**
     * An Error in a console thread (here from the host output) must not end the thread silently: the device
     * reports DEVICE_NEEDS_RESET with a configuration change interrupt, logs one error for the device however
     * many threads fail, and works again after the driver resets it.
     */
    @Test
    void anErrorInAConsoleThreadNeedsResetAndIsReportedOnce() {
        boolean[] fail = {true};
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PortOutput failing = (b, off, len) -> {
            if (fail[0]) {
                throw new AssertionError("host output broke");
            }
            out.write(b, off, len);
        };
        VirtioConsole c = new VirtioConsole(List.of(ConsolePort.console(PortInput.empty(), failing),
                ConsolePort.named("p1", PortInput.empty(), failing)), 0, 0);
        MockDriver d = driver(c);
        try (dev.jkrun.devices.testing.LogCapture log = new dev.jkrun.devices.testing.LogCapture()) {
            d.init(1L << VirtioConsole.VIRTIO_CONSOLE_F_MULTIPORT);
            DriverQueue tx0 = d.queue(1), tx1 = d.queue(VirtioConsole.txQueueIndex(1));
            tx0.addReadable(bytes("a"));
            tx0.kick();
            assertTrue(CountingTrigger.await(() -> (d.status() & MmioTransport.STATUS_DEVICE_NEEDS_RESET) != 0, TIMEOUT),
                    "status 0x" + Integer.toHexString(d.status()));
            assertEquals(MmioTransport.INT_CONFIG, d.interruptStatus() & MmioTransport.INT_CONFIG);
            tx1.addReadable(bytes("b"));
            tx1.kick();
            assertTrue(CountingTrigger.await(() -> Thread.getAllStackTraces().keySet().stream()
                    .noneMatch(t -> t.getName().equals("virtio-console-loop")), TIMEOUT), "the loop ended");
            assertEquals(1, log.count("host output broke"), String.join("\n", log.lines()));
        }
        fail[0] = false;
        d.setStatus(0);
        assertEquals(0, d.status());
        d.init(0);
        DriverQueue tx = d.queue(1);
        int h = tx.addReadable(bytes("again"));
        tx.kick();
        assertEquals(new DriverQueue.Used(h, 0), tx.awaitUsed(TIMEOUT));
        assertTrue(CountingTrigger.await(() -> out.toString().equals("again"), TIMEOUT));
    }

    @Test
    void badControlMessagesAreLoggedAtALimitedRate() {
        VirtioConsole c = new VirtioConsole(List.of(ConsolePort.console(PortInput.empty(), PortOutput.discard())), 0, 0);
        MockDriver d = driver(c);
        d.init(1L << VirtioConsole.VIRTIO_CONSOLE_F_MULTIPORT);
        DriverQueue ctx = d.queue(3);
        try (dev.jkrun.devices.testing.LogCapture log = new dev.jkrun.devices.testing.LogCapture()) {
            long t0 = System.nanoTime();
            for (int round = 0; round < 40; round++) {
                ctx.resetBuffers();
                for (int i = 0; i < 25; i++) {
                    ctx.addReadable(new byte[2]); // too short for a control message
                }
                ctx.kick();
                for (int i = 0; i < 25; i++) {
                    ctx.awaitUsed(TIMEOUT);
                }
            }
            long n = log.count("bad control message");
            assertTrue(n <= dev.jkrun.devices.testing.LogCapture.rateLimitBound((System.nanoTime() - t0) / 1_000_000),
                    n + " warnings for 1000 bad messages");
        }
    }

    /**
     * Output larger than a pipe holds, to a slow reader of a FIFO (blocking and non-blocking): the loop writes what
     * fits, waits for room with epoll and goes on, every byte in order; meanwhile the other ports keep working.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(booleans = {false, true})
    void fdOutputResumesWhenTheReaderCatchesUp(boolean nonBlocking, @org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        Path fifo = dir.resolve("fifo");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        try (dev.jkrun.libc.FileDescriptor fd = dev.jkrun.libc.FileDescriptor.open(fifo.toString(),
                dev.jkrun.libc.FileDescriptor.O_RDWR | (nonBlocking ? dev.jkrun.libc.FileDescriptor.O_NONBLOCK : 0));
             java.io.FileInputStream reader = new java.io.FileInputStream(fifo.toFile())) {
            ByteArrayOutputStream other = new ByteArrayOutputStream();
            VirtioConsole c = new VirtioConsole(List.of(ConsolePort.console(PortInput.empty(), PortOutput.ofFd(fd.raw())),
                    ConsolePort.named("p1", PortInput.empty(), PortOutput.of(other))), 0, 0);
            MockDriver d = driver(c);
            d.init(1L << VirtioConsole.VIRTIO_CONSOLE_F_MULTIPORT);
            DriverQueue tx = d.queue(1);
            byte[] part = new byte[40 << 10];
            new java.util.Random(7).nextBytes(part);
            long buf = tx.alloc(part.length);
            mem.write(dev.jkrun.memory.GuestAddress.of(buf), part);
            int h = tx.takeDescriptor(), b = tx.takeDescriptor(), e = tx.takeDescriptor();
            tx.writeDescriptor(h, buf, part.length, Queue.VRING_DESC_F_NEXT, b);
            tx.writeDescriptor(b, buf, part.length, Queue.VRING_DESC_F_NEXT, e);
            tx.writeDescriptor(e, buf, part.length, 0, 0); // 120 KiB: more than the 64 KiB a pipe holds
            tx.publish(h);
            tx.kick();
            byte[] data = new byte[3 * part.length];
            for (int i = 0; i < 3; i++) {
                System.arraycopy(part, 0, data, i * part.length, part.length);
            }
            Thread.sleep(200); // the FIFO is full by now
            DriverQueue tx1 = d.queue(VirtioConsole.txQueueIndex(1));
            int h1 = tx1.addReadable(bytes("beside"));
            tx1.kick();
            assertEquals(h1, tx1.awaitUsed(TIMEOUT).id(), "another port waits for the stalled one");
            byte[] got = new byte[data.length];
            int n = 0;
            while (n < got.length) {
                int k = reader.read(got, n, Math.min(1000, got.length - n));
                assertTrue(k > 0);
                n += k;
            }
            assertArrayEquals(data, got);
            assertEquals(h, tx.awaitUsed(TIMEOUT).id());
            assertEquals("beside", other.toString());
        }
    }

    /**
     * {@code jkrun run} with pipes for stdio: hvc0, krun-stdin/-stdout/-stderr on host fds and init's control port.
     * Twelve threads before the event loop (rx and tx per port, two control), one now.
     */
    @Test
    void aRunLikeConsoleRunsOneThread(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        Path fifo = dir.resolve("fifo");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        try (dev.jkrun.libc.FileDescriptor fd = dev.jkrun.libc.FileDescriptor.open(fifo.toString(),
                dev.jkrun.libc.FileDescriptor.O_RDWR | dev.jkrun.libc.FileDescriptor.O_NONBLOCK)) {
            VirtioConsole c = new VirtioConsole(List.of(
                    ConsolePort.console(PortInput.empty(), PortOutput.lines(l -> { })),
                    ConsolePort.named("krun-stdin", PortInput.ofFd(fd.raw()), PortOutput.discard()),
                    ConsolePort.named("krun-stdout", PortInput.empty(), PortOutput.ofFd(fd.raw())),
                    ConsolePort.named("krun-stderr", PortInput.empty(), PortOutput.ofFd(fd.raw())),
                    ConsolePort.named("jkrun-control", new QueuedInput(), PortOutput.discard())), 80, 25);
            MockDriver d = driver(c);
            d.init(1L << VirtioConsole.VIRTIO_CONSOLE_F_MULTIPORT);
            assertEquals(List.of("virtio-console-loop"), Thread.getAllStackTraces().keySet().stream().map(Thread::getName)
                    .filter(n -> n.startsWith("virtio-console-")).toList());
            d.transport().close();
        }
    }

    /** A resize updates config space and raises the configuration change interrupt itself (virtio 1.2 §5.3.4). */
    @Test
    void resizeRaisesTheConfigInterrupt() {
        VirtioConsole c = new VirtioConsole(List.of(ConsolePort.console(PortInput.empty(), PortOutput.discard())), 80, 25);
        MockDriver d = driver(c);
        d.init(1L << VirtioConsole.VIRTIO_CONSOLE_F_SIZE);
        assertEquals(0, d.interruptStatus() & MmioTransport.INT_CONFIG);
        c.resize(132, 43);
        assertEquals(MmioTransport.INT_CONFIG, d.interruptStatus() & MmioTransport.INT_CONFIG);
        byte[] cfg = new byte[4];
        c.readConfig(0, cfg);
        assertEquals(132, (cfg[0] & 0xFF) | (cfg[1] & 0xFF) << 8);
        assertEquals(43, (cfg[2] & 0xFF) | (cfg[3] & 0xFF) << 8);
    }

    /**
     * Output to a host descriptor nobody reads (a non-blocking FIFO): the loop waits for room without
     * spinning, and stopping the device does not wait for the reader.
     */
    @Test
    void fdOutputToAStalledReaderWaitsQuietlyAndStops(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        Path fifo = dir.resolve("fifo");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        try (dev.jkrun.libc.FileDescriptor fd = dev.jkrun.libc.FileDescriptor.open(fifo.toString(),
                dev.jkrun.libc.FileDescriptor.O_RDWR | dev.jkrun.libc.FileDescriptor.O_NONBLOCK)) {
            VirtioConsole c = new VirtioConsole(List.of(ConsolePort.console(PortInput.empty(), PortOutput.ofFd(fd.raw()))), 0, 0);
            MmioTransport t = new MmioTransport(c, mem, irq);
            MockDriver d = new MockDriver(t, mem);
            d.init(0);
            DriverQueue tx = d.queue(1);
            long buf = tx.alloc(60 << 10);
            int a = tx.takeDescriptor(), b = tx.takeDescriptor(), e = tx.takeDescriptor();
            tx.writeDescriptor(a, buf, 60 << 10, Queue.VRING_DESC_F_NEXT, b);
            tx.writeDescriptor(b, buf, 60 << 10, Queue.VRING_DESC_F_NEXT, e);
            tx.writeDescriptor(e, buf, 60 << 10, 0, 0); // 180 KiB: more than the FIFO holds
            tx.publish(a);
            tx.kick();
            Thread txThread = null;
            for (int i = 0; i < 100 && txThread == null; i++) {
                txThread = Thread.getAllStackTraces().keySet().stream().filter(th -> th.getName().equals("virtio-console-loop"))
                        .findFirst().orElse(null);
                Thread.sleep(10);
            }
            assertNotNull(txThread);
            Thread.sleep(200); // the FIFO is full by now
            java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
            long cpu0 = mx.getThreadCpuTime(txThread.getId());
            Thread.sleep(500);
            long cpuMs = (mx.getThreadCpuTime(txThread.getId()) - cpu0) / 1_000_000;
            assertTrue(cpuMs < 100, "the loop thread burnt " + cpuMs + " ms of CPU in 500 ms waiting for a stalled reader");
            long t0 = System.nanoTime();
            t.close();
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(ms < 2000, "close took " + ms + " ms");
            assertFalse(txThread.isAlive(), "the loop thread still runs");
        }
    }

    @Test
    void guestConsoleLinesReachTheLogWithControlCharactersEscaped() throws IOException {
        List<String> lines = new ArrayList<>();
        PortOutput o = PortOutput.lines(lines::add);
        byte[] b = bytes("plain\n\u001b[2J\u001b]0;owned\u0007title\ttab\u009b1m\r\n");
        o.write(b, 0, b.length);
        assertEquals(List.of("plain", "\\x1b[2J\\x1b]0;owned\\x07title\\x09tab\\u009b1m"), lines);
    }

    @Test
    void aPanicMessageIsKeptWithControlCharactersEscaped() throws IOException {
        PanicWatch w = new PanicWatch(PortOutput.discard());
        byte[] b = bytes("[ 1.0] Kernel panic - not syncing: bad \u001b[31mthing\u001b[0m\n");
        w.write(b, 0, b.length);
        assertEquals("bad \\x1b[31mthing\\x1b[0m", w.panic().orElseThrow());
    }
}
