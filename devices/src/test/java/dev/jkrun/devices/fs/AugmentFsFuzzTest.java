package dev.jkrun.devices.fs;

import static org.junit.jupiter.api.Assertions.*;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jkrun.devices.fs.augment.AugmentFs;
import dev.jkrun.devices.fs.augment.VirtualEntry;
import dev.jkrun.devices.fs.passthrough.PassthroughFs;
import dev.jkrun.devices.fs.passthrough.PassthroughOptions;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Sequences of operations from a hostile guest on virtual entries over a host directory whose names the entries hide.
 * Oracles: every failure is an FsException; the hidden host files never change; a virtual file always reads as its
 * content; no listing of the root names anything twice. Replayed from the committed inputs in every test run;
 * fuzzed with {@code fuzz/run AugmentFsFuzzTest}.
 */
class AugmentFsFuzzTest {
    static final int MAX_OPS = 64;
    static final String[] NAMES = {"etc", "hostname", "init.krun", "agent", "dev", "nested", "deep.txt", "free",
        "other", "..", ".", "", "a/b", "x".repeat(256)};
    static final byte[] INIT = "#!init".getBytes(StandardCharsets.UTF_8);

    @FuzzTest(maxDuration = "1h")
    void hiddenHostFilesNeverChange(FuzzedDataProvider data) throws Exception {
        Path tmp = Files.createTempDirectory("augment-fuzz");
        try {
            run(tmp, data);
        } finally {
            FuseServerFuzzTest.deleteTree(tmp);
        }
    }

    static void run(Path dir, FuzzedDataProvider data) throws Exception {
        OverlayFsTest.write(dir, "etc/hostname", "host");
        OverlayFsTest.write(dir, "init.krun", "host-init");
        OverlayFsTest.write(dir, "agent", "host-agent");
        OverlayFsTest.write(dir, "other", "o");
        Path hidden = dir.resolve("etc");
        Map<String, String> before = OverlayFsTest.snapshot(hidden);
        List<VirtualEntry> entries = List.of(VirtualEntry.dir("etc", 0755), VirtualEntry.file("etc/hostname", INIT, 0644, false),
                VirtualEntry.file("init.krun", INIT, 0755, false), VirtualEntry.file("agent", INIT, 0755, true),
                VirtualEntry.dir("dev", 0755), VirtualEntry.dir("dev/nested", 0755),
                VirtualEntry.file("dev/nested/deep.txt", INIT, 0444, false));
        AugmentFs fs = new AugmentFs(new PassthroughFs(dir, PassthroughOptions.defaults()), entries, null);
        List<Long> nodes = new ArrayList<>(List.of(FileSystem.ROOT_ID));
        List<Long> handles = new ArrayList<>();
        try {
            for (int op = 0; op < MAX_OPS && data.remainingBytes() > 0; op++) {
                long node = data.consumeBoolean() ? nodes.get(data.consumeInt(0, nodes.size() - 1))
                        : AugmentFs.NODE_BASE + data.consumeInt(-2, 10);
                byte[] name = NAMES[data.consumeInt(0, NAMES.length - 1)].getBytes(StandardCharsets.UTF_8);
                long fh = handles.isEmpty() ? data.consumeLong() : handles.get(data.consumeInt(0, handles.size() - 1));
                try {
                    int kind = data.consumeInt(0, GuestFsOps.COUNT - 1);
                    if (GuestFsOps.apply(fs, data, kind, node, name, fh, nodes, handles, NAMES, 01100)) {
                        continue;
                    }
                    if (kind == GuestFsOps.READ) {
                        ByteBuffer dst = ByteBuffer.allocate(64);
                        long offset = data.consumeLong(-1, 16);
                        int n = fs.read(node, fh, offset, dst);
                        if (Long.compareUnsigned(node - AugmentFs.NODE_BASE, 16) < 0 && n > 0) {
                            byte[] got = new byte[n];
                            dst.flip().get(got);
                            assertArrayEquals(Arrays.copyOfRange(INIT, (int) offset, (int) offset + n), got);
                        }
                    } else {
                        listOnce(fs, node, data.consumeLong(-1, 8));
                    }
                } catch (FsException expected) {
                    // the guest gets an errno
                }
            }
            listOnce(fs, FileSystem.ROOT_ID, 0);
            fs.destroy();
        } finally {
            fs.close();
        }
        assertEquals(before, OverlayFsTest.snapshot(hidden), "the host files under a virtual name are unchanged");
        assertEquals("host-init", Files.readString(dir.resolve("init.krun")));
        assertEquals("host-agent", Files.readString(dir.resolve("agent")));
    }

    /** Lists {@code node} to the end, as the guest does (again after the last cookie); fails on a name seen twice. */
    static void listOnce(FileSystem fs, long node, long offset) throws FsException {
        Opened o = fs.opendir(Context.ROOT, node, 0);
        Set<String> seen = new HashSet<>();
        long cookie = offset;
        for (int call = 0; call < 64; call++) {
            DirNames sink = new DirNames();
            fs.readdir(node, o.fh(), cookie, sink);
            for (String n : sink.names) {
                assertTrue(seen.add(n), "listed twice: " + n);
            }
            if (sink.names.isEmpty()) {
                break;
            }
            cookie = sink.next;
        }
        fs.releasedir(node, o.fh());
    }
}
