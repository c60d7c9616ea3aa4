package dev.jkrun.devices.block;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jkrun.libc.PosixFs;
import dev.jkrun.libc.Stat;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * VMDK descriptors from fuzzed bytes, in a directory that also holds a FIFO, a subdirectory, a device node (when
 * one can be made) and symlinks to a file outside, to /proc/self/mem and to /dev/null; a canary file lies beside
 * the directory. The input is one control byte (bit 0: read-only; bits 1-3: operations) and the descriptor text.
 * Oracle: opening succeeds or throws an IOException, within seconds (no FIFO wait); every descriptor it leaves open
 * names a regular file directly in the image's directory, and closing (or refusing) leaves none; reads and writes
 * of the opened disk throw nothing but IOExceptions; the canary never changes. Replayed from the committed inputs
 * by every test run; fuzzed with {@code fuzz/run VmdkOpenFuzzTest}.
 */
class VmdkOpenFuzzTest {
    static final int EXTENT_BYTES = 64 << 10;

    private static Path dir;
    private static Path descriptor;
    private static Path canary;
    private static long canaryCrc;
    private static ExecutorService opener;

    private static void setUp() throws Exception {
        Path root = FuzzFiles.scratch("vmdk-fuzz");
        dir = Files.createDirectory(root.resolve("img"));
        descriptor = dir.resolve("d.vmdk");
        canary = Files.write(root.resolve("outside.bin"), filled(EXTENT_BYTES, 0x0c));
        canaryCrc = FuzzFiles.crc(canary);
        Files.write(dir.resolve("f.bin"), filled(EXTENT_BYTES, 0x11));
        Files.write(dir.resolve("g.bin"), filled(EXTENT_BYTES, 0x22));
        Files.createDirectory(dir.resolve("sub"));
        Files.write(dir.resolve("sub/h.bin"), filled(EXTENT_BYTES, 0x33));
        Files.createSymbolicLink(dir.resolve("out.bin"), canary);
        Files.createSymbolicLink(dir.resolve("up.bin"), Path.of("../outside.bin"));
        Files.createSymbolicLink(dir.resolve("mem"), Path.of("/proc/self/mem"));
        Files.createSymbolicLink(dir.resolve("null"), Path.of("/dev/null"));
        PosixFs.mknodat(null, PosixFs.bytes(dir.resolve("p.fifo").toString()), Stat.S_IFIFO | 0600, 0);
        try {
            PosixFs.mknodat(null, PosixFs.bytes(dir.resolve("c.dev").toString()), Stat.S_IFCHR | 0600, (1 << 8) | 3);
        } catch (RuntimeException notPermitted) {
            // no device node here; the symlink to /dev/null still stands for one
        }
        opener = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "vmdk-fuzz-open");
            t.setDaemon(true);
            return t;
        });
        // Load the classes (and open the jars) the open path needs before any descriptor listing counts.
        for (String extent : new String[] {"f.bin", "mem"}) {
            Files.writeString(descriptor, "# Disk DescriptorFile\nRW 8 FLAT \"" + extent + "\" 0\n");
            DiskImage img = openWithin(false);
            if (img != null) {
                img.close();
            }
        }
    }

    private static byte[] filled(int n, int b) {
        byte[] d = new byte[n];
        Arrays.fill(d, (byte) b);
        return d;
    }

    @FuzzTest(maxDuration = "1h")
    // libFuzzer's dictionary format: no newlines or quotes inside entries (the seeds hold those)
    @DictionaryEntries({"# Disk DescriptorFile", "createType=", "monolithicFlat", "twoGbMaxExtentFlat", "vmfs", "RW ",
            "RDONLY ", "NOACCESS ", " FLAT ", " ZERO ", " VMFS ", " SPARSE ", "f.bin", "g.bin", "sub/h.bin",
            "../outside.bin", "out.bin", "up.bin", "mem", "null", "p.fifo", "c.dev", "sub", "/proc/self/mem",
            "/dev/null", "..", "d.vmdk", "128", "127", "129", "9223372036854775807", "36028797018963968",
            "18014398509481983"})
    void descriptorsStayInTheirDirectory(byte[] input) throws Exception {
        if (dir == null) {
            setUp();
        }
        int ctl = input.length > 0 ? input[0] & 0xff : 0;
        byte[] text = input.length > 0 ? Arrays.copyOfRange(input, 1, input.length) : input;
        Files.write(descriptor, text);
        boolean readOnly = (ctl & 1) != 0;
        int ops = (ctl >>> 1) & 7;

        Map<String, String> before = FuzzFiles.openFiles();
        DiskImage img = openWithin(readOnly);
        if (img != null) {
            Map<String, String> outside = openedSince(before, true);
            assertEquals(Map.of(), outside, "the descriptor opened files other than regular files in " + dir);
            try (img) {
                long cap = img.capacityBytes();
                for (int i = 0; i < ops; i++) {
                    long pos = cap / 8 * i;
                    int len = (int) Math.min(4096, cap - pos);
                    try {
                        if (((ctl >>> (4 + i % 4)) & 1) == 0) {
                            img.read(pos, ByteBuffer.allocate(len));
                        } else {
                            img.write(pos, ByteBuffer.wrap(filled(len, 0x5a)));
                        }
                    } catch (IOException expected) {
                        // ZERO or read-only extent, read-only disk: reported
                    }
                }
            }
        }
        assertEquals(Map.of(), openedSince(before, false), "descriptors left open");
        assertEquals(canaryCrc, FuzzFiles.crc(canary), "the file outside the image's directory changed");
    }

    /**
     * Descriptors open now that were not in {@code before} (less, when {@code extentsAllowed}, regular files in the
     * image's directory) and still are a moment later: the JVM's own come and go (jars it opens once), the image's
     * stay until it is closed. The JVM's container support reads cgroup files at any moment and, under load, holds
     * one longer than the pause (a 10-minute session reported memory.stat); those are never the image's.
     */
    private static Map<String, String> openedSince(Map<String, String> before, boolean extentsAllowed)
            throws InterruptedException {
        Map<String, String> now = new HashMap<>(FuzzFiles.openFiles());
        now.keySet().removeAll(before.keySet());
        now.values().removeIf(t -> t.endsWith(".jar") || t.startsWith("/sys/fs/cgroup/") || extentsAllowed && extent(t));
        if (!now.isEmpty()) {
            Thread.sleep(20);
            now.entrySet().retainAll(FuzzFiles.openFiles().entrySet());
        }
        return now;
    }

    private static boolean extent(String target) {
        Path t = Path.of(target);
        return dir.equals(t.getParent()) && Files.isRegularFile(t, LinkOption.NOFOLLOW_LINKS);
    }

    /** Opens the descriptor or returns null when refused; fails rather than hang when open blocks. */
    private static DiskImage openWithin(boolean readOnly) throws Exception {
        Future<DiskImage> f = opener.submit(() -> {
            try {
                return DiskImages.open(descriptor, ImageFormat.VMDK, readOnly, false);
            } catch (IOException refused) {
                return null;
            }
        });
        try {
            return f.get(10, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            fail("opening the descriptor still blocked after 10 s");
            return null;
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Exception x) {
                throw x;
            }
            throw (Error) e.getCause();
        }
    }
}
