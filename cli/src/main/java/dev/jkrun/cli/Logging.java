package dev.jkrun.cli;

import java.util.Locale;
import java.util.Set;

/** Maps --log-level onto slf4j-simple (the CLI's binding); the library itself logs only through SLF4J. */
final class Logging {
    private static final Set<String> LEVELS = Set.of("off", "error", "warn", "info", "debug", "trace");

    private Logging() {}

    static void setLevel(String level) {
        String l = level.toLowerCase(Locale.ROOT);
        if (!LEVELS.contains(l)) {
            throw new Main.UsageException("--log-level must be one of off, error, warn, info, debug, trace; got '" + level + "'");
        }
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", l);
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
        if (l.equals("debug") || l.equals("trace")) {
            System.setProperty("jkrun.debug", "true");
        }
    }
}
