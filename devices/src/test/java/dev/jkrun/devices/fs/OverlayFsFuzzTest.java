package dev.jkrun.devices.fs;

import static org.junit.jupiter.api.Assertions.*;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jkrun.devices.fs.overlay.OverlayFs;
import dev.jkrun.devices.fs.passthrough.PassthroughOptions;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Sequences of overlay operations from a hostile guest, through the FileSystem interface, over two lower layers (an
 * OCI one with whiteouts and an opaque directory) and an upper one, beside an "outside" directory that a lower
 * symlink points at. Oracles: every failure is an FsException (nothing else escapes); the lower layers and the
 * outside directory never change; no listing shows a {@code .wh.} name; every handle is gone after DESTROY; a
 * readable name is readable again from a fresh server over the same layers (the upper layer stays consistent).
 * Replayed from the committed inputs in every test run; fuzzed with {@code fuzz/run OverlayFsFuzzTest}.
 */
class OverlayFsFuzzTest {
    static final int MAX_OPS = 64;
    static final String[] NAMES = {"etc", "hostname", "passwd", "bin", "sh", "link", "opaque", "shown", "hidden",
        "keep", "a", "sub", "deep", "new", "d2", "escape", "canary", "top.txt", "..", ".", "", "a/b", ".wh.etc",
        ".wh..wh..opq", ".wh.x", "x".repeat(252), "y".repeat(256)};

    @FuzzTest(maxDuration = "1h")
    void lowerLayersNeverChange(FuzzedDataProvider data) throws Exception {
        Path tmp = Files.createTempDirectory("overlay-fuzz");
        try {
            run(tmp, data);
        } finally {
            FuseServerFuzzTest.deleteTree(tmp);
        }
    }

    static void run(Path tmp, FuzzedDataProvider data) throws Exception {
        Path bottom = Files.createDirectories(tmp.resolve("bottom"));
        Path middle = Files.createDirectories(tmp.resolve("middle"));
        Path upper = Files.createDirectories(tmp.resolve("upper"));
        Path outside = Files.createDirectories(tmp.resolve("outside"));
        Files.writeString(outside.resolve("canary"), "outside");
        OverlayFsTest.write(bottom, "etc/hostname", "bottom");
        OverlayFsTest.write(bottom, "etc/passwd", "root");
        OverlayFsTest.write(bottom, "bin/sh", "sh");
        OverlayFsTest.write(bottom, "opaque/hidden", "h");
        OverlayFsTest.write(bottom, "keep/sub/deep", "deep");
        OverlayFsTest.write(bottom, "top.txt", "top");
        Files.createSymbolicLink(bottom.resolve("escape"), outside);
        Files.createSymbolicLink(bottom.resolve("bin/link"), Path.of("../../outside/canary"));
        OverlayFsTest.write(middle, "etc/hostname", "middle");
        OverlayFsTest.write(middle, "opaque/.wh..wh..opq", "");
        OverlayFsTest.write(middle, "opaque/shown", "s");
        OverlayFsTest.write(middle, ".wh.top.txt", "");
        Map<String, String> before = OverlayFsTest.snapshot(bottom);
        before.putAll(OverlayFsTest.snapshot(middle));
        before.putAll(OverlayFsTest.snapshot(outside));

        OverlayFs fs = new OverlayFs(List.of(bottom, middle, upper), PassthroughOptions.defaults());
        List<Long> nodes = new ArrayList<>(List.of(FileSystem.ROOT_ID));
        List<Long> handles = new ArrayList<>();
        try {
            for (int op = 0; op < MAX_OPS && data.remainingBytes() > 0; op++) {
                long node = nodes.get(data.consumeInt(0, nodes.size() - 1));
                byte[] name = NAMES[data.consumeInt(0, NAMES.length - 1)].getBytes(StandardCharsets.UTF_8);
                long fh = handles.isEmpty() ? data.consumeLong() : handles.get(data.consumeInt(0, handles.size() - 1));
                try {
                    int kind = data.consumeInt(0, GuestFsOps.COUNT - 1);
                    if (GuestFsOps.apply(fs, data, kind, node, name, fh, nodes, handles, NAMES, 0100)) {
                        continue;
                    }
                    if (kind == GuestFsOps.READ) {
                        fs.read(node, fh, data.consumeLong(-1, 1 << 20), ByteBuffer.allocate(128));
                    } else {
                        listWithoutMetadata(fs, node, data.consumeLong(-1, 8));
                    }
                } catch (FsException expected) {
                    // the guest gets an errno
                }
            }
            fs.destroy();
            assertEquals(0, fs.handleCount(), "handles after DESTROY");
        } finally {
            fs.close();
        }
        Map<String, String> after = OverlayFsTest.snapshot(bottom);
        after.putAll(OverlayFsTest.snapshot(middle));
        after.putAll(OverlayFsTest.snapshot(outside));
        assertEquals(before, after, "lower layers and the outside directory are unchanged");
        // a fresh server over the same layers lists the root without metadata
        try (OverlayFs again = new OverlayFs(List.of(bottom, middle, upper), PassthroughOptions.defaults())) {
            listWithoutMetadata(again, FileSystem.ROOT_ID, 0);
        }
    }

    /** Lists {@code node} of {@code fs} from {@code offset}; fails on any name the layers use as metadata. */
    static void listWithoutMetadata(FileSystem fs, long node, long offset) throws FsException {
        Opened o = fs.opendir(Context.ROOT, node, 0);
        DirNames sink = new DirNames();
        fs.readdir(node, o.fh(), offset, sink);
        fs.releasedir(node, o.fh());
        for (String n : sink.names) {
            assertFalse(n.startsWith(".wh."), "metadata listed: " + n);
        }
    }
}
