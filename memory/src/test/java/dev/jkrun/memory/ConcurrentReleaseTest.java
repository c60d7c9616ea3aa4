package dev.jkrun.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.ByteBuffer;
import java.nio.channels.Pipe;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Device threads still touching guest RAM while it is retired or released: with the FFM accessor they get
 * IllegalStateException and the JVM lives. FFM only — on the Unsafe accessor this race is exactly the crash
 * (SIGSEGV in the JVM) that FFM removes, so it is not run there.
 */
class ConcurrentReleaseTest {
    private static final long RAM = 4 << 20, HIGH = 0x100_0000, HIGH_SIZE = 1 << 20;

    @BeforeEach // not BeforeAll: each test then shows as skipped, with the reason
    void ffmOnly() {
        assumeTrue(GuestMemoryImpl.FFM.isAvailable(), "FFM accessor only (JDK 22+): on Unsafe this race crashes the JVM");
    }

    private static GuestAddress at(long a) { return GuestAddress.of(a); }

    @Test
    void accessesRacingReleaseThrowAndNeverCrash() throws Exception {
        for (int round = 0; round < 40; round++) {
            MmapGuestMemory mem = MmapGuestMemory.create(
                    List.of(new MemoryRegion(at(0), RAM), new MemoryRegion(at(HIGH), HIGH_SIZE)), GuestMemoryImpl.FFM);
            int n = 3;
            CountDownLatch running = new CountDownLatch(n);
            AtomicInteger refused = new AtomicInteger();
            AtomicReference<Throwable> unexpected = new AtomicReference<>();
            AtomicLong sink = new AtomicLong();
            Thread[] ts = new Thread[n];
            for (int t = 0; t < n; t++) {
                int id = t;
                ts[t] = new Thread(() -> {
                    byte[] buf = new byte[4096];
                    long sum = 0;
                    try {
                        ByteBuffer view = mem.view(at(0x1000L * (id + 1)), 4096);
                        for (long ops = 0; ; ops++) {
                            long a = (ops * 4104 + id * 8) % (RAM - 8);
                            sum += mem.readLong(at(a));
                            mem.writeInt(at(a), (int) ops);
                            mem.read(at(a & ~4095L), buf, 0, buf.length);
                            mem.write(at(HIGH + (a % (HIGH_SIZE - 4096))), buf, 0, buf.length);
                            mem.writeShortRelease(at(a & ~1L), (short) ops);
                            sum += mem.readShortAcquire(at(a & ~1L));
                            mem.fill(at(HIGH + 64L * id), 64, (byte) ops);
                            view.putLong((int) (ops & 511) * 8, ops);
                            sum += view.getLong(0);
                            if (ops == 2000) {
                                running.countDown();
                            }
                        }
                    } catch (IllegalStateException e) {
                        refused.incrementAndGet();
                    } catch (Throwable e) {
                        unexpected.set(e);
                    } finally {
                        sink.addAndGet(sum);
                        running.countDown();
                    }
                }, "hammer-" + t);
                ts[t].start();
            }
            assertTrue(running.await(30, TimeUnit.SECONDS));
            Thread.sleep(round % 4);
            // Odd rounds retire first (what the VMM does when a device thread outlived the stop), then close.
            boolean retire = round % 2 == 1;
            if (retire) {
                mem.retire();
            } else {
                mem.close();
            }
            for (Thread t : ts) {
                t.join(TimeUnit.SECONDS.toMillis(30));
                assertFalse(t.isAlive(), t.getName() + " still running after " + (retire ? "retire" : "release"));
            }
            mem.close();
            assertNull(unexpected.get(), () -> "unexpected: " + unexpected.get());
            assertEquals(n, refused.get(), "every thread stopped by IllegalStateException");
            assertThrows(IllegalStateException.class, () -> mem.readLong(at(0)));
        }
    }

    /**
     * Retiring does not wait for an NIO read into a view taken before it (the read lands on the zeroed pages and
     * close then unmaps), yet refuses every new access at once.
     */
    @Test
    void retireDoesNotWaitForAnIoIntoAView() throws Exception {
        MmapGuestMemory mem = MmapGuestMemory.create(List.of(new MemoryRegion(at(0), 1 << 16)), GuestMemoryImpl.FFM);
        Pipe pipe = Pipe.open();
        try {
            ByteBuffer view = mem.view(at(0x1000), 16);
            AtomicReference<Object> readResult = new AtomicReference<>();
            Thread reader = new Thread(() -> {
                try {
                    readResult.set(pipe.source().read(view));
                } catch (Throwable e) {
                    readResult.set(e);
                }
            }, "pipe-reader");
            reader.start();
            awaitBlockedInRead(reader);
            long t0 = System.nanoTime();
            mem.retire();
            assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(1), "retire waited for the read");
            assertThrows(IllegalStateException.class, () -> mem.readByte(at(0x1000)));
            assertThrows(IllegalStateException.class, () -> mem.view(at(0x1000), 16));
            pipe.sink().write(ByteBuffer.wrap("hello".getBytes(StandardCharsets.US_ASCII)));
            reader.join(10_000);
            assertEquals(5, readResult.get());
            mem.close();
            assertThrows(IllegalStateException.class, () -> view.get(0));
        } finally {
            pipe.source().close();
            pipe.sink().close();
            mem.close();
        }
    }

    private static void awaitBlockedInRead(Thread reader) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (Arrays.stream(reader.getStackTrace()).noneMatch(f -> f.getMethodName().equals("read0"))) {
            assertTrue(System.nanoTime() < deadline, "reader never blocked in read");
            Thread.sleep(5);
        }
    }

    /**
     * An NIO read into a guest view holds the segment (the JDK "acquires" it for the syscall): release must wait for
     * it rather than unmap under the kernel's feet, then unmap.
     */
    @Test
    void releaseWaitsForAnIoIntoAView() throws Exception {
        MmapGuestMemory mem = MmapGuestMemory.create(List.of(new MemoryRegion(at(0), 1 << 16)), GuestMemoryImpl.FFM);
        Pipe pipe = Pipe.open();
        try {
            ByteBuffer view = mem.view(at(0x1000), 16);
            AtomicReference<Object> readResult = new AtomicReference<>();
            Thread reader = new Thread(() -> {
                try {
                    readResult.set(pipe.source().read(view));
                } catch (Throwable e) {
                    readResult.set(e);
                }
            }, "pipe-reader");
            reader.start();
            awaitBlockedInRead(reader);
            AtomicReference<Throwable> closeResult = new AtomicReference<>();
            Thread closer = new Thread(() -> {
                try {
                    mem.close();
                } catch (Throwable e) {
                    closeResult.set(e);
                }
            }, "closer");
            closer.start();
            closer.join(300);
            assertTrue(closer.isAlive(), "release must not complete while a read into guest memory is in flight");
            pipe.sink().write(ByteBuffer.wrap("hello".getBytes(StandardCharsets.US_ASCII)));
            reader.join(10_000);
            closer.join(10_000);
            assertEquals(5, readResult.get());
            assertFalse(closer.isAlive());
            assertNull(closeResult.get());
            assertThrows(IllegalStateException.class, () -> mem.readByte(at(0x1000)));
            assertThrows(IllegalStateException.class, () -> view.get(0));
        } finally {
            pipe.source().close();
            pipe.sink().close();
            mem.close();
        }
    }
}
