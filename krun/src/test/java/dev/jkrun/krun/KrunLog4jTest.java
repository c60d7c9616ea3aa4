package dev.jkrun.krun;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/**
 * krun_init_log with Log4j 2 as the SLF4J backend (the krun module's "log4j2" surefire execution): a target
 * descriptor gets an appender of its own on the dev.jkrun tree, at the level asked for; other trees keep Log4j's
 * configuration; KRUN_LOG_TARGET_DEFAULT takes the appender away again, repeatedly.
 */
class KrunLog4jTest {
    @TempDir
    Path dir;

    @Test
    void levelAndTargetDescriptorThroughLog4j() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(Boolean.getBoolean("jkrun.test.log4j"),
                "runs in the krun module's log4j2 execution (mvn test), whose class path has Log4j 2");
        assertTrue(LoggerFactory.getILoggerFactory().getClass().getName().startsWith("org.apache.logging.slf4j."));
        LibKrun krun = new JkrunLibKrun();
        for (int round = 0; round < 2; round++) {
            LogTargetCheck.round(krun, dir.resolve("krun-" + round + ".log"), "dev.jkrun.krun.test.Log4j");
        }
    }
}
