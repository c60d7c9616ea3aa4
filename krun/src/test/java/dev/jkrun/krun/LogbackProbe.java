package dev.jkrun.krun;

import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import org.slf4j.LoggerFactory;

/**
 * KrunLogbackTest's Logback calls, kept out of the test class so that JUnit can discover that class where Logback is
 * not on the class path (the default surefire execution, when a -Dtest run names it); it then skips.
 */
final class LogbackProbe {
    private LogbackProbe() {}

    /** An application's own appender on {@code logger}, started. */
    static Object attachListAppender(String logger) {
        LoggerContext ctx = (LoggerContext) LoggerFactory.getILoggerFactory();
        ListAppender<ILoggingEvent> a = new ListAppender<>();
        a.setContext(ctx);
        a.start();
        ctx.getLogger(logger).addAppender(a);
        return a;
    }

    static boolean started(Object appender) {
        return ((ListAppender<?>) appender).isStarted();
    }

    @SuppressWarnings("unchecked")
    static boolean received(Object appender, String message) {
        for (ILoggingEvent e : ((ListAppender<ILoggingEvent>) appender).list) {
            if (e.getFormattedMessage().equals(message)) {
                return true;
            }
        }
        return false;
    }

    static boolean additive(String logger) {
        return ((LoggerContext) LoggerFactory.getILoggerFactory()).getLogger(logger).isAdditive();
    }
}
