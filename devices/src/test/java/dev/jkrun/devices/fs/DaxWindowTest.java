package dev.jkrun.devices.fs;

import static org.junit.jupiter.api.Assertions.*;

import dev.jkrun.devices.fs.augment.AugmentFs;
import dev.jkrun.devices.fs.augment.VirtualEntry;
import dev.jkrun.devices.fs.dax.HostDaxWindow;
import dev.jkrun.devices.fs.fuse.Fuse;
import dev.jkrun.devices.fs.fuse.FuseServer;
import dev.jkrun.devices.fs.nullfs.NullFs;
import dev.jkrun.devices.fs.passthrough.PassthroughFs;
import dev.jkrun.devices.fs.passthrough.PassthroughOptions;
import dev.jkrun.libc.AnonymousMapping;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * FUSE_SETUPMAPPING / FUSE_REMOVEMAPPING into a real host DAX window (what a KVM memory slot covers in a VM): file
 * ranges appear in the window, writable mappings write the file, read-only ones never do, hostile ranges are EINVAL.
 */
class DaxWindowTest {
    private static final int PAGE = 2 << 20; // the mapping granule
    private static final long WINDOW = 8 * PAGE;

    @TempDir
    Path dir;
    HostDaxWindow window;

    @AfterEach
    void close() {
        if (window != null) {
            window.close();
        }
    }

    private FuseClient client(FileSystem fs, boolean readOnly) {
        window = new HostDaxWindow(AnonymousMapping.map(WINDOW), 0x1_0000_0000L);
        FuseClient c = new FuseClient(new FuseServer(fs, readOnly, window));
        FuseClient.Reply init = c.init(31, Fuse.MAP_ALIGNMENT | Fuse.ASYNC_READ).ok();
        assertNotEquals(0, init.body().getInt(12) & Fuse.MAP_ALIGNMENT, "MAP_ALIGNMENT agreed");
        assertEquals(21, init.body().getShort(30), "map_alignment: 2 MiB granules");
        return c;
    }

    private static FuseClient.Body setup(long foffset, long len, long flags, long moffset) {
        return FuseClient.body().i64(-1).i64(foffset).i64(len).i64(flags).i64(moffset);
    }

