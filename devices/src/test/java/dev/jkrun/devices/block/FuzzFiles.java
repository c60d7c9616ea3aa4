package dev.jkrun.devices.block;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Map;
import java.util.stream.Stream;
import java.util.zip.CRC32;

/** Helpers the image fuzz targets share: a scratch directory for the run, file checksums, open descriptors. */
public final class FuzzFiles {
    private FuzzFiles() {}

    /** A fresh directory, in tmpfs when there is one (fuzzing writes files every execution), removed at exit. */
    public static Path scratch(String prefix) {
        try {
            Path shm = Path.of("/dev/shm");
            Path d = Files.isDirectory(shm) && Files.isWritable(shm) ? Files.createTempDirectory(shm, prefix)
                    : Files.createTempDirectory(prefix);
            Runtime.getRuntime().addShutdownHook(new Thread(() -> delete(d)));
            return d;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void delete(Path d) {
        try (Stream<Path> s = Files.walk(d)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException | UncheckedIOException ignored) {
            // best effort at exit
        }
    }

    public static long crc(Path f) {
        try {
            CRC32 c = new CRC32();
            c.update(Files.readAllBytes(f));
            return c.getValue();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** This process's open descriptors and what each names ({@code /proc/self/fd}), less the listing's own. */
    public static Map<String, String> openFiles() {
        Map<String, String> m = new HashMap<>();
        String listing = "/proc/" + ProcessHandle.current().pid() + "/fd";
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            s.forEach(fd -> {
                try {
                    String target = Files.readSymbolicLink(fd).toString();
                    if (!target.equals(listing)) {
                        m.put(fd.getFileName().toString(), target);
                    }
                } catch (IOException gone) {
                    // closed meanwhile (the listing's own descriptor)
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return m;
    }

    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    /** Bytes this thread has allocated on the heap so far (differences bound what one call allocates). */
    public static long allocatedBytes() { return THREADS.getCurrentThreadAllocatedBytes(); }
}
