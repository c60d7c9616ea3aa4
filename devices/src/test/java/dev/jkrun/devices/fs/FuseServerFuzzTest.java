package dev.jkrun.devices.fs;

import static org.junit.jupiter.api.Assertions.*;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jkrun.devices.fs.fuse.Fuse;
import dev.jkrun.devices.fs.fuse.FuseServer;
import dev.jkrun.devices.fs.passthrough.PassthroughFs;
import dev.jkrun.devices.fs.passthrough.PassthroughOptions;
import dev.jkrun.libc.NativeCallException;
import dev.jkrun.libc.PosixFs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Stream;

/**
 * Sequences of FUSE requests from a hostile guest, through the server's byte interface (what the virtio-fs queues
 * hand it), against a passthrough share beside an "outside" directory of canaries that a symlink in the share
 * points at. Oracles: the canaries never change; the process holds no descriptor outside the share, none that is
 * open (not O_PATH) on anything but a regular file or directory, and no more into the share than the caps allow,
 * and none once the share is closed; every request is answered within {@link #REQUEST_TIMEOUT_SECONDS} with a
 * well-formed reply; no guest-made setuid program, device node or host-privileged xattr appears; a read-only share
 * does not change at all. Replayed from the committed inputs in every test run; fuzzed with
 * {@code fuzz/run FuseServerFuzzTest}.
 */
class FuseServerFuzzTest {
    static final int MAX_REQUESTS = 48;
    static final int MAX_INODES = 16, MAX_HANDLES = 8;
    static final long REQUEST_TIMEOUT_SECONDS = 5;
    /** Descriptor scans every this many requests (each costs a /proc walk). */
    static final int SCAN_EVERY = 8;
    static final int O_PATH = 010000000;
    static final int S_IFMT = 0170000, S_IFREG = 0100000, S_IFDIR = 0040000, S_IFCHR = 0020000, S_IFBLK = 0060000;

    static final String[] NAMES = {"a", "d", "b", "out", "outdir", "fifo", "null", "exe", "v.krun", "new", "n2", "..",
        ".", "", "/", "a/b", "../outside", "canary", "x".repeat(255), "y".repeat(256), "proc", "3"};
    static final String[] TARGETS = {"../outside/canary", "/etc/passwd", "a", "outdir/canary", "../../..", ""};
    static final String[] XATTRS = {"user.a", "trusted.overlay.opaque", "security.capability", "security.selinux",
        "user.jkrun.security.capability", "user.jkrun.trusted.x", "system.posix_acl_access", "trusted.", ""};
    /** 64-bit values that must be refused or clamped (negative as u64, or overflowing with any length > 0). */
    static final long[] EDGES = {-1, Long.MIN_VALUE, Long.MAX_VALUE, -4096, 0x8000_0000_0000_0001L};
    static final int[] OPCODES = {Fuse.LOOKUP, Fuse.FORGET, Fuse.GETATTR, Fuse.SETATTR, Fuse.READLINK, Fuse.SYMLINK,
        Fuse.MKNOD, Fuse.MKDIR, Fuse.UNLINK, Fuse.RMDIR, Fuse.RENAME, Fuse.LINK, Fuse.OPEN, Fuse.READ, Fuse.WRITE,
        Fuse.STATFS, Fuse.RELEASE, Fuse.FSYNC, Fuse.SETXATTR, Fuse.GETXATTR, Fuse.LISTXATTR, Fuse.REMOVEXATTR,
        Fuse.FLUSH, Fuse.INIT, Fuse.OPENDIR, Fuse.READDIR, Fuse.RELEASEDIR, Fuse.FSYNCDIR, Fuse.ACCESS, Fuse.CREATE,
        Fuse.INTERRUPT, Fuse.DESTROY, Fuse.IOCTL, Fuse.BATCH_FORGET, Fuse.FALLOCATE, Fuse.READDIRPLUS, Fuse.RENAME2,
        Fuse.LSEEK, Fuse.COPY_FILE_RANGE, Fuse.SETUPMAPPING, Fuse.REMOVEMAPPING, -1 /* raw bytes */};
    /** The DAX window: 4 granules of host memory (reserved, not committed) the fuzzed requests map files into. */
    static final long G = dev.jkrun.devices.fs.dax.HostDaxWindow.GRANULE, WINDOW = 4 * G;

