package dev.jkrun.devices.fs;

import static dev.jkrun.devices.fs.FuseClient.body;
import static org.junit.jupiter.api.Assertions.*;

import dev.jkrun.devices.fs.fuse.Fuse;
import dev.jkrun.devices.fs.fuse.FuseServer;
import dev.jkrun.devices.fs.passthrough.PassthroughFs;
import dev.jkrun.devices.fs.passthrough.PassthroughOptions;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Malformed requests, the no-exception boundary, and a large transfer. */
class FuseServerProtocolTest {
    @TempDir
    Path dir;
    PassthroughFs fs;
    FuseClient c;

    @BeforeEach
    void setUp() {
        fs = new PassthroughFs(dir, PassthroughOptions.defaults());
        c = new FuseClient(new FuseServer(fs));
        c.init();
    }

    @AfterEach
    void tearDown() { fs.close(); }

    static byte[] header(int len, int opcode, long unique, long node) {
        ByteBuffer b = ByteBuffer.allocate(Fuse.IN_HEADER).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(len).putInt(opcode).putLong(unique).putLong(node).putInt(0).putInt(0).putInt(0).putInt(0);
        return b.array();
    }

    @Test
    void truncatedHeader() {
        byte[] h = header(40, Fuse.GETATTR, 77, 1);
        FuseClient.Reply r = c.send(java.util.Arrays.copyOf(h, 20));
        assertEquals(Errnos.EINVAL, r.error());
        assertEquals(77, r.unique());
        assertEquals(Errnos.EINVAL, c.send(new byte[3]).error());
        assertEquals(Errnos.EINVAL, c.send(new byte[0]).error());
    }

    @Test
    void lengthFieldLargerOrSmallerThanBuffer() {
        ByteBuffer b = ByteBuffer.allocate(Fuse.IN_HEADER + 16).order(ByteOrder.LITTLE_ENDIAN);
        b.put(header(Fuse.IN_HEADER + 100, Fuse.GETATTR, 5, 1)).put(new byte[16]).flip();
        assertEquals(Errnos.EINVAL, c.send(b).error(), "len beyond buffer");
        assertEquals(Errnos.EINVAL, c.send(header(39, Fuse.GETATTR, 6, 1)).error(), "len below header");
        assertEquals(Errnos.EINVAL, c.send(header(0, Fuse.GETATTR, 6, 1)).error());
        assertEquals(Errnos.E2BIG, c.send(header(Fuse.MAX_REQUEST + 1, Fuse.GETATTR, 6, 1)).error());
        assertEquals(Errnos.E2BIG, c.send(header(-1, Fuse.GETATTR, 6, 1)).error(), "len 0xffffffff");
    }

    @Test
    void unknownOpcodesGetEnosys() {
        for (int op : new int[] {0, 7, 19, Fuse.GETLK, Fuse.SETLK, Fuse.BMAP, Fuse.POLL, Fuse.SETUPMAPPING,
                Fuse.SYNCFS, Fuse.TMPFILE, Fuse.STATX, 4096, -1}) {
            assertEquals(Errnos.ENOSYS, c.call(op, 1, new byte[16]).error(), "opcode " + op);
        }
    }

    @Test
    void namesWithoutNulAndShortBodies() {
        assertEquals(Errnos.EINVAL, c.call(Fuse.LOOKUP, 1, "abc".getBytes()).error());
        assertEquals(Errnos.EINVAL, c.call(Fuse.SYMLINK, 1, body().str("a").raw("target".getBytes())).error());
        assertEquals(Errnos.EINVAL, c.call(Fuse.RENAME, 1, body().i64(1).str("a").raw("b".getBytes())).error());
        assertEquals(Errnos.EINVAL, c.call(Fuse.MKDIR, 1, new byte[4]).error());
        assertEquals(Errnos.EINVAL, c.call(Fuse.SETATTR, 1, new byte[40]).error());
        assertEquals(Errnos.EINVAL, c.call(Fuse.READ, 1, new byte[8]).error());
        assertEquals(Errnos.EINVAL, c.call(Fuse.GETATTR, 1, new byte[4]).error());
        assertEquals(Errnos.EINVAL, c.call(Fuse.INIT, 0, new byte[4]).error());
        assertNull(c.call(Fuse.FORGET, 1, new byte[2]), "FORGET never gets a reply");
        assertNull(c.call(Fuse.INTERRUPT, 1, body().i64(3)), "INTERRUPT never gets a reply");
        assertFalse(Files.exists(dir.resolve("a")));
    }

