package dev.jkrun.libc;

import java.util.OptionalInt;
import jnr.ffi.LibraryLoader;

/**
 * Run in a child JVM by {@link ProcessCredentialsTest}: switches to uid and gid 65534, first keeping capabilities
 * across the uid change (PR_SET_KEEPCAPS) when the argument is {@code keepcaps}, and prints {@code SWITCHED} or
 * {@code REFUSED <errno> <message>}.
 */
public final class SwitchCredentialsMain {
    /** prctl(2) for this test only. */
    public interface Prctl {
        int prctl(int option, long arg2, long arg3, long arg4, long arg5);
    }

    private static final int PR_SET_KEEPCAPS = 8;

    private SwitchCredentialsMain() {}

    public static void main(String[] args) {
        if (args.length > 0 && args[0].equals("keepcaps")) {
            Prctl p = LibraryLoader.create(Prctl.class).load("c");
            if (p.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
                System.out.println("prctl failed");
                return;
            }
        }
        try {
            ProcessCredentials.switchTo(OptionalInt.of(65534), OptionalInt.of(65534));
            System.out.println("SWITCHED");
        } catch (NativeCallException e) {
            System.out.println("REFUSED " + e.errno() + " " + e.getMessage());
        }
    }
}
