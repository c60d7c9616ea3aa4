package dev.jkrun.devices.fs;

import static org.junit.jupiter.api.Assertions.*;

import dev.jkrun.devices.fs.fuse.FuseServer;
import dev.jkrun.devices.fs.nullfs.NullFs;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** libkrun's NullFs (krun_add_virtiofs3 without a host path): an empty read-only root, through the FUSE server. */
class NullFsTest {
    @Test
    void anEmptyReadOnlyRoot() throws Exception {
        FuseClient c = new FuseClient(new FuseServer(new NullFs(), true));
        c.init();
        assertEquals(Errnos.ENOENT, c.lookup(1, "anything").error());
        assertEquals(0040555, c.getattr(1).ok().attrMode(16));
        assertEquals(Errnos.EROFS, c.call(dev.jkrun.devices.fs.fuse.Fuse.MKDIR, 1, FuseClient.body().i32(0755).i32(0).str("d")).error());
        NullFs fs = new NullFs();
        assertEquals(Errnos.EROFS, errno(() -> fs.mkdir(Context.ROOT, 1, "d".getBytes(StandardCharsets.UTF_8), 0755, 0)));
        assertEquals(Errnos.EROFS, errno(() -> fs.create(Context.ROOT, 1, "f".getBytes(StandardCharsets.UTF_8), 1, 0644, 0)));
        assertEquals(Errnos.ENOENT, errno(() -> fs.getattr(2, -1)));
        assertEquals(Errnos.EISDIR, errno(() -> fs.open(Context.ROOT, 1, 0)));
        DirNames sink = new DirNames();
        fs.readdir(1, fs.opendir(Context.ROOT, 1, 0).fh(), 0, sink);
        assertEquals(List.of(".", ".."), sink.names);
        assertEquals(Errnos.EROFS, errno(() -> fs.access(Context.ROOT, 1, 2)));
        fs.access(Context.ROOT, 1, 4);
    }

    interface Call {
        void run() throws FsException;
    }

    static int errno(Call call) {
        try {
            call.run();
        } catch (FsException e) {
            return e.errno();
        }
        return fail("expected an errno");
    }
}
