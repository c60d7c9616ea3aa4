package dev.jkrun.devices.virtio.fs;

import static org.junit.jupiter.api.Assertions.*;

import dev.jkrun.devices.fs.Errnos;
import dev.jkrun.devices.fs.fuse.Fuse;
import dev.jkrun.devices.fs.fuse.FuseServer;
import dev.jkrun.devices.fs.passthrough.PassthroughFs;
import dev.jkrun.devices.fs.passthrough.PassthroughOptions;
import dev.jkrun.devices.testing.CountingTrigger;
import dev.jkrun.devices.testing.DriverQueue;
import dev.jkrun.devices.testing.MockDriver;
import dev.jkrun.devices.virtio.MmioTransport;
import dev.jkrun.memory.GuestMemory;
import dev.jkrun.memory.HeapGuestMemory;
import dev.jkrun.memory.MmapGuestMemory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * virtio-fs through its queues: the request queue serves FUSE, the hiprio queue only what Linux sends there; READ
 * and WRITE data move between the file and the guest's pages directly. On heap memory here (pread/pwrite per
 * page); {@link VirtioFsMappedMemoryTest} runs the same on mapped memory (one preadv/pwritev).
 */
class VirtioFsTest {
    static final long TIMEOUT = 5000;
    static final int HIPRIO = 0, REQUESTS = 1;

    @TempDir
    Path dir;
    GuestMemory mem;
    final CountingTrigger irq = new CountingTrigger();
    PassthroughFs fs;
    VirtioFs dev;
    MmioTransport transport;
    MockDriver driver;
    long unique = 1;

    @BeforeEach
    void setUp() throws Exception {
        mem = newMemory();
        Files.writeString(dir.resolve("a"), "a");
        fs = new PassthroughFs(dir, PassthroughOptions.defaults());
        dev = new VirtioFs("tag", new FuseServer(fs), fs);
        transport = new MmioTransport(dev, mem, irq);
        driver = new MockDriver(transport, mem, 0x10000, 0x200000, 0x200000);
        driver.init(0);
    }

    @AfterEach
    void tearDown() throws Exception {
        transport.close();
        dev.close();
        if (mem instanceof MmapGuestMemory m) {
            m.close();
        }
    }

    GuestMemory newMemory() { return HeapGuestMemory.of(0, 8 << 20); }

    byte[] request(int opcode, long node, byte[] body) {
        return ByteBuffer.allocate(Fuse.IN_HEADER + body.length).order(ByteOrder.LITTLE_ENDIAN)
                .putInt(Fuse.IN_HEADER + body.length).putInt(opcode).putLong(unique++).putLong(node).putInt(0)
                .putInt(0).putInt(1).putInt(0).put(body).array();
    }

    /** Submits one request; returns the reply (empty when the device wrote none). */
    ByteBuffer call(int queue, byte[] request, int replyRoom) {
        return replyRoom > 0 ? submit(queue, List.of(request), replyRoom) : submit(queue, List.of(request));
    }

    /** Submits one chain of these readable buffers and writable lengths; returns what the device wrote. */
    ByteBuffer submit(int queue, List<byte[]> readable, int... writable) {
        DriverQueue q = driver.queue(queue);
        int head = q.add(readable, writable);
        q.kick();
        DriverQueue.Used u = q.awaitUsed(TIMEOUT);
        assertEquals(head, u.id());
        return ByteBuffer.wrap(q.written(head, u.len())).order(ByteOrder.LITTLE_ENDIAN);
    }

    static int error(ByteBuffer reply) { return -reply.getInt(4); }