    /** Runs the requests, so that one that blocks is seen; replaced when one did (its thread stays stuck). */
    static ExecutorService worker = newWorker();
    /** Each worker thread's request and reply room, as each virtio-fs queue has its own. */
    static final ThreadLocal<ByteBuffer[]> BUFFERS = ThreadLocal.withInitial(() -> new ByteBuffer[] {
        ByteBuffer.allocateDirect(Fuse.MAX_REQUEST + 8192).order(ByteOrder.LITTLE_ENDIAN),
        ByteBuffer.allocateDirect(Fuse.MAX_BUFFER + 8192).order(ByteOrder.LITTLE_ENDIAN)});
    static final boolean ROOT = PosixFs.geteuid() == 0;
    /** {@code -Djkrun.fuzz.trace=true} prints every request and its errno (to see what an input does). */
    static final boolean TRACE = Boolean.getBoolean("jkrun.fuzz.trace");
    static Path base, outside;
    static String outsideState;
    static int shares;

    @FuzzTest(maxDuration = "1h")
    void readWriteShareStaysContained(FuzzedDataProvider data) throws Exception {
        new Session(false).run(data);
    }

    @FuzzTest(maxDuration = "1h")
    void readOnlyShareNeverChanges(FuzzedDataProvider data) throws Exception {
        new Session(true).run(data);
    }

