package dev.jkrun.krun;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** krun_set_log_level and krun_init_log on SLF4J (slf4j-simple is this module's test backend). */
class KrunLoggingTest {
    private final LibKrun krun = new JkrunLibKrun();

    @AfterEach
    void restore() {
        assertEquals(0, krun.krun_set_log_level(KrunConstants.KRUN_LOG_LEVEL_INFO));
    }

    @Test
    void theLevelReachesSlf4jSimpleLoggersOldAndNew() {
        Logger before = LoggerFactory.getLogger("dev.jkrun.krun.test.Before");
        assertEquals("simple", KrunLogging.apply(KrunConstants.KRUN_LOG_LEVEL_INFO));
        assertFalse(before.isDebugEnabled());

        assertEquals(0, krun.krun_set_log_level(KrunConstants.KRUN_LOG_LEVEL_TRACE));
        assertEquals("trace", System.getProperty("org.slf4j.simpleLogger.log.dev.jkrun"));
        assertTrue(before.isTraceEnabled(), "a logger that existed before the call");
        assertTrue(LoggerFactory.getLogger("dev.jkrun.krun.test.After").isTraceEnabled(), "a logger made after it");

        assertEquals(0, krun.krun_init_log(KrunConstants.KRUN_LOG_TARGET_DEFAULT, KrunConstants.KRUN_LOG_LEVEL_ERROR,
                KrunConstants.KRUN_LOG_STYLE_NEVER, KrunConstants.KRUN_LOG_OPTION_NO_ENV));
        assertFalse(before.isWarnEnabled());
        assertTrue(before.isErrorEnabled());

        assertEquals(0, krun.krun_set_log_level(KrunConstants.KRUN_LOG_LEVEL_OFF));
        assertFalse(before.isErrorEnabled(), "off");
        assertFalse(LoggerFactory.getLogger("org.other.Logger").isDebugEnabled(), "other trees keep their level");
    }

    @Test
    void javaUtilLoggingGetsTheMatchingLevels() {
        java.util.logging.Level[] expected = {java.util.logging.Level.OFF, java.util.logging.Level.SEVERE,
            java.util.logging.Level.WARNING, java.util.logging.Level.INFO, java.util.logging.Level.FINE, java.util.logging.Level.FINEST};
        for (int level = 0; level <= 5; level++) {
            KrunLogging.applyJul(level);
            assertEquals(expected[level], java.util.logging.Logger.getLogger("dev.jkrun").getLevel());
        }
        java.util.logging.Logger.getLogger("dev.jkrun").setLevel(null);
    }

    @Test
    void invalidLevelsAreEINVAL() {
        assertEquals(-KrunConstants.EINVAL, krun.krun_set_log_level(6));
        assertEquals(-KrunConstants.EINVAL, krun.krun_init_log(-1, 6, 0, 0));
    }
}