    @Test
    void hiprioQueueServesOnlyForgetAndInterrupt() {
        byte[] init = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN).putInt(7).putInt(31).putInt(0)
                .putInt(0).array();
        assertEquals(0, error(call(REQUESTS, request(Fuse.INIT, 0, init), 256)));
        byte[] name = "a\0".getBytes(StandardCharsets.UTF_8);
        assertEquals(Errnos.EINVAL, error(call(HIPRIO, request(Fuse.LOOKUP, 1, name), 256)),
                "LOOKUP on the hiprio queue");
        assertEquals(1, fs.inodeCount(), "nothing looked up");
        ByteBuffer entry = call(REQUESTS, request(Fuse.LOOKUP, 1, name), 256);
        assertEquals(0, error(entry));
        long node = entry.getLong(Fuse.OUT_HEADER);
        assertEquals(Errnos.EINVAL, error(call(HIPRIO, request(Fuse.GETATTR, node, new byte[16]), 256)));
        assertEquals(Errnos.EINVAL, error(call(HIPRIO, request(Fuse.DESTROY, 0, new byte[0]), 256)));
        assertEquals(2, fs.inodeCount(), "DESTROY refused there");
        byte[] forget = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(1).array();
        assertEquals(0, call(HIPRIO, request(Fuse.FORGET, node, forget), 0).remaining(), "FORGET takes no reply");
        assertEquals(1, fs.inodeCount(), "FORGET on the hiprio queue honoured");
        assertEquals(0, error(call(REQUESTS, request(Fuse.GETATTR, 1, new byte[16]), 256)));
    }

    /**
     * With several request queues each has a thread of its own: a request that blocks in the file system on one
     * queue does not hold up the others (Linux 6.11+ sends each CPU's requests down its own queue).
     */
    @Test
    void requestQueuesServeRequestsConcurrently() throws Exception {
        // (and DESTROY, which ends the session, waits for the requests in flight)
        java.util.concurrent.CountDownLatch entered = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        dev.jkrun.devices.fs.FileSystem blocking = new dev.jkrun.devices.fs.FileSystem() {
            @Override
            public dev.jkrun.devices.fs.Attr getattr(long node, long fh) {
                if (node == 7) {
                    entered.countDown();
                    try {
                        release.await(TIMEOUT, java.util.concurrent.TimeUnit.MILLISECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
                return new dev.jkrun.devices.fs.Attr(node, 0, 0, 0, 0, 0, 0, 0, 0, 0040755, 2, 0, 0, 0, 4096);
            }
        };
        GuestMemory m = HeapGuestMemory.of(0, 8 << 20);
        VirtioFs d = new VirtioFs("mq", new FuseServer(blocking), null, 3);
        MmioTransport t = new MmioTransport(d, m, irq);
        try {
            MockDriver drv = new MockDriver(t, m, 0x10000, 0x200000, 0x100000);
            assertEquals(3, ByteBuffer.wrap(drv.readConfig(VirtioFs.TAG_BYTES, 4)).order(ByteOrder.LITTLE_ENDIAN).getInt());
            drv.init(0);
            assertEquals(4, t.queues().size(), "hiprio and three request queues");
            byte[] init = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN).putInt(7).putInt(31).putInt(0)
                    .putInt(0).array();
            DriverQueue q1 = drv.queue(1);
            int h = q1.add(List.of(request(Fuse.INIT, 0, init)), 256);
            q1.kick();
            assertEquals(h, q1.awaitUsed(TIMEOUT).id());
            // queue 1: a GETATTR the file system holds
            int held = q1.add(List.of(request(Fuse.GETATTR, 7, new byte[16])), 256);
            q1.kick();
            assertTrue(entered.await(TIMEOUT, java.util.concurrent.TimeUnit.MILLISECONDS), "the held GETATTR reached the file system");
            // queues 2 and 3 answer meanwhile
            for (int qi = 2; qi <= 3; qi++) {
                DriverQueue q = drv.queue(qi);
                int head = q.add(List.of(request(Fuse.GETATTR, 1, new byte[16])), 256);
                q.kick();
                DriverQueue.Used u = q.awaitUsed(TIMEOUT);
                assertEquals(head, u.id(), "queue " + qi + " answered while queue 1's request is in flight");
                ByteBuffer reply = ByteBuffer.wrap(q.written(head, u.len())).order(ByteOrder.LITTLE_ENDIAN);
                assertEquals(0, error(reply), "queue " + qi);
            }
            assertTrue(q1.pollUsed().isEmpty(), "queue 1's request still held");
            // DESTROY ends the session: it waits for the request in flight instead of sweeping the tables under it
            DriverQueue q2 = drv.queue(2);
            int destroy = q2.add(List.of(request(Fuse.DESTROY, 0, new byte[0])), 256);
            q2.kick();
            Thread.sleep(300);
            assertTrue(q2.pollUsed().isEmpty(), "DESTROY waits while a request is in flight");
            release.countDown();
            DriverQueue.Used u = q1.awaitUsed(TIMEOUT);
            assertEquals(held, u.id());
            assertEquals(0, error(ByteBuffer.wrap(q1.written(held, u.len())).order(ByteOrder.LITTLE_ENDIAN)));
            DriverQueue.Used d2 = q2.awaitUsed(TIMEOUT);
            assertEquals(destroy, d2.id());
            assertEquals(0, error(ByteBuffer.wrap(q2.written(destroy, d2.len())).order(ByteOrder.LITTLE_ENDIAN)));
        } finally {
            release.countDown();
            t.close();
            d.close();
        }
        assertThrows(IllegalArgumentException.class, () -> new VirtioFs("x", new FuseServer(blocking), null, 0));
        assertThrows(IllegalArgumentException.class, () -> new VirtioFs("x", new FuseServer(blocking), null,
                VirtioFs.MAX_REQUEST_QUEUES + 1));
        assertEquals(1, dev.requestQueues(), "one request queue by default, as libkrun");
    }

    private static final int PAGE = 4096;

    private long initAndOpen(String name, byte[] content) throws Exception {
        Files.write(dir.resolve(name), content);
        byte[] init = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN).putInt(7).putInt(31).putInt(0)
                .putInt(0).array();
        assertEquals(0, error(call(REQUESTS, request(Fuse.INIT, 0, init), 256)));
        ByteBuffer entry = call(REQUESTS, request(Fuse.LOOKUP, 1, (name + "\0").getBytes(StandardCharsets.UTF_8)), 256);
        assertEquals(0, error(entry));
        node = entry.getLong(Fuse.OUT_HEADER);
        byte[] open = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(2).putInt(0).array(); // O_RDWR
        ByteBuffer opened = call(REQUESTS, request(Fuse.OPEN, node, open), 256);
        assertEquals(0, error(opened));
        return opened.getLong(Fuse.OUT_HEADER);
    }

    private long node;

    private static byte[] pattern(int n, int seed) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (i * 7 + seed);
        }
        return b;
    }

    private byte[] readIn(long fh, long offset, int size) {
        byte[] body = ByteBuffer.allocate(Fuse.READ_IN).order(ByteOrder.LITTLE_ENDIAN).putLong(fh).putLong(offset)
                .putInt(size).array();
        return request(Fuse.READ, node, body);
    }

    /** Posts a READ whose reply room is {@code lens} (header first), as Linux does: header buffer, then pages. */
    private ByteBuffer read(long fh, long offset, int size, int... lens) {
        return submit(REQUESTS, List.of(readIn(fh, offset, size)), lens);
    }

    @Test
    void readFillsTheGuestPagesAfterTheHeader() throws Exception {
        byte[] content = pattern(3 * PAGE + 100, 1);
        long fh = initAndOpen("f", content);
        ByteBuffer r = read(fh, PAGE, 4 * PAGE, 16, PAGE, PAGE, PAGE, PAGE);
        assertEquals(0, error(r));
        assertEquals(16 + 2 * PAGE + 100, r.remaining(), "used length: header plus the bytes up to the end of file");
        assertEquals(16 + 2 * PAGE + 100, r.getInt(0), "out header len");
        byte[] got = new byte[2 * PAGE + 100];
        r.position(16).get(got);
        assertArrayEquals(java.util.Arrays.copyOfRange(content, PAGE, content.length), got);

        // Odd buffer shapes: the header split over two buffers, pages of uneven sizes; past the end: header only.
        r = read(fh, 10, 5000, 10, 6, 1000, 3, 4000, 200);
        assertEquals(0, error(r));
        assertEquals(16 + 5000, r.getInt(0));
        got = new byte[5000];
        r.position(16).get(got);
        assertArrayEquals(java.util.Arrays.copyOfRange(content, 10, 5010), got);
        r = read(fh, content.length + 5L, PAGE, 16, PAGE);
        assertEquals(0, error(r));
        assertEquals(16, r.remaining());
        // A READ larger than its room: only the room is filled; one larger than max_write: EINVAL.
        r = read(fh, 0, 4 * PAGE, 16, 100);
        assertEquals(16 + 100, r.getInt(0));
        r = read(fh, 0, Fuse.MAX_BUFFER + 1, 16, PAGE);
        assertEquals(Errnos.EINVAL, error(r));
    }

    private ByteBuffer write(long fh, long offset, byte[] data, int... pieces) {
        byte[] body = ByteBuffer.allocate(Fuse.WRITE_IN).order(ByteOrder.LITTLE_ENDIAN).putLong(fh).putLong(offset)
                .putInt(data.length).array();
        byte[] hdr = request(Fuse.WRITE, node, body);
        ByteBuffer.wrap(hdr).order(ByteOrder.LITTLE_ENDIAN).putInt(0, hdr.length + data.length);
        List<byte[]> readable = new java.util.ArrayList<>();
        readable.add(hdr);
        int off = 0;
        for (int p : pieces) {
            readable.add(java.util.Arrays.copyOfRange(data, off, off + p));
            off += p;
        }
        return submit(REQUESTS, readable, 24);
    }

    @Test
    void writeTakesTheDataFromTheGuestPages() throws Exception {
        long fh = initAndOpen("w", new byte[0]);
        byte[] data = pattern(2 * PAGE + 10, 3);
        ByteBuffer r = write(fh, 100, data, PAGE, PAGE, 10);
        assertEquals(0, error(r));
        assertEquals(data.length, r.getInt(16));
        byte[] file = Files.readAllBytes(dir.resolve("w"));
        assertEquals(100 + data.length, file.length);
        assertArrayEquals(data, java.util.Arrays.copyOfRange(file, 100, file.length));
        // The header's len shorter than the chain: not the direct path; the data is cut at len as before.
        byte[] body = ByteBuffer.allocate(Fuse.WRITE_IN).order(ByteOrder.LITTLE_ENDIAN).putLong(fh).putLong(0)
                .putInt(5).array();
        byte[] hdr = request(Fuse.WRITE, node, body);
        ByteBuffer.wrap(hdr).order(ByteOrder.LITTLE_ENDIAN).putInt(0, hdr.length + 5);
        ByteBuffer rr = submit(REQUESTS, List.of(hdr, pattern(9, 9)), 24);
        assertEquals(0, error(rr));
        assertEquals(5, rr.getInt(16));
        assertArrayEquals(java.util.Arrays.copyOf(pattern(9, 9), 5), java.util.Arrays.copyOf(Files.readAllBytes(dir.resolve("w")), 5));
        // A size beyond the data the header announces: EINVAL, nothing written.
        body = ByteBuffer.allocate(Fuse.WRITE_IN).order(ByteOrder.LITTLE_ENDIAN).putLong(fh).putLong(0)
                .putInt(PAGE + 1).array();
        hdr = request(Fuse.WRITE, node, body);
        ByteBuffer.wrap(hdr).order(ByteOrder.LITTLE_ENDIAN).putInt(0, hdr.length + PAGE);
        assertEquals(Errnos.EINVAL, error(submit(REQUESTS, List.of(hdr, new byte[PAGE]), 24)));
        assertEquals(100 + data.length, Files.size(dir.resolve("w")));
    }
}