    static ExecutorService newWorker() {
        return Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "fuzz-fuse-worker");
            t.setDaemon(true);
            return t;
        });
    }

    static synchronized void setUpOnce() throws IOException {
        if (base != null) {
            return;
        }
        base = Files.createTempDirectory("jkrun-fuse-fuzz");
        Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(base)));
        outside = Files.createDirectory(base.resolve("outside"));
        Files.writeString(outside.resolve("canary"), "CANARY");
        Files.createDirectory(outside.resolve("dir"));
        Files.writeString(outside.resolve("dir/secret"), "SECRET");
        for (Path p : List.of(outside.resolve("canary"), outside.resolve("dir/secret"))) {
            Files.setLastModifiedTime(p, FileTime.fromMillis(1_000_000_000_000L));
        }
        outsideState = state(outside);
    }

    /** Everything about a tree but atimes: names, types, modes, owners, sizes, mtimes, ctimes, contents, links. */
    static String state(Path root) throws IOException {
        List<String> lines = new ArrayList<>();
        try (Stream<Path> w = Files.walk(root)) {
            for (Path p : (Iterable<Path>) w::iterator) {
                StringBuilder line = new StringBuilder(root.relativize(p).toString());
                for (String a : new String[] {"mode", "uid", "gid", "size", "rdev", "nlink"}) {
                    line.append(' ').append(Files.getAttribute(p, "unix:" + a, LinkOption.NOFOLLOW_LINKS));
                }
                line.append(' ').append(Files.getLastModifiedTime(p, LinkOption.NOFOLLOW_LINKS).toMillis());
                line.append(' ').append(((FileTime) Files.getAttribute(p, "unix:ctime", LinkOption.NOFOLLOW_LINKS))
                        .to(TimeUnit.NANOSECONDS));
                if (Files.isSymbolicLink(p)) {
                    line.append(" -> ").append(Files.readSymbolicLink(p));
                } else if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
                    line.append(' ').append(sha256(Files.readAllBytes(p)));
                }
                lines.add(line.toString());
            }
        }
        lines.sort(null);
        return String.join("\n", lines);
    }

    static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    static void deleteTree(Path root) {
        if (root == null || !Files.exists(root, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (Stream<Path> w = Files.walk(root)) {
            w.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.delete(p);
                } catch (IOException ignored) {
                    // a directory the guest made unwritable: the next attempt or the shutdown hook (as root) gets it
                }
            });
        } catch (IOException | java.io.UncheckedIOException ignored) {
            // raced with nothing: the share is ours alone
        }
    }

    static Set<String> fds() {
        Set<String> s = new TreeSet<>();
        try (Stream<Path> l = Files.list(Path.of("/proc/self/fd"))) {
            l.forEach(p -> s.add(p.getFileName().toString()));
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        return s;
    }

    /** One input: a fresh share, a sequence of requests, the oracles. */
    static final class Session {
        final boolean readOnly;
        final List<Long> nodes = new ArrayList<>(List.of(1L));
        final List<Long> fhs = new ArrayList<>();
        Path share;
        PassthroughFs fs;
        FuseServer server;
        dev.jkrun.devices.fs.dax.HostDaxWindow window;
        long unique = 1;
        Set<String> fdsBefore;
        String shareBefore;
        long nullIno = -1;

        Session(boolean readOnly) { this.readOnly = readOnly; }

        void run(FuzzedDataProvider data) throws Exception {
            setUpOnce();
            share = Files.createDirectory(base.resolve("share" + shares++));
            try {
                populate();
                shareBefore = readOnly ? state(share) : null;
                fdsBefore = fds();
                fs = new PassthroughFs(share, PassthroughOptions.builder().readOnly(readOnly)
                        .virtualFile("v.krun", "virtual".getBytes(StandardCharsets.UTF_8), 0755)
                        .descriptorCaps(MAX_INODES, MAX_HANDLES).build());
                window = new dev.jkrun.devices.fs.dax.HostDaxWindow(dev.jkrun.libc.AnonymousMapping.map(WINDOW), 0);
                server = new FuseServer(fs, readOnly, window);
                try {
                    send(request(Fuse.INIT, 0, 0, 0, init(31)), false);
                    for (int n = 0; n < MAX_REQUESTS && data.remainingBytes() > 0; n++) {
                        step(data);
                        if (n % SCAN_EVERY == SCAN_EVERY - 1) {
                            checkDescriptors(false);
                        }
                    }
                    checkDescriptors(false);
                } finally {
                    window.close();
                    fs.close();
                }
                checkDescriptors(true);
                assertEquals(outsideState, state(outside), "the outside canaries changed");
                if (readOnly) {
                    assertEquals(shareBefore, state(share), "the read-only share changed");
                } else {
                    checkNoPrivilegesPlanted();
                }
            } finally {
                deleteTree(share);
            }
        }

        void populate() throws IOException {
            Files.writeString(share.resolve("a"), "alpha");
            Files.createDirectory(share.resolve("d"));
            Files.writeString(share.resolve("d/b"), "beta");
            Files.writeString(share.resolve("exe"), "#!/bin/sh\n");
            Files.setAttribute(share.resolve("exe"), "unix:mode", 0755);
            Files.createSymbolicLink(share.resolve("out"), Path.of("../outside/canary"));
            Files.createSymbolicLink(share.resolve("outdir"), Path.of("../outside"));
            PosixFs.mknodat(null, PosixFs.bytes(share.resolve("fifo").toString()), 0010644, 0);
            if (ROOT) {
                PosixFs.mknodat(null, PosixFs.bytes(share.resolve("null").toString()), S_IFCHR | 0666, 0x103);
                nullIno = (long) Files.getAttribute(share.resolve("null"), "unix:ino", LinkOption.NOFOLLOW_LINKS);
            }
        }

        // ------------------------------------------------------------ oracles

        /** After close: no descriptor into the share at all. */
        void checkDescriptors(boolean closed) throws IOException {
            String shareDir = share.toString(), outsideDir = outside.toString();
            int intoShare = 0;
            for (String fd : fds()) {
                if (fdsBefore.contains(fd)) {
                    continue;
                }
                Path link = Path.of("/proc/self/fd", fd);
                String target;
                int mode, flags;
                try {
                    target = Files.readSymbolicLink(link).toString();
                    if (!target.startsWith(base.toString())) {
                        continue; // the JVM's own
                    }
                    flags = Integer.parseInt(Files.readAllLines(Path.of("/proc/self/fdinfo", fd)).stream()
                            .filter(l -> l.startsWith("flags:")).findFirst().orElseThrow().substring(6).trim(), 8);
                    mode = (int) Files.getAttribute(link, "unix:mode");
                } catch (IOException | RuntimeException gone) {
                    continue; // closed meanwhile by another thread of the JVM
                }
                assertFalse(target.startsWith(outsideDir), "descriptor " + fd + " outside the share: " + target);
                assertTrue(target.startsWith(shareDir), "descriptor " + fd + " on " + target);
                assertFalse(closed, "descriptor " + fd + " on " + target + " left after close");
                int type = mode & S_IFMT;
                assertTrue((flags & O_PATH) != 0 || type == S_IFREG || type == S_IFDIR, "descriptor " + fd
                        + " open on a special file " + target + " (mode 0" + Integer.toOctalString(mode) + ")");
                intoShare++;
            }
            assertTrue(intoShare <= MAX_INODES + MAX_HANDLES + 1, intoShare + " descriptors into the share");
        }

        void checkNoPrivilegesPlanted() throws IOException {
            try (Stream<Path> w = Files.walk(share)) {
                for (Path p : (Iterable<Path>) w::iterator) {
                    int mode = (int) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
                    int type = mode & S_IFMT;
                    assertEquals(0, mode & (type == S_IFDIR ? 04000 : 06000), "setuid/setgid on " + p);
                    boolean hostNull = (long) Files.getAttribute(p, "unix:ino", LinkOption.NOFOLLOW_LINKS) == nullIno;
                    if ((type == S_IFCHR || type == S_IFBLK) && !hostNull) {
                        assertEquals(S_IFCHR, type, "block device " + p);
                        assertEquals(0, (long) Files.getAttribute(p, "unix:rdev", LinkOption.NOFOLLOW_LINKS),
                                "device node " + p);
                    }
                    if (Files.isSymbolicLink(p)) {
                        continue;
                    }
                    byte[] list = new byte[65536];
                    int n;
                    try {
                        n = PosixFs.listxattr(PosixFs.bytes(p.toString()), list, list.length);
                    } catch (NativeCallException e) {
                        continue;
                    }
                    String names = new String(list, 0, n, StandardCharsets.ISO_8859_1);
                    for (String name : names.split("\0")) {
                        assertFalse(name.startsWith("trusted.") || name.startsWith("security."),
                                "host-privileged xattr " + name + " on " + p);
                    }
                }
            }
        }

        // ------------------------------------------------------------ requests

        /**
         * A READ or WRITE through {@link FuseServer#handleDirect}, as virtio-fs sends them: WRITE's data (whatever
         * follows the first 80 bytes) and READ's destination in direct buffers of a size the request's length picks.
         * Returns the reply as {@link #send} does, READ's data appended to its header.
         */
        ByteBuffer sendDirect(byte[] request, int opcode, ByteBuffer req, ByteBuffer rep) {
            int piece = 1 + Math.floorMod(request.length * 31, 5000);
            List<ByteBuffer> data = new ArrayList<>();
            int len;
            if (opcode == Fuse.WRITE) {
                int head = Math.min(request.length, Fuse.IN_HEADER + Fuse.WRITE_IN);
                req.put(request, 0, head).flip();
                for (int off = head; off < request.length; off += piece) {
                    int n = Math.min(piece, request.length - off);
                    data.add(ByteBuffer.allocateDirect(n).put(request, off, n).flip());
                }
                len = server.handleDirect(req, rep, data.toArray(new ByteBuffer[0]), request.length - head);
                assertTrue(len >= Fuse.OUT_HEADER && len <= Fuse.OUT_HEADER + Fuse.WRITE_OUT, "WRITE reply length " + len);
                ByteBuffer r = ByteBuffer.allocate(len).order(ByteOrder.LITTLE_ENDIAN);
                return r.put(rep.duplicate().position(0).limit(len)).flip();
            }
            req.put(request).flip();
            for (int total = 0; total < 256 * 1024; total += piece) {
                data.add(ByteBuffer.allocateDirect(piece));
            }
            rep.limit(Fuse.OUT_HEADER);
            len = server.handleDirect(req, rep, data.toArray(new ByteBuffer[0]), 0);
            assertTrue(len == Fuse.OUT_HEADER || (len > Fuse.OUT_HEADER && rep.getInt(4) == 0
                    && len - Fuse.OUT_HEADER <= 256 * 1024 + piece), "READ reply length " + len);
            ByteBuffer r = ByteBuffer.allocate(len).order(ByteOrder.LITTLE_ENDIAN);
            r.put(rep.duplicate().position(0).limit(Fuse.OUT_HEADER));
            for (ByteBuffer d : data) {
                d.flip();
                r.put(d.limit(Math.min(d.limit(), r.remaining())));
            }
            assertFalse(r.hasRemaining(), "READ data shorter than its reply length");
            return r.flip();
        }

        /** Sends one request with a deadline; returns the reply (position 0, limit its length), or null if none. */
        ByteBuffer send(byte[] request, boolean highPriority) throws Exception {
            Future<ByteBuffer> f = worker.submit(() -> {
                ByteBuffer req = BUFFERS.get()[0].clear(), rep = BUFFERS.get()[1].clear();
                int opcode = request.length >= 8 ? ByteBuffer.wrap(request).order(ByteOrder.LITTLE_ENDIAN).getInt(4) : -1;
                if (!highPriority && (opcode == Fuse.READ || opcode == Fuse.WRITE) && (request.length & 1) == 0) {
                    return sendDirect(request, opcode, req, rep);
                }
                req.put(request).flip();
                int len = highPriority ? server.handleHighPriority(req, rep) : server.handle(req, rep);
                assertTrue(len == 0 || (len >= Fuse.OUT_HEADER && len <= rep.capacity()), "reply length " + len);
                ByteBuffer r = ByteBuffer.allocate(len).order(ByteOrder.LITTLE_ENDIAN);
                r.put(rep.duplicate().position(0).limit(len)).flip();
                return r;
            });
            ByteBuffer r;
            try {
                r = f.get(REQUEST_TIMEOUT_SECONDS, TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                worker = newWorker();
                ByteBuffer header = ByteBuffer.wrap(request).order(ByteOrder.LITTLE_ENDIAN);
                int opcode = request.length >= 8 ? header.getInt(4) : -1;
                throw new AssertionError("request not answered within " + REQUEST_TIMEOUT_SECONDS + " s: opcode "
                        + opcode);
            } catch (ExecutionException e) {
                if (e.getCause() instanceof AssertionError a) {
                    throw a;
                }
                throw new AssertionError("exception out of the server", e.getCause());
            }
            int n = r.limit();
            if (n == 0) {
                return null;
            }
            assertEquals(n, r.getInt(0), "out header len");
            int error = -r.getInt(4);
            assertTrue(error >= 0 && error < 4096, "errno " + error);
            assertTrue(error == 0 || n == Fuse.OUT_HEADER, "an error reply carries no body");
            return r;
        }

        byte[] request(int opcode, long node, int uid, int gid, byte[] body) {
            return request(opcode, node, uid, gid, body, new byte[0]);
        }

        /** A request with extensions after its body; total_extlen counts them in 8-byte units (rounded down). */
        byte[] request(int opcode, long node, int uid, int gid, byte[] body, byte[] ext) {
            return ByteBuffer.allocate(Fuse.IN_HEADER + body.length + ext.length).order(ByteOrder.LITTLE_ENDIAN)
                    .putInt(Fuse.IN_HEADER + body.length + ext.length).putInt(opcode).putLong(unique++).putLong(node)
                    .putInt(uid).putInt(gid).putInt(42).putShort((short) (ext.length / 8)).putShort((short) 0)
                    .put(body).put(ext).array();
        }

        /** Request extensions: the supplementary group as Linux sends it, or sizes, types and counts that lie. */
        static byte[] extension(FuzzedDataProvider d) {
            int group = d.pickValue(new int[] {1000, 1001, 0, -1, 65534, d.consumeInt()});
            return switch (d.consumeInt(0, 5)) {
                case 0, 1 -> new Body().i32(16).i32(Fuse.EXT_GROUPS).i32(1).i32(group).bytes();
                case 2 -> new Body().i32(d.pickValue(new int[] {0, 4, 8, 12, 24, -8, d.consumeInt()}))
                        .i32(Fuse.EXT_GROUPS).i32(1).i32(group).bytes();
                case 3 -> new Body().i32(16).i32(d.pickValue(new int[] {0, 31, 33, d.consumeInt()})).i32(1).i32(group)
                        .bytes();
                case 4 -> new Body().i32(16).i32(Fuse.EXT_GROUPS).i32(d.pickValue(new int[] {0, 2, -1}))
                        .i32(group).i32(16).i32(Fuse.EXT_GROUPS).i32(1).i32(group).bytes();
                default -> d.consumeBytes(8 * d.consumeInt(0, 4));
            };
        }

        /** INIT offering everything, FUSE_CREATE_SUPP_GROUP (flags2) included. */
        static byte[] init(int minor) {
            return new Body().i32(7).i32(minor).i32(1 << 17).i32(-1).i32((int) (Fuse.CREATE_SUPP_GROUP >>> 32))
                    .raw(new byte[44]).bytes();
        }

        void step(FuzzedDataProvider d) throws Exception {
            int opcode = d.pickValue(OPCODES);
            long node = node(d);
            int uid = 0, gid = 0;
            if (d.consumeInt(0, 7) == 0) {
                uid = d.pickValue(new int[] {1000, 65534, -1, d.consumeInt()});
                gid = uid;
            }
            if (opcode == -1) {
                byte[] raw = d.consumeBytes(d.consumeInt(0, 128));
                send(raw, d.consumeBoolean());
                return;
            }
            Body b = new Body();
            switch (opcode) {
                case Fuse.LOOKUP, Fuse.UNLINK, Fuse.RMDIR, Fuse.REMOVEXATTR -> {
                    if (opcode == Fuse.REMOVEXATTR) {
                        b.str(d.pickValue(XATTRS));
                    } else {
                        name(d, b);
                    }
                }
                case Fuse.FORGET -> b.i64(d.consumeBoolean() ? d.consumeLong(0, 3) : d.consumeLong());
                case Fuse.BATCH_FORGET -> {
                    int count = d.consumeInt(0, 4);
                    b.i32(d.consumeBoolean() ? count : d.consumeInt()).i32(0);
                    for (int i = 0; i < count; i++) {
                        b.i64(node(d)).i64(d.consumeLong(0, 3));
                    }
                }
                case Fuse.GETATTR -> b.i32(d.consumeInt(0, 1)).i32(0).i64(fh(d));
                case Fuse.SETATTR -> b.i32(d.consumeInt(0, 0xFFF)).i32(0).i64(fh(d)).i64(size(d)).i64(0)
                        .i64(d.consumeLong()).i64(d.consumeLong()).i64(0).i32(d.consumeInt()).i32(d.consumeInt())
                        .i32(0).i32(mode(d)).i32(0).i32(d.consumeInt(0, 2000)).i32(d.consumeInt(0, 2000)).i32(0);
                case Fuse.READLINK, Fuse.STATFS, Fuse.DESTROY -> { }
                case Fuse.SYMLINK -> {
                    name(d, b);
                    b.str(d.pickValue(TARGETS));
                }
                case Fuse.MKNOD -> {
                    b.i32(mode(d)).i32(d.pickValue(new int[] {0, 0x103, 0x800, d.consumeInt()})).i32(0).i32(0);
                    name(d, b);
                }
                case Fuse.MKDIR -> {
                    b.i32(mode(d)).i32(0);
                    name(d, b);
                }
                case Fuse.RENAME, Fuse.RENAME2 -> {
                    b.i64(node(d));
                    if (opcode == Fuse.RENAME2) {
                        b.i32(d.consumeInt(0, 7)).i32(0);
                    }
                    name(d, b);
                    name(d, b);
                }
                case Fuse.LINK -> {
                    b.i64(node(d));
                    name(d, b);
                }
                case Fuse.OPEN, Fuse.OPENDIR -> b.i32(openFlags(d)).i32(0);
                case Fuse.READ, Fuse.READDIR, Fuse.READDIRPLUS -> b.i64(fh(d)).i64(offset(d))
                        .i32(d.consumeBoolean() ? d.consumeInt(0, 8192) : d.consumeInt()).i32(0).i64(0).i32(0).i32(0);
                case Fuse.WRITE -> {
                    byte[] data = d.consumeBytes(d.consumeInt(0, 4096));
                    b.i64(fh(d)).i64(offset(d)).i32(d.consumeInt(0, 15) == 0 ? d.consumeInt() : data.length).i32(0)
                            .i64(0).i32(0).i32(0).raw(data);
                }
                case Fuse.RELEASE, Fuse.RELEASEDIR -> b.i64(fh(d)).i32(0).i32(0).i64(0);
                case Fuse.FSYNC, Fuse.FSYNCDIR -> b.i64(fh(d)).i32(d.consumeInt(0, 1)).i32(0);
                case Fuse.SETXATTR -> {
                    byte[] value = d.consumeBytes(d.consumeInt(0, 64));
                    b.i32(d.consumeInt(0, 15) == 0 ? d.consumeInt() : value.length).i32(d.consumeInt(0, 3));
                    b.str(d.pickValue(XATTRS)).raw(value);
                }
                case Fuse.GETXATTR, Fuse.LISTXATTR -> {
                    b.i32(d.consumeBoolean() ? 0 : d.consumeInt(0, 256)).i32(0);
                    if (opcode == Fuse.GETXATTR) {
                        b.str(d.pickValue(XATTRS));
                    }
                }
                case Fuse.FLUSH -> b.i64(fh(d)).i32(0).i32(0).i64(0);
                case Fuse.INIT -> b.raw(init(d.consumeInt(20, 40)));
                case Fuse.ACCESS -> b.i32(d.consumeInt(0, 7)).i32(0);
                case Fuse.CREATE -> {
                    b.i32(openFlags(d)).i32(mode(d)).i32(0).i32(0);
                    name(d, b);
                }
                case Fuse.INTERRUPT -> b.i64(d.consumeLong());
                case Fuse.IOCTL -> {
                    byte[] in = d.consumeBytes(d.consumeInt(0, 16));
                    b.i64(fh(d)).i32(d.consumeInt(0, 31)); // (the order of consume calls is the input format)
                    b.i32(d.pickValue(new int[] {FileSystem.IOCTL_EXIT_CODE, 0x40086602, 0x5401, d.consumeInt()}));
                    b.i64(d.consumeLong()).i32(in.length).i32(d.consumeInt(0, 64)).raw(in);
                }
                case Fuse.FALLOCATE -> b.i64(fh(d)).i64(offset(d)).i64(d.consumeBoolean() ? d.consumeLong(0, 65536)
                        : d.pickValue(new long[] {0, -1, Long.MIN_VALUE, -4096})).i32(d.consumeInt(0, 0x7F)).i32(0);
                case Fuse.LSEEK -> b.i64(fh(d)).i64(d.consumeLong()).i32(d.consumeInt(-1, 6)).i32(0);
                case Fuse.COPY_FILE_RANGE -> b.i64(fh(d)).i64(offset(d)).i64(node(d)).i64(fh(d)).i64(offset(d))
                        .i64(d.consumeBoolean() ? d.consumeLong(0, 65536) : d.pickValue(EDGES))
                        .i64(d.consumeInt(0, 7) == 0 ? d.consumeLong() : 0);
                case Fuse.SETUPMAPPING -> b.i64(fh(d)).i64(d.consumeBoolean() ? G * d.consumeInt(0, 2) : offset(d))
                        .i64(d.consumeBoolean() ? G * d.consumeInt(0, 5) : d.pickValue(EDGES))
                        .i64(d.consumeInt(0, 3)).i64(d.consumeBoolean() ? G * d.consumeInt(0, 5) : d.pickValue(EDGES));
                case Fuse.REMOVEMAPPING -> {
                    int count = d.consumeInt(0, 3);
                    b.i32(d.consumeInt(0, 7) == 0 ? d.consumeInt() : count);
                    for (int i = 0; i < count; i++) {
                        b.i64(d.consumeBoolean() ? G * d.consumeInt(0, 5) : d.pickValue(EDGES))
                                .i64(d.consumeBoolean() ? G * d.consumeInt(0, 5) : d.pickValue(EDGES));
                    }
                }
                default -> throw new AssertionError(opcode);
            }
            byte[] ext = new byte[0];
            if ((opcode == Fuse.CREATE || opcode == Fuse.MKNOD || opcode == Fuse.MKDIR || opcode == Fuse.SYMLINK)
                    && d.consumeInt(0, 3) == 0) {
                ext = extension(d);
            }
            byte[] req = request(opcode, node, uid, gid, b.bytes(), ext);
            if (d.consumeInt(0, 31) == 0) {
                ByteBuffer.wrap(req).order(ByteOrder.LITTLE_ENDIAN).putInt(0, d.consumeInt()); // a lying len
            }
            boolean hiprio = opcode == Fuse.FORGET || opcode == Fuse.BATCH_FORGET || opcode == Fuse.INTERRUPT
                    ? d.consumeBoolean() : d.consumeInt(0, 15) == 0;
            ByteBuffer r = send(req, hiprio);
            if (TRACE) {
                System.err.printf("fuzz: opcode %d node %d%s body %s -> %s%n", opcode, node, hiprio ? " (hiprio)" : "",
                        HexFormat.of().formatHex(b.bytes()), r == null ? "no reply" : "errno " + -r.getInt(4));
            }
            if (r != null && -r.getInt(4) == 0) {
                learn(opcode, r.position(Fuse.OUT_HEADER).slice().order(ByteOrder.LITTLE_ENDIAN));
            }
        }

        /** Remembers node ids and handles from a successful reply, for later requests to use. */
        void learn(int opcode, ByteBuffer r) {
            switch (opcode) {
                case Fuse.LOOKUP, Fuse.MKNOD, Fuse.MKDIR, Fuse.SYMLINK, Fuse.LINK -> nodes.add(r.getLong(0));
                case Fuse.CREATE -> {
                    nodes.add(r.getLong(0));
                    fhs.add(r.getLong(Fuse.ENTRY_OUT));
                }
                case Fuse.OPEN, Fuse.OPENDIR -> fhs.add(r.getLong(0));
                case Fuse.READDIRPLUS -> {
                    for (int p = 0; p + Fuse.ENTRY_OUT + Fuse.DIRENT <= r.limit(); ) {
                        long id = r.getLong(p);
                        if (id != 0) {
                            nodes.add(id);
                        }
                        p += Fuse.ENTRY_OUT + Fuse.align8(Fuse.DIRENT + r.getInt(p + Fuse.ENTRY_OUT + 16));
                    }
                }
                default -> { }
            }
        }

        long node(FuzzedDataProvider d) {
            int pick = d.consumeInt(0, 15);
            if (pick == 0) {
                return d.consumeLong();
            }
            if (pick == 1) {
                return pick(d, List.of(0L, PassthroughFs.VIRTUAL_BASE, PassthroughFs.VIRTUAL_BASE + 1, 12345L));
            }
            return pick(d, nodes);
        }

        long fh(FuzzedDataProvider d) {
            if (fhs.isEmpty() || d.consumeInt(0, 15) == 0) {
                return d.consumeBoolean() ? d.consumeLong(-1, 32) : d.consumeLong();
            }
            return pick(d, fhs);
        }

        static long pick(FuzzedDataProvider d, List<Long> from) { return from.get(d.consumeInt(0, from.size() - 1)); }

        /** Offsets: small (files stay small: nothing here allocates much on any host file system) or an edge. */
        static long offset(FuzzedDataProvider d) {
            return d.consumeInt(0, 7) == 0 ? d.pickValue(EDGES) : d.consumeLong(0, 65536);
        }

        static long size(FuzzedDataProvider d) {
            return d.consumeInt(0, 7) == 0 ? d.pickValue(new long[] {-1, Long.MIN_VALUE}) : d.consumeLong(0, 65536);
        }

        static int mode(FuzzedDataProvider d) {
            int type = d.pickValue(new int[] {0, S_IFREG, S_IFDIR, S_IFCHR, S_IFBLK, 0010000, 0140000, 0120000});
            return d.consumeInt(0, 7) == 0 ? d.consumeInt() : type | d.consumeInt(0, 07777);
        }

        static int openFlags(FuzzedDataProvider d) {
            int[] common = {0, 1, 2, 0100 | 2, 01000 | 1, 0200 | 0100 | 2, 04000, 0200000, 0400000, 010000000};
            return d.consumeInt(0, 7) == 0 ? d.consumeInt() : d.pickValue(common) | (d.consumeBoolean() ? 04000 : 0);
        }

        static void name(FuzzedDataProvider d, Body b) {
            int how = d.consumeInt(0, 15);
            if (how == 0) {
                b.raw(d.consumeBytes(d.consumeInt(0, 300))).raw(new byte[] {0}); // anything, NULs included
            } else if (how == 1) {
                b.raw(d.pickValue(NAMES).getBytes(StandardCharsets.UTF_8)); // no NUL
            } else {
                b.str(d.pickValue(NAMES));
            }
        }
    }

    /** A little-endian request body. */
    static final class Body {
        private final java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        private final ByteBuffer tmp = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);

        Body i32(long v) {
            out.write(tmp.clear().putInt((int) v).array(), 0, 4);
            return this;
        }

        Body i64(long v) {
            out.write(tmp.clear().putLong(v).array(), 0, 8);
            return this;
        }

        Body str(String s) { return raw(s.getBytes(StandardCharsets.UTF_8)).raw(new byte[] {0}); }

        Body raw(byte[] b) {
            out.write(b, 0, b.length);
            return this;
        }

        byte[] bytes() { return out.toByteArray(); }
    }
}
