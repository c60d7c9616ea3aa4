package dev.jkrun.krun;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
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
        LogTargetCheck.round(krun, dir.resolve("krun.log"), "dev.jkrun.krun.test.Logback");
        assertTrue(LogbackProbe.started(own), "the application's appender is left alone");
        assertTrue(LogbackProbe.received(own, "after the default came back"));
        assertTrue(LogbackProbe.additive("dev.jkrun"), "additivity as it was");
    }
}
