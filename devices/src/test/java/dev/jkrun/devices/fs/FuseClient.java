package dev.jkrun.devices.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.jkrun.devices.fs.fuse.Fuse;
import dev.jkrun.devices.fs.fuse.FuseServer;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/** Test driver playing the guest kernel: builds FUSE requests and parses replies. */
public final class FuseClient {
    public final FuseServer server;
    private long unique = 1;
    public int uid, gid;
    private final ByteBuffer req = ByteBuffer.allocateDirect(Fuse.MAX_REQUEST + 8192).order(ByteOrder.LITTLE_ENDIAN);
    private final ByteBuffer rep = ByteBuffer.allocateDirect(Fuse.MAX_BUFFER + 8192).order(ByteOrder.LITTLE_ENDIAN);

    public FuseClient(FuseServer server) { this.server = server; }

    /** A reply: errno (positive, 0 = ok), and the body after the out header. */
    public record Reply(int error, long unique, int length, ByteBuffer body) {
        public Reply ok() {
            assertEquals(0, error, "errno " + error);
            return this;
        }

        public long nodeId() { return body.getLong(0); }

        /** fuse_attr at {@code base}: ino@0 size@8 mode@60 nlink@64 uid@68 gid@72 */
        public long attrSize(int base) { return body.getLong(base + 8); }

        public int attrMode(int base) { return body.getInt(base + 60); }

        public long attrIno(int base) { return body.getLong(base); }

        public byte[] bytes() {
            byte[] b = new byte[body.remaining()];
            body.duplicate().get(b);
            return b;
        }
    }

    /** A little-endian body builder. */
    public static final class Body {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();
        private final ByteBuffer tmp = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);

        public Body i32(long v) {
            tmp.clear();
            tmp.putInt((int) v);
            out.write(tmp.array(), 0, 4);
            return this;
        }

        public Body i64(long v) {
            tmp.clear();
            tmp.putLong(v);
            out.write(tmp.array(), 0, 8);
            return this;
        }

        public Body str(String s) { return raw(s.getBytes(StandardCharsets.UTF_8)).raw(new byte[] {0}); }

        public Body raw(byte[] b) {
            out.write(b, 0, b.length);
            return this;
        }

        public byte[] bytes() { return out.toByteArray(); }
    }

    public static Body body() { return new Body(); }

    public Reply call(int opcode, long node, Body body) { return call(opcode, node, body.bytes()); }

    public Reply call(int opcode, long node, byte[] body) {
        req.clear();
        long u = unique++;
        req.putInt(Fuse.IN_HEADER + body.length).putInt(opcode).putLong(u).putLong(node).putInt(uid).putInt(gid)
                .putInt(42).putInt(0);
        req.put(body);
        req.flip();
        return send(req);
    }

    /** A request with extensions after its body ({@code ext} a multiple of 8 bytes; total_extlen says how many). */
    public Reply callWithExtensions(int opcode, long node, byte[] body, byte[] ext) {
        req.clear();
        long u = unique++;
        req.putInt(Fuse.IN_HEADER + body.length + ext.length).putInt(opcode).putLong(u).putLong(node).putInt(uid)
                .putInt(gid).putInt(42).putShort((short) (ext.length / 8)).putShort((short) 0);
        req.put(body).put(ext);
        req.flip();
        return send(req);
    }

    /** The supplementary-group extension as Linux sends it with FUSE_CREATE_SUPP_GROUP: one group. */
    public static byte[] suppGroup(int gid) {
        return body().i32(16).i32(Fuse.EXT_GROUPS).i32(1).i32(gid).bytes();
    }

    /** Sends raw request bytes; returns null when the server wrote no reply. */
    public Reply send(ByteBuffer request) {
        rep.clear();
        int n = server.handle(request, rep);
        if (n == 0) {
            return null;
        }
        assertEquals(n, rep.getInt(0), "out header len");
        ByteBuffer body = rep.duplicate().order(ByteOrder.LITTLE_ENDIAN).position(Fuse.OUT_HEADER).limit(n).slice()
                .order(ByteOrder.LITTLE_ENDIAN);
        return new Reply(-rep.getInt(4), rep.getLong(8), n, body);
    }

    public Reply send(byte[] raw) {
        ByteBuffer b = ByteBuffer.allocate(raw.length);
        b.put(raw).flip();
        return send(b);
    }

    /** Direct access for the large-transfer test: the request buffer (cleared). */
    public ByteBuffer requestBuffer() {
        req.clear();
        return req;
    }

    public long nextUnique() { return unique++; }

    // ------------------------------------------------------------ conveniences

    public Reply init(int minor, long flags) {
        return call(Fuse.INIT, 0, body().i32(7).i32(minor).i32(128 * 1024).i32(flags).i32(0).raw(new byte[44]));
    }

    public Reply init() { return init(31, 0xFFFF_FFFFL).ok(); }

    public Reply lookup(long parent, String name) { return call(Fuse.LOOKUP, parent, body().str(name)); }

    public long lookupNode(long parent, String name) { return lookup(parent, name).ok().nodeId(); }

    public Reply getattr(long node) { return call(Fuse.GETATTR, node, body().i32(0).i32(0).i64(0)); }

    public Reply mkdir(long parent, String name, int mode) {
        return call(Fuse.MKDIR, parent, body().i32(mode).i32(0).str(name));
    }

    /** CREATE: reply = entry_out (128) + open_out (16). */
    public Reply create(long parent, String name, int flags, int mode) {
        return call(Fuse.CREATE, parent, body().i32(flags).i32(mode).i32(0).i32(0).str(name));
    }

    public static long createdFh(Reply r) { return r.body().getLong(Fuse.ENTRY_OUT); }

    public Reply open(long node, int flags) { return call(Fuse.OPEN, node, body().i32(flags).i32(0)); }

    public long openFh(long node, int flags) { return open(node, flags).ok().body().getLong(0); }

    public Reply opendir(long node) { return call(Fuse.OPENDIR, node, body().i32(0).i32(0)); }

    public Reply read(long node, long fh, long offset, int size) {
        return call(Fuse.READ, node, body().i64(fh).i64(offset).i32(size).i32(0).i64(0).i32(0).i32(0));
    }

    public Reply write(long node, long fh, long offset, byte[] data) {
        return call(Fuse.WRITE, node, body().i64(fh).i64(offset).i32(data.length).i32(0).i64(0).i32(0).i32(0).raw(data));
    }

    public Reply readdir(int opcode, long node, long fh, long offset, int size) {
        return call(opcode, node, body().i64(fh).i64(offset).i32(size).i32(0).i64(0).i32(0).i32(0));
    }

    public Reply release(int opcode, long node, long fh) {
        return call(opcode, node, body().i64(fh).i32(0).i32(0).i64(0));
    }

    public Reply setattr(long node, int valid, long fh, long size, long atime, long mtime, int mode, int uid, int gid) {
        return call(Fuse.SETATTR, node, body().i32(valid).i32(0).i64(fh).i64(size).i64(0).i64(atime).i64(mtime).i64(0)
                .i32(0).i32(0).i32(0).i32(mode).i32(0).i32(uid).i32(gid).i32(0));
    }

    public Reply unlink(long parent, String name) { return call(Fuse.UNLINK, parent, body().str(name)); }

    public Reply forget(long node, long n) { return call(Fuse.FORGET, node, body().i64(n)); }
}
