package dev.jkrun.devices.fs.fuse;

import static dev.jkrun.devices.fs.fuse.Fuse.*;

import dev.jkrun.devices.fs.Attr;
import dev.jkrun.devices.fs.Context;
import dev.jkrun.devices.fs.DirSink;
import dev.jkrun.devices.fs.Entry;
import dev.jkrun.devices.fs.Errnos;
import dev.jkrun.devices.fs.FileSystem;
import dev.jkrun.devices.fs.FsException;
import dev.jkrun.devices.fs.IoctlResult;
import dev.jkrun.devices.fs.Opened;
import dev.jkrun.devices.fs.SetAttr;
import dev.jkrun.devices.fs.StatFs;
import dev.jkrun.devices.fs.dax.DaxWindow;
import java.nio.BufferOverflowException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A FUSE server (protocol 7.27..7.31) over a {@link FileSystem}: decodes one request as the guest's virtio-fs
 * driver lays it out (the bytes of the readable descriptors: {@code fuse_in_header}, the op struct, names,
 * WRITE data) and encodes the reply ({@code fuse_out_header} and the op's out struct, READ data) into the
 * writable room. Everything is little-endian (x86_64 / aarch64 guests).
 *
 * <p>Nothing escapes {@link #handle}: malformed requests get EINVAL (or E2BIG when longer than
 * {@link Fuse#MAX_REQUEST}), backend errors their errno, anything unexpected EIO (logged at debug). The 64-bit
 * offsets and lengths of READ, WRITE, FALLOCATE, LSEEK, SETATTR's size and COPY_FILE_RANGE are checked here the way
 * the matching Linux syscalls check them, so no backend sees a negative or overflowing range.
 * Requests before INIT get EIO. The server itself is stateless apart from the INIT handshake, so several
 * queue workers may call {@link #handle} concurrently if the backend is thread-safe. The virtio-fs hiprio queue
 * goes through {@link #handleHighPriority}, which serves only what Linux queues there.
 */
public final class FuseServer {
    private static final Logger LOG = LoggerFactory.getLogger(FuseServer.class);
    /** Flags this server can honour whatever the backend; the backend adds its own (e.g. DO_READDIRPLUS). */
    private static final long SERVER_FLAGS = ASYNC_READ | ATOMIC_O_TRUNC | BIG_WRITES | HAS_IOCTL_DIR | AUTO_INVAL_DATA
            | ASYNC_DIO | PARALLEL_DIROPS | MAX_PAGES;

    private static final int O_ACCMODE = 3, O_TRUNC = 01000;
    private static final int SEEK_SET = 0, SEEK_HOLE = 4;

    private final FileSystem fs;
    private final boolean readOnly;
    /** The DAX window, or null: without one SETUPMAPPING and REMOVEMAPPING are ENOSYS. */
    private final DaxWindow window;
    private volatile boolean initialized;
    /** Held shared by every request, exclusively by INIT and DESTROY. */
    private final java.util.concurrent.locks.ReentrantReadWriteLock session = new java.util.concurrent.locks.ReentrantReadWriteLock();
    private volatile int negotiatedMinor;
    /** FUSE_CREATE_SUPP_GROUP was agreed at INIT: requests that create a node may carry one supplementary group. */
    private volatile boolean createSuppGroup;

    public FuseServer(FileSystem fs) { this(fs, false); }

    /**
     * @param readOnly refuse every modifying request with EROFS before it reaches the backend, whatever the backend
     *     does (a guard for custom backends; the passthrough backend enforces read-only on its own as well)
     */
    public FuseServer(FileSystem fs, boolean readOnly) { this(fs, readOnly, null); }

    /** A server with a DAX window ({@code window} may be null), used only if the backend supports mapping. */
    public FuseServer(FileSystem fs, boolean readOnly, DaxWindow window) {
        this.fs = Objects.requireNonNull(fs, "fs");
        this.readOnly = readOnly;
        this.window = window != null && fs.supportsMapping() ? window : null;
    }

    /** The DAX window the guest may map files into, if any. */
    public java.util.Optional<DaxWindow> daxWindow() { return java.util.Optional.ofNullable(window); }

    public FileSystem fileSystem() { return fs; }

    /** The minor version agreed at INIT (0 before). */
    public int negotiatedMinor() { return negotiatedMinor; }

    /**
     * {@link #handle} for the virtio-fs hiprio queue: FORGET, BATCH_FORGET and INTERRUPT, the requests Linux queues
     * there (fs/fuse/virtio_fs.c); anything else gets EINVAL, so that queue cannot run a second stream of ordinary
     * requests beside the request queue.
     */
    public int handleHighPriority(ByteBuffer request, ByteBuffer reply) { return handle(request, reply, true, null, 0); }

    /**
     * {@link #handle} for a READ or WRITE whose data stays in the caller's buffers (guest memory), so that it moves
     * between the host file and the guest in one scatter/gather call rather than through {@code request} and
     * {@code reply}. READ: {@code data} is where the file's bytes go (the guest's room after the reply header, at
     * most the READ's size of it is used) and {@code reply} receives only the 16-byte header. WRITE: {@code request}
     * holds the in_header and write_in, {@code data} the {@code dataLength} bytes that follow them in the guest's
     * request, which then carries no extensions (total_extlen 0; Linux sends none on WRITE). Any other request, or
     * an error, is answered in {@code reply} alone, as by {@link #handle}.
     *
     * @return the whole reply's length: for a READ that succeeded, 16 (in {@code reply}) plus the bytes read into
     *     {@code data}
     */
    public int handleDirect(ByteBuffer request, ByteBuffer reply, ByteBuffer[] data, long dataLength) {
        return handle(request, reply, false, Objects.requireNonNull(data, "data"), dataLength);
    }

    /**
     * Handles one request. {@code request} holds it from its position to its limit; the reply is written from
     * {@code reply}'s position up to its limit. Neither buffer's position or limit is changed.
     *
     * @return the reply's length in bytes, 0 for requests that take no reply (FORGET, BATCH_FORGET, INTERRUPT)
     *     or when the reply room cannot even hold a {@code fuse_out_header}
     */
    public int handle(ByteBuffer request, ByteBuffer reply) { return handle(request, reply, false, null, 0); }

    private int handle(ByteBuffer request, ByteBuffer reply, boolean highPriority, ByteBuffer[] data, long dataLength) {
        ByteBuffer out = reply.slice().order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer in = request.slice().order(ByteOrder.LITTLE_ENDIAN);
        long unique = in.remaining() >= 16 ? in.getLong(8) : 0;
        int opcode = in.remaining() >= 8 ? in.getInt(4) : 0;
        boolean noReply = opcode == FORGET || opcode == BATCH_FORGET || opcode == INTERRUPT;
        // Requests that take no reply come without reply room: Linux queues FORGET on hiprio as a readable buffer only.
        if (out.capacity() < OUT_HEADER && !noReply) {
            LOG.debug("reply room of {} bytes cannot hold a header (opcode {})", out.capacity(), opcode);
            return 0;
        }
        if (highPriority && !noReply) {
            return error(out, unique, Errnos.EINVAL);
        }
        try {
            if (in.remaining() < IN_HEADER) {
                return noReply ? 0 : error(out, unique, Errnos.EINVAL);
            }
            long len = Integer.toUnsignedLong(in.getInt(0));
            if (len > MAX_REQUEST) {
                return noReply ? 0 : error(out, unique, Errnos.E2BIG);
            }
            // A direct WRITE's data follows the request buffer's bytes in the guest's buffers.
            boolean directWrite = data != null && opcode == WRITE;
            long room = in.remaining() + (directWrite ? dataLength : 0);
            if (len < IN_HEADER || len > room || (directWrite && len != room)) {
                return noReply ? 0 : error(out, unique, Errnos.EINVAL);
            }
            in.limit((int) Math.min(len, in.remaining()));
            long nodeId = in.getLong(16);
            // Extensions (fuse.h "struct fuse_ext_header") are the request's last total_extlen * 8 bytes.
            int extLen = (in.getShort(IN_HEADER_TOTAL_EXTLEN) & 0xFFFF) * 8;
            if (extLen > len - IN_HEADER || (directWrite && extLen != 0)) {
                return noReply ? 0 : error(out, unique, Errnos.EINVAL);
            }
            int suppGroup = extLen == 0 ? Context.NO_GROUP : extensions(in, (int) len - extLen, (int) len);
            in.limit(in.limit() - extLen); // a direct WRITE has none (checked above)
            Context ctx = new Context(in.getInt(24), in.getInt(28), in.getInt(32), suppGroup);
            ByteBuffer body = in.position(IN_HEADER).slice().order(ByteOrder.LITTLE_ENDIAN);
            // INIT and DESTROY start and end a session: no other request runs while they do (with several request
            // queues, requests run on several threads; DESTROY's sweep must not race an OPEN or a RELEASE).
            java.util.concurrent.locks.Lock l = opcode == INIT || opcode == DESTROY ? session.writeLock() : session.readLock();
            l.lock();
            try {
                if (!initialized && opcode != INIT) {
                    return noReply ? 0 : error(out, unique, Errnos.EIO);
                }
                if (readOnly && modifies(opcode, body)) {
                    return error(out, unique, Errnos.EROFS);
                }
                return dispatch(opcode, unique, nodeId, ctx, body, out, data, dataLength);
            } finally {
                l.unlock();
            }
        } catch (FsException e) {
            return noReply ? 0 : error(out, unique, e.errno());
        } catch (BufferUnderflowException | IndexOutOfBoundsException e) {
            LOG.debug("truncated FUSE request (opcode {})", opcode, e);
            return noReply ? 0 : error(out, unique, Errnos.EINVAL);
        } catch (BufferOverflowException e) {
            LOG.debug("FUSE reply for opcode {} does not fit {} bytes", opcode, out.capacity(), e);
            return noReply ? 0 : error(out, unique, Errnos.ERANGE);
        } catch (Throwable t) {
            LOG.debug("FUSE opcode {} failed", opcode, t);
            return noReply ? 0 : error(out, unique, Errnos.EIO);
        }
    }

    /**
     * Reads the extensions in {@code [from, to)} of a request: the supplementary group of FUSE_CREATE_SUPP_GROUP
     * (fuse.h {@code struct fuse_supp_groups}, one group as Linux sends it) when that was agreed, else
     * {@link Context#NO_GROUP}. Anything else, a second group extension, or a size that does not add up is EINVAL:
     * nothing else was negotiated.
     */
    private int extensions(ByteBuffer in, int from, int to) throws FsException {
        int group = Context.NO_GROUP;
        boolean seen = false;
        for (int at = from; at < to; ) {
            if (to - at < EXT_HEADER) {
                throw new FsException(Errnos.EINVAL, "truncated extension header");
            }
            long size = Integer.toUnsignedLong(in.getInt(at));
            int type = in.getInt(at + 4);
            if (size < EXT_HEADER || size > to - at || size % 8 != 0) {
                throw new FsException(Errnos.EINVAL, "extension of " + size + " bytes");
            }
            if (type != EXT_GROUPS || !createSuppGroup || seen || size < EXT_HEADER + 4) {
                throw new FsException(Errnos.EINVAL, "extension type " + type);
            }
            long groups = Integer.toUnsignedLong(in.getInt(at + EXT_HEADER));
            if (groups > 1 || EXT_HEADER + 4 + 4 * groups > size) {
                throw new FsException(Errnos.EINVAL, groups + " supplementary groups");
            }
            if (groups == 1 && in.getInt(at + EXT_HEADER + 4) != Context.NO_GROUP) {
                group = in.getInt(at + EXT_HEADER + 4);
            }
            seen = true;
            at += (int) size;
        }
        return group;
    }

    /**
     * Whether a request would change the filesystem: the guard for read-only shares. An ioctl can do anything the
     * backend lets it, so only the exit-status report ({@link FileSystem#IOCTL_EXIT_CODE}) passes.
     */
    static boolean modifies(int opcode, ByteBuffer body) {
        return switch (opcode) {
            case SETATTR, SYMLINK, MKNOD, MKDIR, UNLINK, RMDIR, RENAME, RENAME2, LINK, CREATE, WRITE, SETXATTR,
                    REMOVEXATTR, FALLOCATE, COPY_FILE_RANGE, TMPFILE -> true;
            case OPEN -> body.remaining() < 4 || (body.getInt(0) & O_ACCMODE) != 0 || (body.getInt(0) & O_TRUNC) != 0;
            case SETUPMAPPING -> body.remaining() < SETUPMAPPING_IN || (body.getLong(24) & SETUPMAPPING_FLAG_WRITE) != 0;
            case IOCTL -> body.remaining() < IOCTL_IN || body.getInt(12) != FileSystem.IOCTL_EXIT_CODE;
            default -> false;
        };
    }

    /** {@code [offset, offset + length)} as READ and WRITE take it: EINVAL when negative or past 2^63-1. */
    private static void checkRange(long offset, long length) throws FsException {
        if (offset < 0 || offset > Long.MAX_VALUE - length) {
            throw new FsException(Errnos.EINVAL, "range " + offset + "+" + length);
        }
    }

    private int dispatch(int opcode, long unique, long node, Context ctx, ByteBuffer b, ByteBuffer o, ByteBuffer[] direct,
                         long directLength) throws FsException {
        o.position(Math.min(OUT_HEADER, o.limit())); // a no-reply request may have no room at all
        switch (opcode) {
            case INIT -> { return init(unique, b, o); }
            case DESTROY -> {
                if (window != null) {
                    window.unmapAll();
                }
                fs.destroy();
                initialized = false;
                return ok(o, unique);
            }
            case LOOKUP -> putEntry(o, fs.lookup(ctx, node, name(b)));
            case FORGET -> {
                fs.forget(node, b.getLong(0));
                return 0;
            }
            case BATCH_FORGET -> {
                long count = Integer.toUnsignedLong(b.getInt(0));
                b.position(BATCH_FORGET_IN);
                for (long i = 0; i < count && b.remaining() >= FORGET_ONE; i++) {
                    fs.forget(b.getLong(), b.getLong());
                }
                return 0;
            }
            case INTERRUPT -> { return 0; }
            case SETUPMAPPING -> {
                setupMapping(node, ctx, b);
                return ok(o, unique);
            }
            case REMOVEMAPPING -> {
                removeMapping(b);
                return ok(o, unique);
            }
            case GETATTR -> {
                int flags = b.getInt(0);
                long fh = b.getLong(8);
                putAttrOut(o, fs.getattr(node, (flags & GETATTR_FH) != 0 ? fh : -1));
            }
            case SETATTR -> {
                need(b, SETATTR_IN);
                SetAttr s = new SetAttr(b.getInt(0), b.getLong(8), b.getLong(16), b.getLong(32), b.getInt(56),
                        b.getLong(40), b.getInt(60), b.getInt(68), b.getInt(76), b.getInt(80));
                if (s.has(SetAttr.FATTR_SIZE) && s.size() < 0) {
                    throw new FsException(Errnos.EINVAL, "size " + Long.toUnsignedString(s.size()));
                }
                putAttrOut(o, fs.setattr(ctx, node, s));
            }
            case READLINK -> o.put(fs.readlink(node));
            case SYMLINK -> {
                byte[] name = name(b);
                byte[] target = name(b);
                putEntry(o, fs.symlink(ctx, node, name, target));
            }
            case MKNOD -> {
                need(b, MKNOD_IN);
                int mode = b.getInt(0), rdev = b.getInt(4), umask = b.getInt(8);
                b.position(MKNOD_IN);
                putEntry(o, fs.mknod(ctx, node, name(b), mode, rdev, umask));
            }
            case MKDIR -> {
                need(b, MKDIR_IN);
                int mode = b.getInt(0), umask = b.getInt(4);
                b.position(MKDIR_IN);
                putEntry(o, fs.mkdir(ctx, node, name(b), mode, umask));
            }
            case UNLINK -> fs.unlink(node, name(b));
            case RMDIR -> fs.rmdir(node, name(b));
            case RENAME, RENAME2 -> {
                int size = opcode == RENAME ? RENAME_IN : RENAME2_IN;
                need(b, size);
                long newDir = b.getLong(0);
                int flags = opcode == RENAME ? 0 : b.getInt(8);
                b.position(size);
                byte[] oldName = name(b);
                byte[] newName = name(b);
                fs.rename(node, oldName, newDir, newName, flags);
            }
            case LINK -> {
                need(b, LINK_IN);
                long oldNode = b.getLong(0);
                b.position(LINK_IN);
                putEntry(o, fs.link(oldNode, node, name(b)));
            }
            case OPEN -> putOpen(o, fs.open(ctx, node, b.getInt(0)));
            case OPENDIR -> putOpen(o, fs.opendir(ctx, node, b.getInt(0)));
            case CREATE -> {
                need(b, CREATE_IN);
                int flags = b.getInt(0), mode = b.getInt(4), umask = b.getInt(8);
                b.position(CREATE_IN);
                FileSystem.Created c = fs.create(ctx, node, name(b), flags, mode, umask);
                putEntry(o, c.entry());
                putOpen(o, c.opened());
            }
            case READ -> {
                need(b, READ_IN);
                long fh = b.getLong(0), offset = b.getLong(8);
                long size = Integer.toUnsignedLong(b.getInt(16));
                if (size > MAX_BUFFER) {
                    throw new FsException(Errnos.EINVAL, "READ of " + size + " bytes");
                }
                checkRange(offset, size);
                if (direct != null) {
                    long room = remaining(limit(direct, size));
                    long n = fs.read(node, fh, offset, direct);
                    if (n < 0 || n > room) { // a backend's bug must not make the reply claim bytes the guest never got
                        throw new FsException(Errnos.EIO, "backend read " + n + " bytes into " + room);
                    }
                    finish(o, unique);
                    o.putInt(0, OUT_HEADER + (int) n);
                    return OUT_HEADER + (int) n;
                }
                ByteBuffer dst = o.slice().order(ByteOrder.LITTLE_ENDIAN);
                dst.limit((int) Math.min(size, dst.capacity()));
                int n = fs.read(node, fh, offset, dst);
                o.position(o.position() + n);
            }
            case WRITE -> {
                need(b, WRITE_IN);
                long fh = b.getLong(0), offset = b.getLong(8);
                long size = Integer.toUnsignedLong(b.getInt(16));
                int writeFlags = b.getInt(20);
                if (size > b.remaining() - WRITE_IN + (direct != null ? directLength : 0)) {
                    throw new FsException(Errnos.EINVAL, "WRITE size " + size + " beyond its data");
                }
                checkRange(offset, size);
                if (direct != null) {
                    if (b.remaining() != WRITE_IN) { // the caller leaves every data byte in direct
                        throw new FsException(Errnos.EINVAL, "direct WRITE with data in the request buffer");
                    }
                    long n = fs.write(node, fh, offset, limit(direct, size), writeFlags);
                    if (n < 0 || n > size) {
                        throw new FsException(Errnos.EIO, "backend wrote " + n + " of " + size + " bytes");
                    }
                    o.putInt((int) n).putInt(0);
                    break;
                }
                ByteBuffer src = b.position(WRITE_IN).slice().limit((int) size);
                int n = fs.write(node, fh, offset, src, writeFlags);
                o.putInt(n).putInt(0);
            }
            case STATFS -> {
                StatFs s = fs.statfs(node);
                o.putLong(s.blocks()).putLong(s.bfree()).putLong(s.bavail()).putLong(s.files()).putLong(s.ffree())
                        .putInt(s.bsize()).putInt(s.namelen()).putInt(s.frsize()).putInt(0);
                for (int i = 0; i < 6; i++) {
                    o.putInt(0);
                }
            }
            case RELEASE -> fs.release(node, b.getLong(0));
            case RELEASEDIR -> fs.releasedir(node, b.getLong(0));
            case FLUSH -> {
                need(b, FLUSH_IN);
                fs.flush(node, b.getLong(0), b.getLong(16));
            }
            case FSYNC -> {
                need(b, FSYNC_IN);
                fs.fsync(node, b.getLong(0), (b.getInt(8) & FSYNC_FDATASYNC) != 0);
            }
            case FSYNCDIR -> {
                need(b, FSYNC_IN);
                fs.fsyncdir(node, b.getLong(0), (b.getInt(8) & FSYNC_FDATASYNC) != 0);
            }
            case READDIR, READDIRPLUS -> {
                need(b, READ_IN);
                long fh = b.getLong(0), offset = b.getLong(8);
                long size = Integer.toUnsignedLong(b.getInt(16));
                int limit = (int) Math.min(o.limit(), OUT_HEADER + Math.min(size, MAX_BUFFER));
                fs.readdir(node, fh, offset, new Sink(o, limit, opcode == READDIRPLUS));
            }
            case ACCESS -> fs.access(ctx, node, b.getInt(0));
            case SETXATTR -> {
                need(b, SETXATTR_IN_COMPAT);
                long size = Integer.toUnsignedLong(b.getInt(0));
                int flags = b.getInt(4);
                b.position(SETXATTR_IN_COMPAT);
                byte[] name = name(b);
                if (size > b.remaining()) {
                    throw new FsException(Errnos.EINVAL, "SETXATTR value beyond the request");
                }
                byte[] value = new byte[(int) size];
                b.get(value);
                fs.setxattr(node, name, value, flags);
            }
            case GETXATTR, LISTXATTR -> {
                need(b, GETXATTR_IN);
                long size = Integer.toUnsignedLong(b.getInt(0));
                b.position(GETXATTR_IN);
                byte[] name = opcode == GETXATTR ? name(b) : null;
                ByteBuffer dst = o.slice();
                dst.limit((int) Math.min(size, dst.capacity()));
                int n = opcode == GETXATTR ? fs.getxattr(node, name, dst) : fs.listxattr(node, dst);
                if (size == 0) {
                    o.putInt(n).putInt(0);
                } else {
                    o.position(o.position() + n);
                }
            }
            case REMOVEXATTR -> fs.removexattr(node, name(b));
            case FALLOCATE -> {
                need(b, FALLOCATE_IN);
                long offset = b.getLong(8), length = b.getLong(16);
                // as fallocate(2): EINVAL for a negative offset or an empty/negative length, EFBIG past 2^63-1
                if (offset < 0 || length <= 0) {
                    throw new FsException(Errnos.EINVAL, "fallocate " + offset + "+" + length);
                }
                if (offset > Long.MAX_VALUE - length) {
                    throw new FsException(Errnos.EFBIG, "fallocate " + offset + "+" + length);
                }
                fs.fallocate(node, b.getLong(0), b.getInt(24), offset, length);
            }
            case LSEEK -> {
                need(b, LSEEK_IN);
                int whence = b.getInt(16);
                if (whence < SEEK_SET || whence > SEEK_HOLE) {
                    throw new FsException(Errnos.EINVAL, "whence " + whence);
                }
                o.putLong(fs.lseek(node, b.getLong(0), b.getLong(8), whence)); // offset is signed: SEEK_CUR/END
            }
            case COPY_FILE_RANGE -> {
                need(b, COPY_FILE_RANGE_IN);
                long offIn = b.getLong(8), offOut = b.getLong(32), flags = b.getLong(48);
                // as copy_file_range(2): no flags, offsets below 2^63, EOVERFLOW when a range would pass 2^63-1
                if (offIn < 0 || offOut < 0 || flags != 0) {
                    throw new FsException(Errnos.EINVAL, "copy_file_range " + offIn + " " + offOut + " " + flags);
                }
                long len = Long.compareUnsigned(b.getLong(40), MAX_COPY_FILE_RANGE) > 0
                        ? MAX_COPY_FILE_RANGE : b.getLong(40);
                if (offIn > Long.MAX_VALUE - len || offOut > Long.MAX_VALUE - len) {
                    throw new FsException(Errnos.EOVERFLOW, "copy_file_range past 2^63-1");
                }
                long n = fs.copyFileRange(node, b.getLong(0), offIn, b.getLong(16), b.getLong(24), offOut, len, 0);
                o.putInt((int) Math.min(n, 0xFFFF_FFFFL)).putInt(0);
            }
            case IOCTL -> {
                need(b, IOCTL_IN);
                long fh = b.getLong(0);
                int flags = b.getInt(8), cmd = b.getInt(12);
                long arg = b.getLong(16);
                long inSize = Integer.toUnsignedLong(b.getInt(24));
                long outSize = Integer.toUnsignedLong(b.getInt(28));
                if (inSize > b.remaining() - IOCTL_IN) {
                    throw new FsException(Errnos.EINVAL, "IOCTL in_size beyond the request");
                }
                ByteBuffer data = b.position(IOCTL_IN).slice().limit((int) inSize).asReadOnlyBuffer();
                IoctlResult r = fs.ioctl(node, fh, flags, cmd, arg, data, (int) Math.min(outSize, MAX_BUFFER));
                byte[] outData = r.out() == null ? new byte[0] : r.out();
                o.putInt(r.result()).putInt(0).putInt(0).putInt(0);
                o.put(outData, 0, (int) Math.min(outData.length, outSize));
            }
            default -> throw new FsException(Errnos.ENOSYS, "opcode " + opcode);
        }
        return finish(o, unique);
    }

    /**
     * FUSE_SETUPMAPPING ({@code struct fuse_setupmapping_in}: fh, foffset, len, flags, moffset): the node's file range
     * into the window. Linux sends fh -1 (fs/fuse/dax.c), so the file is opened here, with the caller's permissions;
     * the window checks the ranges.
     */
    private void setupMapping(long node, Context ctx, ByteBuffer b) throws FsException {
        if (window == null) {
            throw new FsException(Errnos.ENOSYS, "no DAX window");
        }
        need(b, SETUPMAPPING_IN);
        long fileOffset = b.getLong(8), length = b.getLong(16), flags = b.getLong(24), windowOffset = b.getLong(32);
        boolean writable = (flags & SETUPMAPPING_FLAG_WRITE) != 0;
        FileSystem.MapSource source = fs.mapSource(ctx, node, writable);
        if (source instanceof FileSystem.MapSource.HostFile f) {
            try (var fd = f.fd()) {
                window.mapFile(fd, fileOffset, windowOffset, length, writable);
            }
        } else if (source instanceof FileSystem.MapSource.Bytes bytes) {
            window.mapBytes(bytes.content(), fileOffset, windowOffset, length);
        }
    }

    /** FUSE_REMOVEMAPPING: {@code struct fuse_removemapping_in} (count) then count (moffset, len) pairs. */
    private void removeMapping(ByteBuffer b) throws FsException {
        if (window == null) {
            throw new FsException(Errnos.ENOSYS, "no DAX window");
        }
        need(b, REMOVEMAPPING_IN);
        long count = Integer.toUnsignedLong(b.getInt(0));
        if (count > REMOVEMAPPING_MAX_ENTRY || b.remaining() < REMOVEMAPPING_IN + count * REMOVEMAPPING_ONE) {
            throw new FsException(Errnos.EINVAL, "REMOVEMAPPING of " + count + " ranges");
        }
        for (int i = 0; i < count; i++) {
            int at = REMOVEMAPPING_IN + i * REMOVEMAPPING_ONE;
            window.unmap(b.getLong(at), b.getLong(at + 8));
        }
    }

    private int init(long unique, ByteBuffer b, ByteBuffer o) throws FsException {
        need(b, INIT_IN_COMPAT);
        int major = b.getInt(0), minor = b.getInt(4), maxReadahead = b.getInt(8);
        long flags = Integer.toUnsignedLong(b.getInt(12));
        if (major > KERNEL_VERSION) {
            // The kernel retries INIT with our major when we answer only the version (fuse.h "INIT request/reply").
            o.putInt(KERNEL_VERSION).putInt(KERNEL_MINOR_VERSION);
            while (o.position() < OUT_HEADER + INIT_OUT) {
                o.put((byte) 0);
            }
            return finish(o, unique);
        }
        if (major < KERNEL_VERSION || minor < MIN_MINOR_VERSION) {
            LOG.debug("refusing FUSE {}.{} (need {}.{}+)", major, minor, KERNEL_VERSION, MIN_MINOR_VERSION);
            throw new FsException(Errnos.EPROTO, "FUSE " + major + "." + minor);
        }
        if ((flags & INIT_EXT) != 0 && b.remaining() >= 20) {
            flags |= Integer.toUnsignedLong(b.getInt(16)) << 32;
        }
        long wanted = fs.init(flags) | (window != null ? MAP_ALIGNMENT : 0);
        long agreed = flags & (SERVER_FLAGS | wanted);
        if ((agreed >>> 32) != 0) {
            agreed |= INIT_EXT; // the kernel reads flags2 only with it
        }
        createSuppGroup = (agreed & CREATE_SUPP_GROUP) != 0;
        int ourMinor = Math.min(minor, KERNEL_MINOR_VERSION);
        o.putInt(KERNEL_VERSION).putInt(ourMinor).putInt(maxReadahead).putInt((int) agreed)
                .putShort((short) 0xFFFF) // max_background
                .putShort((short) 49149) // congestion_threshold
                .putInt(MAX_BUFFER) // max_write
                .putInt(1) // time_gran
                .putShort((short) (MAX_BUFFER / 4096)) // max_pages
                .putShort((short) ((agreed & MAP_ALIGNMENT) != 0 ? window.alignmentShift() : 0)) // map_alignment (log2)
                .putInt((int) (agreed >>> 32)) // flags2
                .putInt(0); // max_stack_depth
        for (int i = 0; i < 6; i++) {
            o.putInt(0);
        }
        negotiatedMinor = ourMinor;
        initialized = true;
        return finish(o, unique);
    }

    /** Reads a NUL-terminated name from {@code b}'s position, leaving it after the NUL. */
    static byte[] name(ByteBuffer b) throws FsException {
        int start = b.position();
        for (int i = start; i < b.limit(); i++) {
            if (b.get(i) == 0) {
                byte[] n = new byte[i - start];
                b.get(n);
                b.get();
                return n;
            }
        }
        throw new FsException(Errnos.EINVAL, "name without NUL");
    }

    private static void need(ByteBuffer b, int size) throws FsException {
        if (b.remaining() < size) {
            throw new FsException(Errnos.EINVAL, "request body of " + b.remaining() + " bytes, need " + size);
        }
    }

    private static int ok(ByteBuffer o, long unique) {
        o.position(OUT_HEADER);
        return finish(o, unique);
    }

    private static long remaining(ByteBuffer[] bufs) {
        long n = 0;
        for (ByteBuffer b : bufs) {
            n += b.remaining();
        }
        return n;
    }

    /** Sets the limits of {@code bufs} so that they hold at most {@code max} bytes in all; returns them. */
    private static ByteBuffer[] limit(ByteBuffer[] bufs, long max) {
        long left = max;
        for (ByteBuffer b : bufs) {
            int k = (int) Math.min(left, b.remaining());
            b.limit(b.position() + k);
            left -= k;
        }
        return bufs;
    }

    private static int finish(ByteBuffer o, long unique) {
        int len = o.position();
        o.putInt(0, len).putInt(4, 0).putLong(8, unique);
        return len;
    }

    private static int error(ByteBuffer o, long unique, int errno) {
        o.putInt(0, OUT_HEADER).putInt(4, -errno).putLong(8, unique);
        return OUT_HEADER;
    }

    static void putAttr(ByteBuffer o, Attr a) {
        o.putLong(a.ino()).putLong(a.size()).putLong(a.blocks()).putLong(a.atime()).putLong(a.mtime())
                .putLong(a.ctime()).putInt(a.atimensec()).putInt(a.mtimensec()).putInt(a.ctimensec()).putInt(a.mode())
                .putInt(a.nlink()).putInt(a.uid()).putInt(a.gid()).putInt(a.rdev()).putInt(a.blksize()).putInt(0);
    }

    static void putEntry(ByteBuffer o, Entry e) {
        o.putLong(e.nodeId()).putLong(e.generation())
                .putLong(e.entryTimeoutNanos() / 1_000_000_000L).putLong(e.attrTimeoutNanos() / 1_000_000_000L)
                .putInt((int) (e.entryTimeoutNanos() % 1_000_000_000L))
                .putInt((int) (e.attrTimeoutNanos() % 1_000_000_000L));
        putAttr(o, e.attr());
    }

    private void putAttrOut(ByteBuffer o, Attr a) {
        long t = fs.attrTimeoutNanos();
        o.putLong(t / 1_000_000_000L).putInt((int) (t % 1_000_000_000L)).putInt(0);
        putAttr(o, a);
    }

    private static void putOpen(ByteBuffer o, Opened op) { o.putLong(op.fh()).putInt(op.openFlags()).putInt(0); }

    /** Packs {@code fuse_dirent} / {@code fuse_direntplus} records up to {@code limit}. */
    private static final class Sink implements DirSink {
        private static final byte[] PAD = new byte[8];
        private final ByteBuffer o;
        private final int limit;
        private final boolean plus;

        Sink(ByteBuffer o, int limit, boolean plus) {
            this.o = o;
            this.limit = limit;
            this.plus = plus;
        }

        private int recordSize(int nameLength) {
            return (plus ? ENTRY_OUT : 0) + align8(DIRENT + nameLength);
        }

        @Override
        public boolean fits(int nameLength) { return o.position() + recordSize(nameLength) <= limit; }

        @Override
        public boolean plus() { return plus; }

        @Override
        public boolean add(long ino, long nextOffset, int type, byte[] name, Entry entry) {
            if (!fits(name.length)) {
                return false;
            }
            if (plus) {
                putEntry(o, Objects.requireNonNull(entry, "READDIRPLUS entry"));
            }
            o.putLong(ino).putLong(nextOffset).putInt(name.length).putInt(type).put(name);
            o.put(PAD, 0, align8(DIRENT + name.length) - DIRENT - name.length);
            return true;
        }
    }

    @Override
    public String toString() { return "FuseServer[" + fs + ", minor " + negotiatedMinor + "]"; }
}
