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
import dev.jkrun.memory.HeapGuestMemory;
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

/** virtio-fs through its queues: the request queue serves FUSE, the hiprio queue only what Linux sends there. */
class VirtioFsTest {
    static final long TIMEOUT = 5000;
    static final int HIPRIO = 0, REQUESTS = 1;

    @TempDir
    Path dir;
    final HeapGuestMemory mem = HeapGuestMemory.of(0, 8 << 20);
    final CountingTrigger irq = new CountingTrigger();
    PassthroughFs fs;
    VirtioFs dev;
    MmioTransport transport;
    MockDriver driver;
    long unique = 1;

    @BeforeEach
    void setUp() throws Exception {
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
    }

    byte[] request(int opcode, long node, byte[] body) {
        return ByteBuffer.allocate(Fuse.IN_HEADER + body.length).order(ByteOrder.LITTLE_ENDIAN)
                .putInt(Fuse.IN_HEADER + body.length).putInt(opcode).putLong(unique++).putLong(node).putInt(0)
                .putInt(0).putInt(1).putInt(0).put(body).array();
    }

    /** Submits one request; returns the reply (empty when the device wrote none). */
    ByteBuffer call(int queue, byte[] request, int replyRoom) {
        DriverQueue q = driver.queue(queue);
        int head = replyRoom > 0 ? q.add(List.of(request), replyRoom) : q.add(List.of(request));
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
}