    private byte[] file(String name, int pages) throws Exception {
        byte[] data = new byte[pages * PAGE];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) (i * 7 + name.length());
        }
        Files.write(dir.resolve(name), data);
        return data;
    }

    @Test
    void fileRangesAppearInTheWindowAndOnlyWritableMappingsWriteTheFile() throws Exception {
        byte[] data = file("f", 4);
        FuseClient c = client(new PassthroughFs(dir, PassthroughOptions.builder().build()), false);
        long f = c.lookupNode(1, "f");
        // pages 1-2 of the file at window page 3, read-only
        assertEquals(0, c.call(Fuse.SETUPMAPPING, f, setup(PAGE, 2 * PAGE, 2, 3 * PAGE)).error());
        assertArrayEquals(java.util.Arrays.copyOfRange(data, PAGE, 3 * PAGE), window.mapping().read(3 * PAGE, 2 * PAGE));
        window.mapping().write(3 * PAGE, new byte[] {1, 2, 3}, 0, 3); // a guest store into a read-only mapping
        assertArrayEquals(data, Files.readAllBytes(dir.resolve("f")), "a read-only mapping never writes the file");
        // writable: the guest's stores reach the file
        assertEquals(0, c.call(Fuse.SETUPMAPPING, f, setup(0, PAGE, 3, 0)).error());
        window.mapping().write(10, "dax".getBytes(StandardCharsets.US_ASCII), 0, 3);
        assertEquals("dax", new String(Files.readAllBytes(dir.resolve("f")), 10, 3, StandardCharsets.US_ASCII));
        // removed: zeros again
        assertEquals(0, c.call(Fuse.REMOVEMAPPING, 0, FuseClient.body().i32(2).i64(0).i64(PAGE).i64(3 * PAGE).i64(2 * PAGE))
                .error());
        assertArrayEquals(new byte[2 * PAGE], window.mapping().read(3 * PAGE, 2 * PAGE));
        assertArrayEquals(new byte[PAGE], window.mapping().read(0, PAGE));
        // DESTROY empties the window
        assertEquals(0, c.call(Fuse.SETUPMAPPING, f, setup(0, PAGE, 2, 0)).error());
        assertEquals(0, c.call(Fuse.DESTROY, 0, new byte[0]).error());
        assertArrayEquals(new byte[PAGE], window.mapping().read(0, PAGE));
    }

    @Test
    void hostileRangesAndNodesAreRefused() throws Exception {
        file("f", 1);
        Files.createDirectory(dir.resolve("d"));
        new ProcessBuilder("mkfifo", dir.resolve("p").toString()).start().waitFor();
        FuseClient c = client(new PassthroughFs(dir, PassthroughOptions.builder().build()), false);
        long f = c.lookupNode(1, "f");
        long[][] bad = { // foffset, len, moffset
            {0, PAGE, 1}, {0, 100, 0}, {1, PAGE, 0}, {0, 4096, 0}, {4096, PAGE, 0}, {0, PAGE, 4096}, {0, 0, 0}, {0, PAGE, WINDOW}, {0, 2 * PAGE, WINDOW - PAGE},
            {0, -PAGE, PAGE}, {-PAGE, PAGE, 0}, {Long.MAX_VALUE & -PAGE, 2 * PAGE, 0}, {0, PAGE, -PAGE},
        };
        for (long[] b : bad) {
            assertEquals(Errnos.EINVAL, c.call(Fuse.SETUPMAPPING, f, setup(b[0], b[1], 2, b[2])).error(),
                    "foffset " + b[0] + " len " + b[1] + " moffset " + b[2]);
        }
        assertEquals(Errnos.EISDIR, c.call(Fuse.SETUPMAPPING, c.lookupNode(1, "d"), setup(0, PAGE, 2, 0)).error());
        assertEquals(Errnos.EACCES, c.call(Fuse.SETUPMAPPING, c.lookupNode(1, "p"), setup(0, PAGE, 2, 0)).error(),
                "never a special file");
        assertEquals(Errnos.EINVAL, c.call(Fuse.SETUPMAPPING, f, FuseClient.body().i64(0)).error(), "truncated");
        assertEquals(Errnos.EINVAL, c.call(Fuse.REMOVEMAPPING, 0, FuseClient.body().i32(2).i64(0).i64(PAGE)).error(),
                "fewer ranges than counted");
        assertEquals(Errnos.EINVAL, c.call(Fuse.REMOVEMAPPING, 0, FuseClient.body().i32(257)).error());
        assertEquals(Errnos.EINVAL, c.call(Fuse.REMOVEMAPPING, 0, FuseClient.body().i32(1).i64(WINDOW).i64(PAGE)).error());
        assertEquals(0, c.call(Fuse.REMOVEMAPPING, 0, FuseClient.body().i32(1).i64(0).i64(-1)).error(), "all of it");
    }

    @Test
    void aReadOnlyShareMapsReadOnly() throws Exception {
        byte[] data = file("f", 1);
        FuseClient c = client(new PassthroughFs(dir, PassthroughOptions.builder().readOnly(true).build()), true);
        long f = c.lookupNode(1, "f");
        assertEquals(Errnos.EROFS, c.call(Fuse.SETUPMAPPING, f, setup(0, PAGE, 3, 0)).error());
        assertEquals(0, c.call(Fuse.SETUPMAPPING, f, setup(0, PAGE, 2, 0)).error());
        window.mapping().write(0, new byte[] {9, 9, 9}, 0, 3);
        assertArrayEquals(data, Files.readAllBytes(dir.resolve("f")));
    }

    @Test
    void virtualFilesAreCopiedIntoTheWindow() throws Exception {
        byte[] content = "virtual".getBytes(StandardCharsets.US_ASCII);
        FuseClient c = client(new AugmentFs(new PassthroughFs(dir, PassthroughOptions.builder().build()),
                List.of(VirtualEntry.file("v", content, 0644, false)), null), false);
        long v = c.lookupNode(1, "v");
        assertEquals(0, c.call(Fuse.SETUPMAPPING, v, setup(0, PAGE, 2, PAGE)).error());
        byte[] page = window.mapping().read(PAGE, PAGE);
        assertArrayEquals(content, java.util.Arrays.copyOf(page, content.length));
        assertEquals(0, page[content.length], "zeros past the end");
        assertEquals(Errnos.EACCES, c.call(Fuse.SETUPMAPPING, v, setup(0, PAGE, 3, PAGE)).error());
    }

    @Test
    void withoutAWindowOrABackendThatMapsThereIsNone() {
        FuseServer none = new FuseServer(new PassthroughFs(dir, PassthroughOptions.builder().build()), false);
        assertTrue(none.daxWindow().isEmpty());
        FuseClient c = new FuseClient(none);
        c.init();
        assertEquals(Errnos.ENOSYS, c.call(Fuse.SETUPMAPPING, 1, setup(0, PAGE, 2, 0)).error());
        window = new HostDaxWindow(AnonymousMapping.map(WINDOW), 0);
        assertTrue(new FuseServer(new NullFs(), false, window).daxWindow().isEmpty(), "NullFs maps nothing");
    }
}
