package dev.jkrun.libc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;

/** The check after krun_setuid/krun_setgid, on /proc status texts: no credentials of the test JVM change. */
class ProcessCredentialsTest {
    private static final OptionalInt NOBODY = OptionalInt.of(65534), NONE = OptionalInt.empty();

    /** The lines of /proc/PID/status the check reads, as Linux writes them (tab after the colon). */
    private static String status(String uid, String gid, String capPrm, String capEff, String capAmb) {
        return "Name:\tjava\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t" + uid + "\nGid:\t" + gid + "\nFDSize:\t256\n"
                + "Groups:\t65534 \nCapInh:\t0000000000000000\nCapPrm:\t" + capPrm + "\nCapEff:\t" + capEff
                + "\nCapBnd:\t000001ffffffffff\n" + (capAmb == null ? "" : "CapAmb:\t" + capAmb + "\n") + "NoNewPrivs:\t0\n";
    }

    private static final String ZERO = "0000000000000000", ALL = "000001ffffffffff";

    @Test
    void aCleanSwitchLeavesNothing() {
        String s = status("65534\t65534\t65534\t65534", "65534\t65534\t65534\t65534", ZERO, ZERO, ZERO);
        assertEquals(Optional.empty(), ProcessCredentials.leftOver(s, NOBODY, NOBODY));
        assertEquals(Optional.empty(), ProcessCredentials.leftOver(s, NONE, NOBODY));
        assertEquals(Optional.empty(), ProcessCredentials.leftOver(s, NOBODY, NONE));
        String oldKernel = status("65534\t65534\t65534\t65534", "65534\t65534\t65534\t65534", ZERO, ZERO, null);
        assertEquals(Optional.empty(), ProcessCredentials.leftOver(oldKernel, NOBODY, NOBODY), "no CapAmb before 4.3");
    }

    @Test
    void anIdLeftBehindIsReported() {
        // setuid() by a process without CAP_SETUID changes only the effective uid: the saved one can switch back
        String savedRoot = status("65534\t65534\t0\t65534", "65534\t65534\t65534\t65534", ZERO, ZERO, ZERO);
        assertEquals(Optional.of("has Uid 65534 65534 0 65534"), ProcessCredentials.leftOver(savedRoot, NOBODY, NOBODY));
        String fsGid = status("65534\t65534\t65534\t65534", "65534\t65534\t65534\t0", ZERO, ZERO, ZERO);
        assertEquals(Optional.of("has Gid 65534 65534 65534 0"), ProcessCredentials.leftOver(fsGid, NOBODY, NOBODY));
        assertEquals(Optional.empty(), ProcessCredentials.leftOver(fsGid, NONE, NOBODY), "no gid was asked for");
        String big = status("4294967294\t4294967294\t4294967294\t4294967294", "1\t1\t1\t1", ZERO, ZERO, ZERO);
        assertEquals(Optional.empty(), ProcessCredentials.leftOver(big, OptionalInt.of(1), OptionalInt.of(-2)), "uids are unsigned");
        assertEquals(Optional.of("has no Uid line"), ProcessCredentials.leftOver("Name:\tjava\n", NONE, NOBODY));
        assertEquals(Optional.of("has Uid 65534 65534"), ProcessCredentials.leftOver("Uid:\t65534 65534\n", NONE, NOBODY));
    }

    @Test
    void capabilitiesKeptByANonRootUserAreReported() {
        // e.g. SECBIT_KEEP_CAPS or SECBIT_NO_SETUID_FIXUP set before the switch, or ambient capabilities raised
        String ids = "65534\t65534\t65534\t65534";
        assertEquals(Optional.of("keeps capabilities CapEff " + ALL),
                ProcessCredentials.leftOver(status(ids, ids, ALL, ALL, ZERO), NOBODY, NOBODY));
        assertEquals(Optional.of("keeps capabilities CapPrm 0000000000000400"),
                ProcessCredentials.leftOver(status(ids, ids, "0000000000000400", ZERO, ZERO), NOBODY, NOBODY));
        assertEquals(Optional.of("keeps capabilities CapAmb 0000000000000400"),
                ProcessCredentials.leftOver(status(ids, ids, ZERO, ZERO, "0000000000000400"), NOBODY, NOBODY));
        assertEquals(Optional.of("has no CapEff line"),
                ProcessCredentials.leftOver("Uid:\t" + ids + "\nCapPrm:\t" + ZERO + "\n", NONE, NOBODY));
        // root keeps its capabilities: only a switch of gid (or to uid 0) was asked for
        String root = status("0\t0\t0\t0", ids, ALL, ALL, ZERO);
        assertEquals(Optional.empty(), ProcessCredentials.leftOver(root, NOBODY, NONE));
        assertEquals(Optional.empty(), ProcessCredentials.leftOver(root, NOBODY, OptionalInt.of(0)));
    }

    @Test
    void theRealStatusOfThisThreadParses() throws Exception {
        String self = Files.readString(Path.of("/proc/thread-self/status"));
        assertTrue(ProcessCredentials.leftOver(self, NONE, OptionalInt.of(4242)).orElseThrow().startsWith("has Uid "), self);
        assumeTrue(self.contains("\nUid:\t0\t0\t0\t0\n"), "a JVM running as root");
        assertEquals(Optional.empty(), ProcessCredentials.leftOver(self, NONE, OptionalInt.of(0)), "root keeps its capabilities");
    }

    /**
     * The whole switch, in a child JVM (the test's own credentials stay): a clean one passes the check on every
     * thread; one that keeps capabilities across the uid change (PR_SET_KEEPCAPS: setresuid then leaves the
     * permitted set) is refused with EPERM, where setuid alone reported success.
     */
    @Test
    void aSwitchThatKeepsCapabilitiesIsRefused() throws Exception {
        assumeTrue(Files.readString(Path.of("/proc/self/status")).contains("\nUid:\t0\t0\t0\t0\n"), "needs root to switch ids");
        assertEquals("SWITCHED", child("plain"));
        String refused = child("keepcaps");
        assertTrue(refused.startsWith("REFUSED " + Errno.EPERM + " switching to gid 65534 uid 65534 (thread ")
                && refused.contains("keeps capabilities CapPrm"), refused);
    }

    private static String child(String mode) throws Exception {
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), SwitchCredentialsMain.class.getName(), mode)
                .redirectError(ProcessBuilder.Redirect.DISCARD).start(); // stdout only: newer JDKs warn on stderr
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes()).strip();
        assertEquals(0, p.waitFor(), out);
        return out;
    }
}
