package dev.jkrun.devices.virtio;

import static dev.jkrun.devices.virtio.MmioTransport.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jkrun.devices.virtio.console.ConsolePort;
import dev.jkrun.devices.virtio.console.PortInput;
import dev.jkrun.devices.virtio.console.PortOutput;
import dev.jkrun.devices.virtio.console.VirtioConsole;
import dev.jkrun.devices.virtio.queue.Queue;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.HeapGuestMemory;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Register sequences on a virtio-mmio transport with a real device behind it (a two-port virtio-console over
 * {@link HeapGuestMemory}): the fuzzer picks reads and writes of any offset and width (known registers, unknown ones,
 * config space, unaligned), values, well-formed handshake steps and queue set-ups (so that DRIVER_OK and the device's
 * threads are reached), queue notifications, and bytes scribbled into guest memory under the device's threads.
 *
 * <p>Oracle, after every step: nothing throws out of the transport; the status bits only ever build up in the
 * spec's order (3.1.1) and hold no undefined bit; the driver's features are a subset of the offered ones and do not
 * change after FEATURES_OK; no queue is ready without FEATURES_OK, and the queue registers do not change after
 * DRIVER_OK (4.2.3.2); the device is active only after DRIVER_OK; interrupt status holds only the two defined bits;
 * every step ends in bounded time. At the end a reset stops every device thread, and close leaves no thread or file
 * descriptor behind.
 * Replayed from the committed inputs in every test run; fuzzed with {@code fuzz/run MmioTransportFuzzTest}.
 */
class MmioTransportFuzzTest {
    private static final int RAM = 1 << 20;
    private static final int MAX_STEPS = 48;
    /** Longest a single register access may take: resets join device threads, which stop at once. */
    private static final long STEP_LIMIT_MS = 3000;
    private static final int[] REGISTERS = {MAGIC_VALUE, VERSION, DEVICE_ID, VENDOR, DEVICE_FEATURES, DEVICE_FEATURES_SEL,
            DRIVER_FEATURES, DRIVER_FEATURES_SEL, QUEUE_SEL, QUEUE_NUM_MAX, QUEUE_NUM, QUEUE_READY, QUEUE_NOTIFY,
            INTERRUPT_STATUS, INTERRUPT_ACK, STATUS, QUEUE_DESC_LOW, QUEUE_DESC_HIGH, QUEUE_AVAIL_LOW, QUEUE_AVAIL_HIGH,
            QUEUE_USED_LOW, QUEUE_USED_HIGH, SHM_SEL, SHM_LEN_LOW, SHM_LEN_HIGH, SHM_BASE_LOW, SHM_BASE_HIGH,
            CONFIG_GENERATION, CONFIG, CONFIG + 4, CONFIG + 8};
    private static final int DEFINED_STATUS = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK
            | STATUS_DEVICE_NEEDS_RESET | STATUS_FAILED;

    @FuzzTest(maxDuration = "1h")
    void registerSequencesKeepTheTransportConsistent(FuzzedDataProvider data) {
        long threadsBefore = consoleThreads();
        long fdsBefore = openFds();
        HeapGuestMemory mem = HeapGuestMemory.of(0, RAM);
        VirtioConsole console = new VirtioConsole(List.of(ConsolePort.console(PortInput.empty(), PortOutput.discard()),
                ConsolePort.named("p1", PortInput.empty(), PortOutput.discard())), 80, 25);
        MmioTransport t = new MmioTransport(console, mem, () -> { });
        long offered = console.availableFeatures() | VirtioDevice.VIRTIO_F_VERSION_1;
        Oracle oracle = new Oracle(t, console, offered);
        List<String> trace = new ArrayList<>();
        try {
            int steps = data.consumeInt(1, MAX_STEPS);
            for (int i = 0; i < steps && data.remainingBytes() > 0; i++) {
                long t0 = System.nanoTime();
                String step = step(t, mem, data);
                trace.add(step);
                long ms = (System.nanoTime() - t0) / 1_000_000;
                if (ms > STEP_LIMIT_MS) {
                    fail("step took " + ms + " ms: " + trace);
                }
                oracle.check(trace);
            }
        } finally {
            write(t, STATUS, 0);
            assertFalse(console.isActivated(), "a reset leaves the device inactive");
            assertEquals(0, t.status(), "status after reset");
            assertTrue(console.threads().alive().isEmpty(), () -> "device threads after reset: " + console.threads().alive() + " " + trace);
            t.close();
        }
        assertEquals(threadsBefore, consoleThreads(), () -> "console threads left after close: " + trace);
        assertEquals(fdsBefore, openFds(), () -> "eventfds left after close: " + trace);
    }

