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

    @org.junit.jupiter.api.BeforeAll
    static void slf4jSimple() {
        org.junit.jupiter.api.Assumptions.assumeFalse(Boolean.getBoolean("jkrun.test.logback") || Boolean.getBoolean("jkrun.test.log4j"),
                "slf4j-simple's tests: not in the logback or log4j2 execution (a -Dtest run reaches them all)");
    }

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

    @org.junit.jupiter.api.io.TempDir
    java.nio.file.Path dir;

    /** A descriptor open for writing on a new file in dir; the caller closes it. */
    private dev.jkrun.libc.FileDescriptor targetFile(String name) throws Exception {
        java.nio.file.Path p = java.nio.file.Files.createFile(dir.resolve(name));
        return dev.jkrun.libc.FileDescriptor.open(p.toString(), dev.jkrun.libc.FileDescriptor.O_WRONLY);
    }

    private String read(String name) throws Exception {
        return java.nio.file.Files.readString(dir.resolve(name));
    }

    @Test
    void aTargetDescriptorReceivesTheRecordsUntilTheDefaultIsAskedFor() throws Exception {
        Logger log = LoggerFactory.getLogger("dev.jkrun.krun.test.Target");
        try (dev.jkrun.libc.FileDescriptor fd = targetFile("krun.log")) {
            assertEquals(0, krun.krun_init_log(fd.raw(), KrunConstants.KRUN_LOG_LEVEL_INFO, KrunConstants.KRUN_LOG_STYLE_NEVER, 0));
        } // the caller's descriptor is closed: jkrun writes to its own duplicate
        log.info("to the target descriptor");
        log.debug("below the level");
        assertTrue(read("krun.log").contains("to the target descriptor"), read("krun.log"));
        assertFalse(read("krun.log").contains("below the level"));
        assertEquals(0, krun.krun_init_log(KrunConstants.KRUN_LOG_TARGET_DEFAULT, KrunConstants.KRUN_LOG_LEVEL_INFO, 0, 0));
        log.info("back on stderr");
        assertFalse(read("krun.log").contains("back on stderr"), "restored");
    }

    @Test
    void javaUtilLoggingGetsAHandlerOnTheTree() throws Exception {
        try (dev.jkrun.libc.FileDescriptor fd = targetFile("jul.log")) {
            assertEquals("jul", KrunLogging.redirect(fd.raw(), "jul"));
        }
        java.util.logging.Logger.getLogger("dev.jkrun.krun.test.Jul").warning("a jul record");
        java.util.logging.Logger.getLogger("org.other").warning("another tree's record");
        assertTrue(read("jul.log").contains("a jul record"), read("jul.log"));
        assertFalse(read("jul.log").contains("another tree"));
        KrunLogging.restore();
        java.util.logging.Logger.getLogger("dev.jkrun.krun.test.Jul").warning("after restore");
        assertFalse(read("jul.log").contains("after restore"));
        assertTrue(java.util.logging.Logger.getLogger("dev.jkrun").getUseParentHandlers());
    }

    @Test
    void aTargetThatIsNotOpenOrNotWritableIsEINVAL() throws Exception {
        assertEquals(-KrunConstants.EINVAL, krun.krun_init_log(1 << 20, KrunConstants.KRUN_LOG_LEVEL_INFO, 0, 0), "not open");
        java.nio.file.Path p = java.nio.file.Files.writeString(dir.resolve("ro"), "x");
        try (dev.jkrun.libc.FileDescriptor ro = dev.jkrun.libc.FileDescriptor.open(p.toString(), dev.jkrun.libc.FileDescriptor.O_RDONLY)) {
            assertEquals(-KrunConstants.EINVAL, krun.krun_init_log(ro.raw(), KrunConstants.KRUN_LOG_LEVEL_INFO, 0, 0), "read-only");
        }
    }

    @Test
    void invalidLevelsAreEINVAL() {
        assertEquals(-KrunConstants.EINVAL, krun.krun_set_log_level(6));
        assertEquals(-KrunConstants.EINVAL, krun.krun_init_log(-1, 6, 0, 0));
    }
}
