package dev.jkrun.loader.krunfw;

import java.nio.file.Path;

/** A libkrunfw path that was asked for explicitly (argument or JKRUN_KRUNFW) does not exist. */
public final class KrunfwNotFoundException extends RuntimeException {
    private final Path path;

    public KrunfwNotFoundException(Path path, String message) {
        super(message);
        this.path = path;
    }

    /** The path that was asked for. */
    public Path path() { return path; }
}
