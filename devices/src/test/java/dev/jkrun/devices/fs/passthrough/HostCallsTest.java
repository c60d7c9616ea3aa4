package dev.jkrun.devices.fs.passthrough;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jkrun.devices.fs.Context;
import dev.jkrun.libc.PosixFs;
import java.util.concurrent.Callable;
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
        int[] seen = onThreadOfItsOwn(() -> {
            PosixFs.setfsgid(4242);
            PosixFs.setfsuid(4343);
            int[] inside = HostCalls.as(true, new Context(1000, 1001, 1), HostCallsTest::fsIds);
            int[] after = fsIds();
            int[] asRoot = HostCalls.as(true, Context.ROOT, HostCallsTest::fsIds);
            return new int[] {inside[0], inside[1], after[0], after[1], asRoot[0], asRoot[1]};
        });
        assertArrayEquals(new int[] {1000, 1001, 4343, 4242, 4343, 4242}, seen,
                "fsuid/fsgid inside the call, after it, and for a root caller (left as they are)");
    }

    /**
     * A caller's supplementary groups are exactly what its request carried (none, or FUSE_CREATE_SUPP_GROUP's one),
     * never the VMM's, and only on the thread serving it: another thread, and this one afterwards, keep theirs.
     */
    @Test
    void asSetsTheRequestsGroupsOnItsThreadOnly() throws Exception {
        assumeTrue(PosixFs.geteuid() == 0, "setting groups needs CAP_SETGID");
        int[] main = PosixFs.threadGroups();
        int[][] s = onThreadOfItsOwn(() -> {
            int[] before = PosixFs.threadGroups();
            int[] carried = HostCalls.as(true, new Context(1000, 1000, 1, 1001), PosixFs::threadGroups);
            int[] none = HostCalls.as(true, new Context(1000, 1000, 1), PosixFs::threadGroups);
            return new int[][] {before, carried, none, PosixFs.threadGroups()};
        });
        assertArrayEquals(new int[] {1001}, s[1], "the carried group only");
        assertArrayEquals(new int[0], s[2], "none carried: none, not the VMM's");
        assertArrayEquals(s[0], s[3], "the thread's own groups back afterwards");
        assertArrayEquals(main, PosixFs.threadGroups(), "another thread's untouched");
    }

    /** Runs {@code body} on a new thread (credentials are per thread; they end with it) and returns its result. */
    private static <T> T onThreadOfItsOwn(Callable<T> body) throws Exception {
        AtomicReference<T> result = new AtomicReference<>();
        AtomicReference<Throwable> failed = new AtomicReference<>();
        Thread t = new Thread(() -> {
            try {
                result.set(body.call());
            } catch (Throwable e) {
                failed.set(e);
            }
        }, "host-calls-test");
        t.start();
        t.join();
        if (failed.get() != null) {
            throw new AssertionError(failed.get());
        }
        return result.get();
    }

    /** This thread's fsuid and fsgid: setfsuid/setfsgid(-1) change nothing and return the current ids. */
    private static int[] fsIds() {
        return new int[] {PosixFs.setfsuid(-1), PosixFs.setfsgid(-1)};
    }
}
