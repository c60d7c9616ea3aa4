package dev.jkrun.krun;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * krun_init_log with Logback as the SLF4J backend (the krun module's "logback" surefire execution, whose class path
 * has Logback instead of slf4j-simple): the level reaches the dev.jkrun logger, a target descriptor gets an appender
 * of its own on that tree (other trees keep Logback's configuration), and KRUN_LOG_TARGET_DEFAULT removes it.
 */
class KrunLogbackTest {
    @TempDir
    Path dir;

    @Test
    void levelAndTargetDescriptorThroughLogback() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(Boolean.getBoolean("jkrun.test.logback"),
                "runs in the krun module's logback execution (mvn test), whose class path has Logback");
        assertEquals("ch.qos.logback.classic.LoggerContext", LoggerFactory.getILoggerFactory().getClass().getName());
        LibKrun krun = new JkrunLibKrun();
        // the application's own appender on the tree, and its additivity, outlive jkrun's redirect and restore
        Object own = LogbackProbe.attachListAppender("dev.jkrun");
        Path file = Files.createFile(dir.resolve("krun.log"));
        Logger jk = LoggerFactory.getLogger("dev.jkrun.krun.test.Logback");
        Logger other = LoggerFactory.getLogger("org.other.Logback");
        try (dev.jkrun.libc.FileDescriptor fd = dev.jkrun.libc.FileDescriptor.open(file.toString(), dev.jkrun.libc.FileDescriptor.O_WRONLY)) {
            assertEquals(0, krun.krun_init_log(fd.raw(), KrunConstants.KRUN_LOG_LEVEL_WARN, KrunConstants.KRUN_LOG_STYLE_NEVER, 0));
        }
        jk.warn("a warning for the target");
        jk.info("an info below the level");
        other.warn("another tree");
        String log = Files.readString(file);
        assertTrue(log.contains("WARN  dev.jkrun.krun.test.Logback - a warning for the target"), log);
        assertFalse(log.contains("below the level"), log);
        assertFalse(log.contains("another tree"), log);
        assertEquals(0, krun.krun_init_log(KrunConstants.KRUN_LOG_TARGET_DEFAULT, KrunConstants.KRUN_LOG_LEVEL_INFO, 0, 0));
        jk.warn("after the default came back");
        assertFalse(Files.readString(file).contains("after the default"), "the appender is gone");
        assertTrue(jk.isInfoEnabled(), "the level follows the call");
        assertTrue(LogbackProbe.started(own), "the application's appender is left alone");
        assertTrue(LogbackProbe.received(own, "after the default came back"));
        assertTrue(LogbackProbe.additive("dev.jkrun"), "additivity as it was");
    }
}
