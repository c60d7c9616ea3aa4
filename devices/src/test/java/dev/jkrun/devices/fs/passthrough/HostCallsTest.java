package dev.jkrun.devices.fs.passthrough;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jkrun.devices.fs.Context;
import dev.jkrun.libc.PosixFs;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class HostCallsTest {
    /**
     * After krun_setgid the process's fsgid is no longer 0: running an operation as the guest caller must leave the
     * thread with the fsuid/fsgid it had, not root's. fsuid/fsgid are per thread; the test changes them on a thread
     * of its own, which ends with it.
     */
    @Test
    void asRestoresTheFsIdsTheThreadHadBefore() throws Exception {
        assumeTrue(PosixFs.geteuid() == 0, "setting another fsuid/fsgid needs root");
        AtomicReference<int[]> seen = new AtomicReference<>();
        AtomicReference<Throwable> failed = new AtomicReference<>();
        Thread t = new Thread(() -> {
            try {
                PosixFs.setfsgid(4242);
                PosixFs.setfsuid(4343);
                int[] inside = HostCalls.as(true, new Context(1000, 1001, 1), HostCallsTest::fsIds);
                int[] after = fsIds();
                int[] asRoot = HostCalls.as(true, Context.ROOT, HostCallsTest::fsIds);
                seen.set(new int[] {inside[0], inside[1], after[0], after[1], asRoot[0], asRoot[1]});
            } catch (Throwable e) {
                failed.set(e);
            }
        }, "host-calls-test");
        t.start();
        t.join();
        if (failed.get() != null) {
            throw new AssertionError(failed.get());
        }
        assertArrayEquals(new int[] {1000, 1001, 4343, 4242, 4343, 4242}, seen.get(),
                "fsuid/fsgid inside the call, after it, and for a root caller (left as they are)");
    }

    /** This thread's fsuid and fsgid: setfsuid/setfsgid(-1) change nothing and return the current ids. */
    private static int[] fsIds() {
        return new int[] {PosixFs.setfsuid(-1), PosixFs.setfsgid(-1)};
    }
}
