package dev.jkrun.libc;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** The raw ioctl path KVM_RUN takes: FFM on JDK 22+, JNR before; errno comes back negated either way. */
class IoctlTest {
    /** linux/kvm.h: KVM_GET_API_VERSION = _IO(KVMIO, 0x00), answered 12 by every KVM. */
    private static final long KVM_GET_API_VERSION = 0xAE00;

    @Test
    void rawPathIsFfmFromJdk22() {
        assertEquals(Runtime.version().feature() >= 22 ? "ffm" : "jnr", Ioctl.rawPath());
    }

    @Test
    void errnoComesBackNegated() {
        try (FileDescriptor f = FileDescriptor.open("/dev/null", FileDescriptor.O_RDONLY)) {
            assertEquals(-25 /* ENOTTY */, Ioctl.callRaw(f, KVM_GET_API_VERSION, 0));
        }
    }

    @Test
    void answersKvm() {
        if ("true".equals(System.getenv("CI"))) {
            assertTrue(Files.exists(Path.of("/dev/kvm")), "CI=true and no /dev/kvm");
        }
        Assumptions.assumeTrue(Files.exists(Path.of("/dev/kvm")), "no /dev/kvm here");
        try (FileDescriptor kvm = FileDescriptor.open("/dev/kvm", FileDescriptor.O_RDWR)) {
            assertEquals(12, Ioctl.callRaw(kvm, KVM_GET_API_VERSION, 0));
        }
    }
}
