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
import java.util.ArrayList;
import java.util.List;
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

    /** A backend that records what reaches it and succeeds, to see what the server lets through. */
    static final class Recording implements FileSystem {
        final List<String> calls = new ArrayList<>();

        @Override
        public int read(long node, long fh, long offset, ByteBuffer dst) {
            calls.add("read " + offset + " " + dst.remaining());
            return 0;
        }

        @Override
        public int write(long node, long fh, long offset, ByteBuffer src, int writeFlags) {
            calls.add("write " + offset + " " + src.remaining());
            return src.remaining();
        }

        @Override
        public void fallocate(long node, long fh, int mode, long offset, long length) {
            calls.add("fallocate " + offset + " " + length);
        }

        @Override
        public long lseek(long node, long fh, long offset, int whence) {
            calls.add("lseek " + offset + " " + whence);
            return 0;
        }

        @Override
        public Attr setattr(Context ctx, long node, SetAttr s) {
            calls.add("setattr " + s.size());
            return new Attr(node, 0, 0, 0, 0, 0, 0, 0, 0, 0100644, 1, 0, 0, 0, 4096);
        }

        @Override
        public long copyFileRange(long nodeIn, long fhIn, long offIn, long nodeOut, long fhOut, long offOut, long len,
                                  int flags) {
            calls.add("copy " + offIn + " " + offOut + " " + len + " " + flags);
            return 0;
        }

        @Override
        public IoctlResult ioctl(long node, long fh, int flags, int cmd, long arg, ByteBuffer in, int outSize) {
            calls.add("ioctl " + Integer.toHexString(cmd));
            return new IoctlResult(0, new byte[0]);
        }

        /** The calls since the last look. */
        List<String> take() {
            List<String> r = List.copyOf(calls);
            calls.clear();
            return r;
        }
    }

    static final long MAX = Long.MAX_VALUE;

    FuseClient.Reply read(FuseClient r, long offset, int size) { return r.read(2, 1, offset, size); }

    FuseClient.Reply write(FuseClient r, long offset, int size) { return r.write(2, 1, offset, new byte[size]); }

    FuseClient.Reply fallocate(FuseClient r, long offset, long length) {
        return r.call(Fuse.FALLOCATE, 2, body().i64(1).i64(offset).i64(length).i32(0).i32(0));
    }

    FuseClient.Reply copy(FuseClient r, long offIn, long offOut, long len, long flags) {
        return r.call(Fuse.COPY_FILE_RANGE, 2, body().i64(1).i64(offIn).i64(3).i64(1).i64(offOut).i64(len).i64(flags));
    }

    /** 64-bit offsets and lengths are checked exactly (as Linux's syscalls would) before any backend sees them. */
    @Test
    void offsetsAndLengthsAreCheckedBeforeTheBackend() {
        Recording b = new Recording();
        FuseClient r = new FuseClient(new FuseServer(b));
        r.init();
        assertEquals(Errnos.EINVAL, read(r, -1, 10).error());
        assertEquals(Errnos.EINVAL, read(r, MAX - 99, 100).error(), "offset + size beyond 2^63-1");
        assertEquals(List.of(), b.take());
        read(r, MAX - 100, 100).ok();
        assertEquals(List.of("read " + (MAX - 100) + " 100"), b.take());

        assertEquals(Errnos.EINVAL, write(r, -1, 4).error());
        assertEquals(Errnos.EINVAL, write(r, MAX - 3, 4).error());
        assertEquals(List.of(), b.take());
        write(r, MAX - 4, 4).ok();
        assertEquals(List.of("write " + (MAX - 4) + " 4"), b.take());

        assertEquals(Errnos.EINVAL, fallocate(r, -1, 10).error());
        assertEquals(Errnos.EINVAL, fallocate(r, 0, 0).error());
        assertEquals(Errnos.EINVAL, fallocate(r, 0, -1).error(), "length 2^64-1");
        assertEquals(Errnos.EFBIG, fallocate(r, MAX - 1, 2).error());
        assertEquals(List.of(), b.take());
        fallocate(r, 1, MAX - 1).ok();
        assertEquals(List.of("fallocate 1 " + (MAX - 1)), b.take());

        for (int whence : new int[] {-1, 5, 1 << 16}) {
            assertEquals(Errnos.EINVAL, r.call(Fuse.LSEEK, 2, body().i64(1).i64(0).i32(whence).i32(0)).error());
        }
        assertEquals(List.of(), b.take());
        r.call(Fuse.LSEEK, 2, body().i64(1).i64(-5).i32(1).i32(0)).ok(); // SEEK_CUR back: a signed offset
        assertEquals(List.of("lseek -5 1"), b.take());

        assertEquals(Errnos.EINVAL, r.setattr(2, SetAttr.FATTR_SIZE, 0, -1, 0, 0, 0, 0, 0).error(), "size 2^64-1");
        assertEquals(List.of(), b.take());
        r.setattr(2, SetAttr.FATTR_SIZE, 0, MAX, 0, 0, 0, 0, 0).ok();
        r.setattr(2, SetAttr.FATTR_MODE, 0, -1, 0, 0, 0100644, 0, 0).ok(); // size unused without FATTR_SIZE
        assertEquals(List.of("setattr " + MAX, "setattr -1"), b.take());

        assertEquals(Errnos.EINVAL, copy(r, -1, 0, 10, 0).error());
        assertEquals(Errnos.EINVAL, copy(r, 0, Long.MIN_VALUE, 10, 0).error());
        assertEquals(Errnos.EINVAL, copy(r, 0, 0, 10, 1).error(), "copy_file_range takes no flags");
        assertEquals(Errnos.EINVAL, copy(r, 0, 0, 10, 1L << 32).error(), "not even in the high half");
        assertEquals(Errnos.EOVERFLOW, copy(r, MAX - 9, 0, 10, 0).error());
        assertEquals(Errnos.EOVERFLOW, copy(r, 0, MAX, 1, 0).error());
        assertEquals(List.of(), b.take());
        copy(r, 0, 0, -1, 0).ok(); // len 2^64-1: one request copies at most MAX_COPY_FILE_RANGE
        copy(r, 1, 2, 7, 0).ok();
        assertEquals(List.of("copy 0 0 " + Fuse.MAX_COPY_FILE_RANGE + " 0", "copy 1 2 7 0"), b.take());
    }

    @Test
    void readOnlyServerRefusesIoctlsButTheExitStatus() {
        Recording b = new Recording();
        FuseClient r = new FuseClient(new FuseServer(b, true));
        r.init();
        int fsIocSetflags = 0x40086602;
        assertEquals(Errnos.EROFS, r.call(Fuse.IOCTL, 2, body().i64(1).i32(0).i32(fsIocSetflags).i64(0).i32(8)
                .i32(0).raw(new byte[8])).error());
        assertEquals(Errnos.EROFS, r.call(Fuse.IOCTL, 1, body().i64(1).i32(Fuse.IOCTL_DIR).i32(0x5401).i64(0).i32(0)
                .i32(0)).error());
        assertEquals(List.of(), b.take());
        r.call(Fuse.IOCTL, 1, body().i64(0).i32(Fuse.IOCTL_DIR).i32(FileSystem.IOCTL_EXIT_CODE).i64(3).i32(0).i32(0))
                .ok();
        assertEquals(List.of("ioctl 7602"), b.take(), "the exit status of jkrun's init still gets through");
    }

    /** A WRITE split as virtio-fs sends it directly: in_header and write_in in the request, the data apart. */
    private int directWrite(FuseServer server, int len, long node, long fh, int size, int extLen, byte[] data, ByteBuffer rep) {
        ByteBuffer req = ByteBuffer.allocateDirect(Fuse.IN_HEADER + Fuse.WRITE_IN).order(ByteOrder.LITTLE_ENDIAN);
        req.put(header(len, Fuse.WRITE, 9, node)).putShort(Fuse.IN_HEADER_TOTAL_EXTLEN, (short) extLen);
        req.putLong(fh).putLong(0).putInt(size).putInt(0).putLong(0).putInt(0).putInt(0).flip();
        ByteBuffer d = ByteBuffer.allocateDirect(data.length).put(data).flip();
        return server.handleDirect(req, rep.clear(), new ByteBuffer[] {d}, data.length);
    }

    @Test
    void directWriteChecksItsFraming() throws Exception {
        java.nio.file.Files.writeString(dir.resolve("f"), "");
        long node = c.lookupNode(1, "f");
        long fh = c.openFh(node, 2);
        ByteBuffer rep = ByteBuffer.allocateDirect(256).order(ByteOrder.LITTLE_ENDIAN);
        int hdrs = Fuse.IN_HEADER + Fuse.WRITE_IN;
        assertEquals(24, directWrite(c.server, hdrs + 3, node, fh, 3, 0, new byte[] {1, 2, 3}, rep));
        assertEquals(0, rep.getInt(4));
        assertEquals(3, rep.getInt(16));
        assertEquals(3, java.nio.file.Files.size(dir.resolve("f")));
        // len must cover exactly the headers and the data; extensions are not taken with direct data; size within it.
        directWrite(c.server, hdrs + 2, node, fh, 2, 0, new byte[] {1, 2, 3}, rep);
        assertEquals(-Errnos.EINVAL, rep.getInt(4), "len shorter than the data");
        directWrite(c.server, hdrs + 3, node, fh, 3, 1, new byte[] {1, 2, 3}, rep);
        assertEquals(-Errnos.EINVAL, rep.getInt(4), "extensions");
        directWrite(c.server, hdrs + 3, node, fh, 4, 0, new byte[] {1, 2, 3}, rep);
        assertEquals(-Errnos.EINVAL, rep.getInt(4), "size beyond the data");
        assertEquals(3, java.nio.file.Files.size(dir.resolve("f")));
        // A read-only server refuses it before the backend sees it.
        FuseClient ro = new FuseClient(new FuseServer(fs, true));
        ro.init();
        directWrite(ro.server, hdrs + 3, node, fh, 3, 0, new byte[] {7, 7, 7}, rep);
        assertEquals(-Errnos.EROFS, rep.getInt(4));
        assertArrayEquals(new byte[] {1, 2, 3}, java.nio.file.Files.readAllBytes(dir.resolve("f")));
    }

    @Test
    void directReadWritesOnlyTheHeaderIntoTheReply() throws Exception {
        java.nio.file.Files.write(dir.resolve("r"), new byte[] {5, 6, 7, 8, 9});
        long node = c.lookupNode(1, "r");
        long fh = c.openFh(node, 0);
        ByteBuffer req = ByteBuffer.allocateDirect(Fuse.IN_HEADER + Fuse.READ_IN).order(ByteOrder.LITTLE_ENDIAN);
        req.put(header(Fuse.IN_HEADER + Fuse.READ_IN, Fuse.READ, 4, node)).putLong(fh).putLong(1).putInt(3).put(new byte[20]).flip();
        ByteBuffer rep = ByteBuffer.allocateDirect(Fuse.OUT_HEADER).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer a = ByteBuffer.allocate(2), b = ByteBuffer.allocateDirect(8); // heap and direct alike
        int got = c.server.handleDirect(req, rep, new ByteBuffer[] {a, b}, 0);
        assertEquals(0, rep.getInt(4), "errno");
        assertEquals(Fuse.OUT_HEADER + 3, got);
        assertEquals(Fuse.OUT_HEADER + 3, rep.getInt(0));
        assertEquals(0, rep.getInt(4));
        assertArrayEquals(new byte[] {6, 7}, a.array());
        assertEquals(8, b.get(0));
        assertEquals(1, b.position(), "the size bounds what is read");
        // Any other request through handleDirect is answered in the reply alone.
        ByteBuffer getattr = ByteBuffer.allocate(Fuse.IN_HEADER + 16).order(ByteOrder.LITTLE_ENDIAN);
        getattr.put(header(Fuse.IN_HEADER + 16, Fuse.GETATTR, 5, node)).put(new byte[16]).flip();
        ByteBuffer big = ByteBuffer.allocateDirect(256).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(Fuse.OUT_HEADER + Fuse.ATTR_OUT, c.server.handleDirect(getattr, big, new ByteBuffer[0], 0));
        assertEquals(0, big.getInt(4));
    }

    @Test
    void directPathsDoNotTrustTheBackendsCounts() throws Exception {
        // A backend that claims more than it read, and one that writes half of each buffer.
        FileSystem liar = new FileSystem() {
            @Override
            public int read(long node, long fh, long offset, ByteBuffer dst) { return dst.remaining() + 50; }

            @Override
            public int write(long node, long fh, long offset, ByteBuffer src, int writeFlags) {
                int n = src.remaining() / 2;
                src.position(src.position() + n);
                return n;
            }
        };
        FuseClient l = new FuseClient(new FuseServer(liar));
        l.init();
        ByteBuffer req = ByteBuffer.allocateDirect(Fuse.IN_HEADER + Fuse.READ_IN).order(ByteOrder.LITTLE_ENDIAN);
        req.put(header(Fuse.IN_HEADER + Fuse.READ_IN, Fuse.READ, 4, 1)).putLong(0).putLong(0).putInt(8).put(new byte[20]).flip();
        ByteBuffer rep = ByteBuffer.allocateDirect(256).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(Fuse.OUT_HEADER, l.server.handleDirect(req, rep.limit(Fuse.OUT_HEADER),
                new ByteBuffer[] {ByteBuffer.allocateDirect(4), ByteBuffer.allocateDirect(4)}, 0));
        assertEquals(-Errnos.EIO, rep.getInt(4));
        // The default vectored write stops at the first short write: 2 of the first buffer's 4 bytes, not 2 + 2.
        assertEquals(2, liar.write(1, 0, 0, new ByteBuffer[] {ByteBuffer.allocate(4), ByteBuffer.allocate(4)}, 0));
    }
}
