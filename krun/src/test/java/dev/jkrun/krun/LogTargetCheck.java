package dev.jkrun.krun;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** One round of krun_init_log with a target descriptor and back, whatever the SLF4J backend (appender-based ones). */
final class LogTargetCheck {
    private LogTargetCheck() {}

    /**
     * A new file becomes the target at WARN: a warning of {@code jkName} arrives in jkrun's pattern, an info does
     * not, another tree's record does not; KRUN_LOG_TARGET_DEFAULT at INFO then takes the output away again.
     */
    static void round(LibKrun krun, Path file, String jkName) throws Exception {
        Logger jk = LoggerFactory.getLogger(jkName);
        Logger other = LoggerFactory.getLogger("org.other.Tree");
        Files.createFile(file);
        try (dev.jkrun.libc.FileDescriptor fd = dev.jkrun.libc.FileDescriptor.open(file.toString(), dev.jkrun.libc.FileDescriptor.O_WRONLY)) {
            assertEquals(0, krun.krun_init_log(fd.raw(), KrunConstants.KRUN_LOG_LEVEL_WARN, KrunConstants.KRUN_LOG_STYLE_NEVER, 0));
        }
        jk.warn("a warning for the target");
        jk.info("an info below the level");
        other.error("another tree");
        String log = Files.readString(file);
        assertTrue(log.contains("WARN  " + jkName + " - a warning for the target"), log);
        assertFalse(log.contains("below the level"), log);
        assertFalse(log.contains("another tree"), log);
        assertEquals(0, krun.krun_init_log(KrunConstants.KRUN_LOG_TARGET_DEFAULT, KrunConstants.KRUN_LOG_LEVEL_INFO, 0, 0));
        jk.warn("after the default came back");
        assertFalse(Files.readString(file).contains("after the default"), "jkrun's output is gone");
        assertTrue(jk.isInfoEnabled(), "the level follows the call");
    }
}
