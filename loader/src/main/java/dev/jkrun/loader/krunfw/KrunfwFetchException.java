package dev.jkrun.loader.krunfw;

/** Fetching libkrunfw from the npm registry failed; the message is one line meant for the user. */
public final class KrunfwFetchException extends RuntimeException {
    public enum Reason {
        /** No {@code npm} on the PATH. */
        NPM_MISSING,
        /** {@code npm pack} exited non-zero or timed out. */
        NPM_FAILED,
        /** The package tarball is not what we expect (no .tgz, no single *.node). */
        BAD_PACKAGE,
        /** No embedded ELF shared object exporting krunfw_get_kernel. */
        NO_EMBEDDED_LIBRARY,
        /** The extracted library's sha256 is not the pinned one. */
        CHECKSUM_MISMATCH,
        /** Local file I/O failed (temp dir, cache dir). */
        IO
    }

    private final Reason reason;

    public KrunfwFetchException(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    public KrunfwFetchException(Reason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    public Reason reason() { return reason; }
}
