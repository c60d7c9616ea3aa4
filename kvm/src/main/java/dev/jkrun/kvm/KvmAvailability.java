package dev.jkrun.kvm;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Whether tests that need a real /dev/kvm can run, without a JUnit dependency so that every module's tests can
 * use it: {@code Assumptions.assumeTrue(reason == null, reason)} with {@code reason = unavailableReason()}.
 * A missing /dev/kvm skips such tests, except under CI=true, where it is an error: CI must not pass by skipping.
 * A /dev/kvm that exists but cannot be opened is not a reason to skip: those tests fail with the real error.
 */
public final class KvmAvailability {
    static final String DEVICE = "/dev/kvm";

    private KvmAvailability() {}

    public static boolean present() { return Files.exists(Path.of(DEVICE)); }

    /**
     * Null when /dev/kvm exists; otherwise a one-line reason to skip.
     *
     * @throws IllegalStateException when /dev/kvm is missing and the environment variable CI is "true"
     */
    public static String unavailableReason() {
        return unavailableReason(present(), System.getenv("CI"));
    }

    static String unavailableReason(boolean present, String ci) {
        if (present) {
            return null;
        }
        if ("true".equalsIgnoreCase(ci)) {
            throw new IllegalStateException("CI=true but /dev/kvm is missing");
        }
        return "/dev/kvm is missing: skipping a test that needs KVM (set CI=true to make this a failure)";
    }
}
