package dev.jkrun.init;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/**
 * The guest init binary, {@code /init.krun}: a static Linux program built from {@code src/main/c} (see init.c for
 * its behaviour) for x86_64 and aarch64, shipped as classpath resources; a guest gets the build for the host's
 * architecture, which is its own.
 *
 * <p>The VMM serves it from the root share as a virtual file {@link #FILE_NAME} (mode 0755), with
 * the workload config beside it as {@link InitConfig#FILE_NAME}, and puts {@code init=/init.krun}
 * on the kernel command line. At the end the init reports the workload's status with
 * {@code ioctl(rootfd, }{@link #EXIT_STATUS_IOCTL}{@code , status)} on the virtio-fs root: the
 * status is the ioctl's integer argument (FUSE_IOCTL {@code arg}, no in/out data), as libkrun.
 */
public final class GuestInit {

    /** The name of the virtual file in the root share, and {@code init=/init.krun}. */
    public static final String FILE_NAME = "init.krun";

    /** {@code _IO('v', 2)}: the FUSE_IOCTL command carrying the exit status in its argument. */
    public static final int EXIT_STATUS_IOCTL = 0x7602;

    /** Exit statuses reserved by the init (libkrun's). */
    public static final int EXIT_SETUP_FAILED = 125;
    public static final int EXIT_CANNOT_EXECUTE = 126;
    public static final int EXIT_NOT_FOUND = 127;

    private static final String RESOURCE = "aarch64".equals(System.getProperty("os.arch"))
            ? "/dev/jkrun/init/init-aarch64.krun" : "/dev/jkrun/init/init.krun";

    private GuestInit() {
    }

    /** The init.krun bytes (a fresh copy each call). */
    public static byte[] binary() {
        try (InputStream in = GuestInit.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("guest init resource " + RESOURCE
                        + " is missing from the classpath (the jkrun-init build runs make)");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + RESOURCE, e);
        }
    }
}