    /** What the oracle remembers between steps. */
    private static final class Oracle {
        private final MmioTransport t;
        private final VirtioConsole device;
        private final long offered;
        private long featuresAtOk = -1;
        private List<String> queuesAtDriverOk;

        Oracle(MmioTransport t, VirtioConsole device, long offered) {
            this.t = t;
            this.device = device;
            this.offered = offered;
        }

        void check(List<String> trace) {
            int s = t.status();
            long f = t.driverFeatures();
            assertEquals(0, s & ~DEFINED_STATUS, () -> "undefined status bits 0x" + Integer.toHexString(s) + " after " + trace);
            // 3.1.1: each step adds one bit to the ones before it.
            if ((s & STATUS_DRIVER_OK) != 0) {
                assertTrue((s & STATUS_FEATURES_OK) != 0, () -> "DRIVER_OK without FEATURES_OK after " + trace);
            }
            if ((s & STATUS_FEATURES_OK) != 0) {
                assertTrue((s & STATUS_DRIVER) != 0, () -> "FEATURES_OK without DRIVER after " + trace);
            }
            if ((s & STATUS_DRIVER) != 0) {
                assertTrue((s & STATUS_ACKNOWLEDGE) != 0, () -> "DRIVER without ACKNOWLEDGE after " + trace);
            }
            assertEquals(0, f & ~offered, () -> "driver features beyond the offer: 0x" + Long.toHexString(f) + " after " + trace);
            if ((s & STATUS_FEATURES_OK) != 0) {
                if (featuresAtOk < 0) {
                    featuresAtOk = f;
                    assertTrue((f & VirtioDevice.VIRTIO_F_VERSION_1) != 0, () -> "FEATURES_OK without VERSION_1 after " + trace);
                }
                assertEquals(featuresAtOk, f, () -> "features changed after FEATURES_OK: " + trace);
            } else {
                featuresAtOk = -1;
                for (int q = 0; q < t.queues().size(); q++) {
                    int qi = q;
                    assertFalse(t.queues().get(q).isReady(), () -> "queue " + qi + " ready without FEATURES_OK after " + trace);
                }
            }
            if ((s & STATUS_DRIVER_OK) != 0) {
                List<String> now = queueState();
                if (queuesAtDriverOk == null) {
                    queuesAtDriverOk = now;
                }
                assertEquals(queuesAtDriverOk, now, () -> "queue registers changed after DRIVER_OK: " + trace);
            } else {
                queuesAtDriverOk = null;
                assertFalse(device.isActivated(), () -> "device active without DRIVER_OK after " + trace);
            }
            assertEquals(0, t.interruptStatus() & ~(INT_VRING | INT_CONFIG), () -> "interrupt status after " + trace);
        }

        private List<String> queueState() {
            List<String> out = new ArrayList<>();
            for (Queue q : t.queues()) {
                out.add(q.size() + "/" + q.isReady() + "/" + q.descTable() + "/" + q.availRing() + "/" + q.usedRing());
            }
            return out;
        }
    }

