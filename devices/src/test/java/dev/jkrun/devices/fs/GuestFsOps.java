package dev.jkrun.devices.fs;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;

/** The requests of a hostile guest that the filesystem fuzz targets share: one operation on a node, name and handle. */
final class GuestFsOps {
    static final int READ = 11, READDIR = 12, COUNT = 16;

    private GuestFsOps() {}

    /**
     * Runs operation {@code op} (0 to {@link #COUNT} - 1) with arguments from {@code data}; new nodes and handles go
     * to {@code nodes} and {@code handles}. Returns false for {@link #READ} and {@link #READDIR}, which each target
     * checks its own way.
     */
    static boolean apply(FileSystem fs, FuzzedDataProvider data, int op, long node, byte[] name, long fh,
                         List<Long> nodes, List<Long> handles, String[] names, int createFlags) throws FsException {
        Context ctx = Context.ROOT;
        switch (op) {
            case 0 -> nodes.add(fs.lookup(ctx, node, name).nodeId());
            case 1 -> fs.forget(node, data.consumeLong(0, 3));
            case 2 -> fs.getattr(node, -1);
            case 3 -> fs.setattr(ctx, node, new SetAttr(data.consumeInt(0, 0xfff), fh,
                    data.consumeLong(-1, 1 << 16), 0, 0, 0, 0, data.consumeInt(), 0, 0));
            case 4 -> nodes.add(fs.mkdir(ctx, node, name, data.consumeInt(0, 07777), 0).nodeId());
            case 5 -> {
                FileSystem.Created c = fs.create(ctx, node, name, data.consumeInt(0, 03) | createFlags,
                        data.consumeInt(0, 07777), 0);
                nodes.add(c.entry().nodeId());
                handles.add(c.opened().fh());
            }
            case 6 -> fs.unlink(node, name);
            case 7 -> fs.rmdir(node, name);
            case 8 -> fs.rename(node, name, nodes.get(data.consumeInt(0, nodes.size() - 1)),
                    names[data.consumeInt(0, names.length - 1)].getBytes(StandardCharsets.UTF_8), data.consumeInt(0, 7));
            case 9 -> handles.add(fs.open(ctx, node, data.consumeInt(0, 01003)).fh());
            case 10 -> fs.write(node, fh, data.consumeLong(-1, 1 << 20), ByteBuffer.wrap(data.consumeBytes(64)), 0);
            case 13 -> nodes.add(fs.symlink(ctx, node, name, data.consumeBytes(16)).nodeId());
            case 14 -> nodes.add(fs.link(node, nodes.get(data.consumeInt(0, nodes.size() - 1)), name).nodeId());
            case READ, READDIR -> {
                return false;
            }
            default -> {
                handles.remove(fh);
                fs.release(node, fh);
            }
        }
        return true;
    }
}