    @Test
    void writeSizeBeyondItsData() {
        FuseClient.Reply cr = c.create(1, "f", 0102, 0100644).ok();
        long node = cr.nodeId(), fh = FuseClient.createdFh(cr);
        FuseClient.Reply r = c.call(Fuse.WRITE, node,
                body().i64(fh).i64(0).i32(1000).i32(0).i64(0).i32(0).i32(0).raw(new byte[10]));
        assertEquals(Errnos.EINVAL, r.error());
        assertEquals(Errnos.EINVAL, c.call(Fuse.WRITE, node,
                body().i64(fh).i64(0).i32(-1).i32(0).i64(0).i32(0).i32(0).raw(new byte[10])).error());
        assertEquals(Errnos.EINVAL, c.call(Fuse.IOCTL, 1,
                body().i64(0).i32(0).i32(0x7602).i64(0).i32(100).i32(0)).error(), "ioctl in_size beyond data");
        assertEquals(Errnos.EINVAL, c.read(node, fh, 0, (1 << 20) + 1).error(), "READ above max_read");
    }

    @Test
    void replyRoomTooSmall() {
        ByteBuffer req = ByteBuffer.wrap(header(40, Fuse.GETATTR, 1, 1));
        assertEquals(0, c.server.handle(req, ByteBuffer.allocate(8)));
        Files.exists(dir);
        FuseClient.Reply small = c.lookup(1, "nothing");
        assertEquals(Errnos.ENOENT, small.error());
        ByteBuffer getattr = ByteBuffer.allocate(56).order(ByteOrder.LITTLE_ENDIAN);
        getattr.put(header(56, Fuse.GETATTR, 9, 1)).put(new byte[16]).flip();
        ByteBuffer reply = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(16, c.server.handle(getattr, reply));
        assertEquals(-Errnos.ERANGE, reply.getInt(4));
    }

    @Test
    void oneGibibyteThroughWriteAndRead() throws Exception {
        FuseClient.Reply cr = c.create(1, "big", 0102, 0100644).ok();
        long node = cr.nodeId(), fh = FuseClient.createdFh(cr);
        int chunk = 1 << 20, chunks = 1024;
        byte[] data = new byte[chunk];
        new Random(1).nextBytes(data);
        MessageDigest written = MessageDigest.getInstance("SHA-256");
        ByteBuffer reply = ByteBuffer.allocateDirect(chunk + 4096).order(ByteOrder.LITTLE_ENDIAN);
        try {
            for (int i = 0; i < chunks; i++) {
                data[0] = (byte) i;
                data[1] = (byte) (i >> 8);
                ByteBuffer req = c.requestBuffer();
                req.putInt(Fuse.IN_HEADER + Fuse.WRITE_IN + chunk).putInt(Fuse.WRITE).putLong(c.nextUnique())
                        .putLong(node).putInt(0).putInt(0).putInt(0).putInt(0);
                req.putLong(fh).putLong((long) i * chunk).putInt(chunk).putInt(0).putLong(0).putInt(0).putInt(0);
                req.put(data).flip();
                reply.clear();
                assertEquals(24, c.server.handle(req, reply));
                assertEquals(0, reply.getInt(4));
                assertEquals(chunk, reply.getInt(16));
                written.update(data);
            }
            assertEquals((long) chunk * chunks, Files.size(dir.resolve("big")));
            MessageDigest read = MessageDigest.getInstance("SHA-256");
            byte[] back = new byte[chunk];
            for (int i = 0; i < chunks; i++) {
                ByteBuffer req = c.requestBuffer();
                req.putInt(Fuse.IN_HEADER + Fuse.READ_IN).putInt(Fuse.READ).putLong(c.nextUnique()).putLong(node)
                        .putInt(0).putInt(0).putInt(0).putInt(0);
                req.putLong(fh).putLong((long) i * chunk).putInt(chunk).putInt(0).putLong(0).putInt(0).putInt(0).flip();
                reply.clear();
                assertEquals(16 + chunk, c.server.handle(req, reply));
                reply.position(16).get(back);
                read.update(back);
            }
            assertArrayEquals(written.digest(), read.digest());
            c.release(Fuse.RELEASE, node, fh).ok();
        } finally {
            Files.deleteIfExists(dir.resolve("big"));
        }
    }
}
