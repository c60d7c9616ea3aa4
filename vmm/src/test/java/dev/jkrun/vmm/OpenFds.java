package dev.jkrun.vmm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/** This process's open descriptors, for tests that check a VM leaves none behind. */
final class OpenFds {
    private static final Path FDS = Path.of("/proc/self/fd");

    private OpenFds() {}

    /** How many descriptors are open. */
    static long count() throws IOException {
        try (Stream<Path> s = Files.list(FDS)) {
            return s.count();
        }
    }

    /** Each descriptor as "fd->target", for a failure message. */
    static List<String> list() throws IOException {
        try (Stream<Path> s = Files.list(FDS)) {
            return s.map(p -> {
                try {
                    return p.getFileName() + "->" + Files.readSymbolicLink(p);
                } catch (IOException e) {
                    return p.getFileName() + "->?";
                }
            }).toList();
        }
    }

    /**
     * What this process's fds name (fd number -> target), less the JVM's own comings and goings: jars it opens the
     * first time a class is loaded from them, cgroup files its container support reads, and the listing itself
     * (whose number moves when one of those takes a lower one). A fresh-clone CI run saw one
     * such fd more after the 50 cycles of LifecycleTest than before, with jkrun's own fds and mappings unchanged.
     */
    static Map<String, String> named() throws IOException {
        Map<String, String> m = new TreeMap<>();
        try (Stream<Path> s = Files.list(FDS)) {
            s.forEach(fd -> {
                try {
                    String t = Files.readSymbolicLink(fd).toString();
                    if (!t.endsWith(".jar") && !t.startsWith("/sys/fs/cgroup/") && !t.startsWith("/proc/")) {
                        m.put(fd.getFileName().toString(), t);
                    }
                } catch (IOException closedMeanwhile) {
                    // the listing's own fd, or one closed while we looked
                }
            });
        }
        return m;
    }
}
