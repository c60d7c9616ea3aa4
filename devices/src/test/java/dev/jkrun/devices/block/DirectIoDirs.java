package dev.jkrun.devices.block;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Assumptions;

/** Where direct-I/O tests can put images: O_DIRECT needs a file system that has it, and a temp dir may not. */
public final class DirectIoDirs {
    private DirectIoDirs() {}

    /**
     * {@code preferred} when its file system takes O_DIRECT, else a fresh directory under this module's
     * {@code target/} (on the build's disk); when neither does, the test is skipped saying so.
     */
    public static Path supporting(Path preferred) throws IOException {
        if (supports(preferred)) {
            return preferred;
        }
        Path target = Files.createDirectories(Path.of("target").toAbsolutePath());
        Path dir = Files.createTempDirectory(target, "direct-io-");
        if (supports(dir)) {
            return dir;
        }
        Assumptions.abort("no file system with O_DIRECT: neither " + preferred + " nor " + dir + " accepts it");
        throw new AssertionError("unreachable");
    }

    /** Whether a file created in {@code dir} opens with O_DIRECT. */
    public static boolean supports(Path dir) throws IOException {
        Path probe = Files.createTempFile(dir, "odirect", ".probe");
        try {
            return DiskImages.directIoSupported(probe);
        } finally {
            Files.delete(probe);
        }
    }


    /**
     * A regular file whose file system refuses O_DIRECT: an image on tmpfs where the kernel predates tmpfs's O_DIRECT
     * (Linux 6.6), else a procfs file, which the kernel refuses for the same reason (no direct I/O in that file
     * system) on every version.
     */
    static Path refusingFile(Path shmImage) {
        for (Path p : List.of(shmImage, Path.of("/proc/self/status"), Path.of("/proc/version"))) {
            if (Files.isRegularFile(p) && !DiskImages.directIoSupported(p)) {
                return p;
            }
        }
        Assumptions.abort("no file here refuses O_DIRECT (not even procfs)");
        throw new AssertionError("unreachable");
    }

    /** /dev/shm when it is a writable directory (tmpfs on Linux): no FALLOC_FL_ZERO_RANGE there. */
    static Optional<Path> shm() {
        Path shm = Path.of("/dev/shm");
        return Files.isDirectory(shm) && Files.isWritable(shm) ? Optional.of(shm) : Optional.empty();
    }
}
