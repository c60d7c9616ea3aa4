package dev.jkrun.kvm.testing;

import dev.jkrun.kvm.KvmAvailability;
import org.junit.jupiter.api.Assumptions;

/**
 * JUnit face of {@link KvmAvailability}: call {@link #assumeKvm()} first in every test that needs /dev/kvm. It
 * skips with a clear message when /dev/kvm is missing, and fails when CI=true (CI must not pass by skipping).
 * Other modules get it from the kvm test-jar ({@code <type>test-jar</type>}) or call KvmAvailability directly.
 */
public final class KvmAvailable {
    private KvmAvailable() {}

    public static void assumeKvm() {
        String reason = KvmAvailability.unavailableReason();
        Assumptions.assumeTrue(reason == null, reason);
    }
}
