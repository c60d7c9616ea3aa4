package dev.jkrun.krun;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.util.Locale;
import java.util.Map;
import org.slf4j.ILoggerFactory;
import org.slf4j.LoggerFactory;

/**
 * krun_set_log_level and krun_init_log on SLF4J: libkrun's level 0..5 becomes OFF/ERROR/WARN/INFO/DEBUG/TRACE of
 * the {@code dev.jkrun} logger tree in whichever SLF4J backend is present, reached by reflection so that jkrun
 * has no compile dependency on any of them:
 * <ul>
 * <li>Logback: {@code ch.qos.logback.classic.Logger#setLevel};
 * <li>Log4j 2 (log4j-slf4j2-impl): {@code org.apache.logging.log4j.core.config.Configurator.setLevel};
 * <li>java.util.logging (slf4j-jdk14, slf4j-jdk-platform-logging): {@code Logger.getLogger("dev.jkrun").setLevel}
 *     (OFF, SEVERE, WARNING, INFO, FINE, FINEST; the handlers' own levels stay the application's);
 * <li>slf4j-simple: the system property {@code org.slf4j.simpleLogger.log.dev.jkrun}, which slf4j-simple reads when
 *     it creates a logger, so it takes effect for loggers created afterwards; loggers that already exist are
 *     updated by reflection where the JVM allows it (slf4j-simple on the class path), else keep their level;
 * <li>any other backend (or none, slf4j-nop): nothing happens, and the call still succeeds, as libkrun's.
 * </ul>
 */
final class KrunLogging {
    static final String TREE = "dev.jkrun";
    private static final String SIMPLE_PREFIX = "org.slf4j.simpleLogger.log.";
    private static final String[] NAMES = {"off", "error", "warn", "info", "debug", "trace"};
    /** Held so that java.util.logging cannot collect the configured logger (and forget its level). */
    private static volatile java.util.logging.Logger julTree;

    private KrunLogging() {}

    /** The backend configured, by name ("logback", "log4j2", "jul", "simple", "none"); level must be 0..5. */
    static String apply(int level) {
        String name = NAMES[level];
        ILoggerFactory factory = LoggerFactory.getILoggerFactory();
        String cls = factory.getClass().getName();
        try {
            if (cls.equals("ch.qos.logback.classic.LoggerContext")) {
                Object logger = factory.getClass().getMethod("getLogger", String.class).invoke(factory, TREE);
                Class<?> levelClass = Class.forName("ch.qos.logback.classic.Level", true, factory.getClass().getClassLoader());
                Object l = levelClass.getMethod("toLevel", String.class).invoke(null, name.toUpperCase(Locale.ROOT));
                logger.getClass().getMethod("setLevel", levelClass).invoke(logger, l);
                return "logback";
            }
            if (cls.startsWith("org.apache.logging.slf4j.")) {
                ClassLoader cl = factory.getClass().getClassLoader();
                Class<?> levelClass = Class.forName("org.apache.logging.log4j.Level", true, cl);
                Object l = levelClass.getMethod("toLevel", String.class).invoke(null, name.toUpperCase(Locale.ROOT));
                Class<?> configurator = Class.forName("org.apache.logging.log4j.core.config.Configurator", true, cl);
                configurator.getMethod("setLevel", String.class, levelClass).invoke(null, TREE, l);
                return "log4j2";
            }
            if (cls.contains("JDK14LoggerFactory") || cls.startsWith("org.slf4j.jdk.platform.logging.")) {
                applyJul(level);
                return "jul";
            }
            if (cls.endsWith(".SimpleLoggerFactory")) {
                applySimple(factory, name);
                return "simple";
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            // A backend of an unexpected version: leave its configuration alone, as for an unknown backend.
            LoggerFactory.getLogger(KrunLogging.class).debug("cannot set the log level on {}: {}", cls, e.toString());
        }
        return "none";
    }

    static void applyJul(int level) {
        java.util.logging.Level l = switch (level) {
            case 0 -> java.util.logging.Level.OFF;
            case 1 -> java.util.logging.Level.SEVERE;
            case 2 -> java.util.logging.Level.WARNING;
            case 3 -> java.util.logging.Level.INFO;
            case 4 -> java.util.logging.Level.FINE;
            default -> java.util.logging.Level.FINEST;
        };
        java.util.logging.Logger logger = java.util.logging.Logger.getLogger(TREE);
        logger.setLevel(l);
        julTree = logger;
    }

    private static void applySimple(ILoggerFactory factory, String name) throws ReflectiveOperationException {
        System.setProperty(SIMPLE_PREFIX + TREE, name);
        Field mapField = findField(factory.getClass(), "loggerMap");
        if (mapField == null) {
            return;
        }
        try {
            mapField.setAccessible(true);
        } catch (RuntimeException e) { // InaccessibleObjectException on the module path: new loggers only
            return;
        }
        Map<?, ?> loggers = (Map<?, ?>) mapField.get(factory);
        for (Map.Entry<?, ?> e : loggers.entrySet()) {
            String loggerName = String.valueOf(e.getKey());
            if (!loggerName.equals(TREE) && !loggerName.startsWith(TREE + ".")) {
                continue;
            }
            Object logger = e.getValue();
            Field levelField = findField(logger.getClass(), "currentLogLevel");
            if (levelField == null) {
                continue;
            }
            levelField.setAccessible(true);
            levelField.setInt(logger, simpleLevel(logger, effectiveSimpleLevel(loggerName)));
        }
    }

    /** The most specific org.slf4j.simpleLogger.log.* property from this logger up to the dev.jkrun tree. */
    private static String effectiveSimpleLevel(String loggerName) {
        String n = loggerName;
        while (true) {
            String v = System.getProperty(SIMPLE_PREFIX + n);
            if (v != null || n.equals(TREE)) {
                return v == null ? "info" : v;
            }
            int dot = n.lastIndexOf('.');
            n = dot < 0 ? TREE : n.substring(0, dot);
        }
    }

    /** slf4j-simple's own level number for a name, from its stringToLevel when present. */
    private static int simpleLevel(Object logger, String name) throws ReflectiveOperationException {
        try {
            Method m = logger.getClass().getDeclaredMethod("stringToLevel", String.class);
            m.setAccessible(true);
            return (int) m.invoke(null, name);
        } catch (NoSuchMethodException e) {
            return switch (name.toLowerCase(Locale.ROOT)) {
                case "trace" -> 0;
                case "debug" -> 10;
                case "info" -> 20;
                case "warn" -> 30;
                case "error" -> 40;
                default -> 50;
            };
        }
    }

    private static Field findField(Class<?> c, String name) {
        for (Class<?> k = c; k != null; k = k.getSuperclass()) {
            try {
                return k.getDeclaredField(name);
            } catch (NoSuchFieldException ignored) {
                // look in the superclass
            }
        }
        return null;
    }
}