    /** One fuzzer-chosen step; returns what it did, for the failure message. */
    private static String step(MmioTransport t, HeapGuestMemory mem, FuzzedDataProvider data) {
        int op = data.consumeInt(0, 7);
        try {
            switch (op) {
                case 0 -> {
                    long off = offset(data);
                    byte[] d = new byte[width(data)];
                    t.read(off, d);
                    return "read " + d.length + "@0x" + Long.toHexString(off);
                }
                case 1 -> {
                    long off = offset(data);
                    byte[] d = data.consumeBytes(width(data));
                    t.write(off, d);
                    return "write " + d.length + "@0x" + Long.toHexString(off);
                }
                case 2 -> {
                    int reg = REGISTERS[data.consumeInt(0, REGISTERS.length - 1)];
                    int v = data.consumeInt();
                    write(t, reg, v);
                    return "write32 0x" + Integer.toHexString(reg) + "=0x" + Integer.toHexString(v);
                }
                case 3 -> {
                    // The next handshake step as a driver would take it, so deeper states are reached often.
                    int s = t.status();
                    int next = s == 0 ? STATUS_ACKNOWLEDGE : s == STATUS_ACKNOWLEDGE ? s | STATUS_DRIVER
                            : s == (STATUS_ACKNOWLEDGE | STATUS_DRIVER) ? s | STATUS_FEATURES_OK : s | STATUS_DRIVER_OK;
                    if (next == (STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK)) {
                        long f = data.consumeLong();
                        write(t, DRIVER_FEATURES_SEL, 0);
                        write(t, DRIVER_FEATURES, (int) f);
                        write(t, DRIVER_FEATURES_SEL, 1);
                        write(t, DRIVER_FEATURES, (int) (f >>> 32) | 1); // VERSION_1, or FEATURES_OK is refused
                    }
                    write(t, STATUS, next);
                    return "status -> 0x" + Integer.toHexString(next);
                }
                case 4 -> {
                    // A queue set up with in-range, aligned rings (validation passes, threads get real work).
                    int q = data.consumeInt(0, t.queues().size());
                    int size = 1 << data.consumeInt(0, 5);
                    long base = (long) data.consumeInt(0, RAM / 0x1000 - 2) * 0x1000;
                    write(t, QUEUE_SEL, q);
                    write(t, QUEUE_NUM, size);
                    write(t, QUEUE_DESC_LOW, (int) base);
                    write(t, QUEUE_DESC_HIGH, 0);
                    write(t, QUEUE_AVAIL_LOW, (int) base + 16 * size);
                    write(t, QUEUE_AVAIL_HIGH, 0);
                    write(t, QUEUE_USED_LOW, (int) ((base + 16 * size + 6 + 2 * size + 3) & ~3L));
                    write(t, QUEUE_USED_HIGH, 0);
                    write(t, QUEUE_READY, 1);
                    return "queue " + q + " size " + size + " at 0x" + Long.toHexString(base);
                }
                case 5 -> {
                    // A notification as KVM's ioeventfd delivers it (not through QueueNotify).
                    int q = data.consumeInt(0, t.queueEvents().size() - 1);
                    t.queueEvents().get(q).signal();
                    return "ioeventfd " + q;
                }
                case 6 -> {
                    int at = data.consumeInt(0, RAM - 64);
                    byte[] b = data.consumeBytes(64);
                    mem.write(GuestAddress.of(at), b);
                    return "ram " + b.length + "@0x" + Integer.toHexString(at);
                }
                default -> {
                    write(t, STATUS, 0);
                    return "reset";
                }
            }
        } catch (Throwable e) {
            throw new AssertionError("op " + op + " threw out of the transport", e);
        }
    }

    private static long offset(FuzzedDataProvider data) {
        return switch (data.consumeInt(0, 3)) {
            case 0 -> REGISTERS[data.consumeInt(0, REGISTERS.length - 1)] + data.consumeInt(-3, 3);
            case 1 -> data.consumeLong(0, MMIO_SIZE - 1);
            case 2 -> data.consumeLong(0, MMIO_SIZE + 0x100);
            default -> data.consumeLong();
        };
    }

    private static int width(FuzzedDataProvider data) {
        return data.consumeBoolean() ? new int[] {1, 2, 4, 8}[data.consumeInt(0, 3)] : data.consumeInt(0, 16);
    }

    private static void write(MmioTransport t, int reg, int v) {
        t.write(reg, new byte[] {(byte) v, (byte) (v >>> 8), (byte) (v >>> 16), (byte) (v >>> 24)});
    }

    /**
     * The eventfds this process holds: what the transport and the device open (notify and interrupt events). Not
     * every fd: the JVM and the fuzzer open and close files of their own meanwhile (seen as a count one lower after
     * close than before, with no leak).
     */
    private static long openFds() {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.filter(MmioTransportFuzzTest::isEventFd).count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static boolean isEventFd(Path fd) {
        try {
            return Files.readSymbolicLink(fd).toString().equals("anon_inode:[eventfd]");
        } catch (IOException e) {
            return false; // closed meanwhile
        }
    }

    private static long consoleThreads() {
        return Thread.getAllStackTraces().keySet().stream().filter(th -> th.getName().startsWith("virtio-console-")).count();
    }
}
