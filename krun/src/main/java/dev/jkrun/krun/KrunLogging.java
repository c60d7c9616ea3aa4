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
 * krun_init_log's target descriptor ({@link #redirect}) sends the {@code dev.jkrun} tree's records to a duplicate of
 * that descriptor: a Logback {@code OutputStreamAppender} on the tree (not additive), a java.util.logging handler on
 * it (parent handlers off), or slf4j-simple's one output, which is every slf4j-simple logger's; other backends
 * (Log4j 2 among them) cannot be redirected this way. {@link #restore} undoes it.
 */
final class KrunLogging {
    static final String TREE = "dev.jkrun";
    private static final String SIMPLE_PREFIX = "org.slf4j.simpleLogger.log.";
    private static final String[] NAMES = {"off", "error", "warn", "info", "debug", "trace"};
    /** Held so that java.util.logging cannot collect the configured logger (and forget its level). */
    private static volatile java.util.logging.Logger julTree;

    private static final String APPENDER = "jkrun-krun-init-log";
    /** While redirected: the current target (a duplicate descriptor) and what jkrun installed to write to it. */
    private static FdOutputStream target;
    private static Object logbackAppender;
    private static java.util.logging.Handler julHandler;
    /** What the application had before the first redirect, given back by {@link #restore}. */
    private static Boolean logbackAdditive;
    private static Boolean julUseParentHandlers;
    private static Object simpleOriginal;

    private KrunLogging() {}

    /**
     * Sends the {@code dev.jkrun} tree's records to a duplicate of {@code fd} (the caller keeps its own): the
     * backend's name, or null when the backend cannot be redirected (nothing changed then: an earlier target stays).
     *
     * @throws dev.jkrun.libc.NativeCallException when {@code fd} cannot be duplicated (EBADF, EMFILE)
     */
    static String redirect(int fd) {
        String cls = LoggerFactory.getILoggerFactory().getClass().getName();
        String backend = cls.equals("ch.qos.logback.classic.LoggerContext") ? "logback"
                : cls.contains("JDK14LoggerFactory") || cls.startsWith("org.slf4j.jdk.platform.logging.") ? "jul"
                : cls.endsWith(".SimpleLoggerFactory") ? "simple" : null;
        return backend == null ? null : redirect(fd, backend);
    }

    /** {@link #redirect(int)} for a backend named as {@link #apply} names them ("jul" stands alone: JUL is the JDK's). */
    static synchronized String redirect(int fd, String backend) {
        ILoggerFactory factory = LoggerFactory.getILoggerFactory();
        FdOutputStream out = new FdOutputStream(dev.jkrun.libc.FileDescriptor.duplicate(fd, "krun_init_log target"));
        FdOutputStream oldTarget = target;
        Object oldAppender = logbackAppender;
        java.util.logging.Handler oldHandler = julHandler;
        try {
            switch (backend) {
                case "logback" -> logbackAppender = logbackAppender(factory, out);
                case "jul" -> julHandler = julHandler(out);
                default -> simpleOutput(out);
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            out.close();
            LoggerFactory.getLogger(KrunLogging.class).debug("cannot redirect {} to descriptor {}: {}",
                    factory.getClass().getName(), fd, e.toString());
            return null;
        }
        target = out;
        retire(factory, oldTarget, oldAppender == logbackAppender ? null : oldAppender, oldHandler == julHandler ? null : oldHandler);
        return backend;
    }

    /** Back to the backend's own output (krun_init_log with KRUN_LOG_TARGET_DEFAULT): only what jkrun added goes. */
    static synchronized void restore() {
        if (target == null) {
            return;
        }
        ILoggerFactory factory = LoggerFactory.getILoggerFactory();
        try {
            if (simpleOriginal != null) {
                simpleConfigField().set(simpleConfig(), simpleOriginal);
                simpleOriginal = null;
            }
            if (logbackAdditive != null) {
                Object logger = factory.getClass().getMethod("getLogger", String.class).invoke(factory, TREE);
                logger.getClass().getMethod("setAdditive", boolean.class).invoke(logger, logbackAdditive);
                logbackAdditive = null;
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            LoggerFactory.getLogger(KrunLogging.class).debug("cannot restore the log output: {}", e.toString());
        }
        if (julUseParentHandlers != null) {
            java.util.logging.Logger.getLogger(TREE).setUseParentHandlers(julUseParentHandlers);
            julUseParentHandlers = null;
        }
        retire(factory, target, logbackAppender, julHandler);
        target = null;
        logbackAppender = null;
        julHandler = null;
    }

    /**
     * Takes an output of jkrun's out of use: detached first (no new records reach it), its descriptor closed next (a
     * writer waiting for room in a full pipe then gives up), the appender stopped last (Logback's stop takes the lock
     * such a writer holds).
     */
    private static void retire(ILoggerFactory factory, FdOutputStream out, Object appender, java.util.logging.Handler handler) {
        try {
            if (appender != null) {
                Object logger = factory.getClass().getMethod("getLogger", String.class).invoke(factory, TREE);
                logger.getClass().getMethod("detachAppender", Class.forName("ch.qos.logback.core.Appender", true,
                        factory.getClass().getClassLoader())).invoke(logger, appender);
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            LoggerFactory.getLogger(KrunLogging.class).debug("cannot detach the log appender: {}", e.toString());
        }
        if (handler != null) {
            java.util.logging.Logger.getLogger(TREE).removeHandler(handler);
        }
        if (out != null) {
            out.close();
        }
        if (appender != null) {
            try {
                appender.getClass().getMethod("stop").invoke(appender);
            } catch (ReflectiveOperationException | RuntimeException e) {
                LoggerFactory.getLogger(KrunLogging.class).debug("cannot stop the log appender: {}", e.toString());
            }
        }
    }

    private static Object logbackAppender(ILoggerFactory factory, FdOutputStream out) throws ReflectiveOperationException {
        ClassLoader cl = factory.getClass().getClassLoader();
        Class<?> contextClass = Class.forName("ch.qos.logback.core.Context", true, cl);
        Object encoder = Class.forName("ch.qos.logback.classic.encoder.PatternLayoutEncoder", true, cl).getConstructor().newInstance();
        encoder.getClass().getMethod("setContext", contextClass).invoke(encoder, factory);
        encoder.getClass().getMethod("setPattern", String.class).invoke(encoder, "%d{ISO8601} %-5level %logger - %msg%n");
        encoder.getClass().getMethod("start").invoke(encoder);
        Class<?> appenderClass = Class.forName("ch.qos.logback.core.OutputStreamAppender", true, cl);
        Object appender = appenderClass.getConstructor().newInstance();
        appenderClass.getMethod("setContext", contextClass).invoke(appender, factory);
        appenderClass.getMethod("setName", String.class).invoke(appender, APPENDER);
        appenderClass.getMethod("setEncoder", Class.forName("ch.qos.logback.core.encoder.Encoder", true, cl)).invoke(appender, encoder);
        appenderClass.getMethod("setOutputStream", java.io.OutputStream.class).invoke(appender, out);
        appenderClass.getMethod("start").invoke(appender);
        Object logger = factory.getClass().getMethod("getLogger", String.class).invoke(factory, TREE);
        logger.getClass().getMethod("addAppender", Class.forName("ch.qos.logback.core.Appender", true, cl)).invoke(logger, appender);
        if (logbackAdditive == null) {
            logbackAdditive = (Boolean) logger.getClass().getMethod("isAdditive").invoke(logger);
        }
        logger.getClass().getMethod("setAdditive", boolean.class).invoke(logger, false);
        return appender;
    }

    private static java.util.logging.Handler julHandler(FdOutputStream out) {
        java.util.logging.StreamHandler h = new java.util.logging.StreamHandler(out, new java.util.logging.SimpleFormatter()) {
            @Override
            public synchronized void publish(java.util.logging.LogRecord r) {
                super.publish(r);
                flush(); // each record as it comes, as libkrun's logger writes
            }
        };
        h.setLevel(java.util.logging.Level.ALL);
        java.util.logging.Logger tree = java.util.logging.Logger.getLogger(TREE);
        tree.addHandler(h);
        if (julUseParentHandlers == null) {
            julUseParentHandlers = tree.getUseParentHandlers();
        }
        tree.setUseParentHandlers(false);
        julTree = tree;
        return h;
    }

    private static void simpleOutput(FdOutputStream out) throws ReflectiveOperationException {
        Object config = simpleConfig();
        Field f = simpleConfigField();
        Class<?> choice = f.getType();
        java.lang.reflect.Constructor<?> c = choice.getDeclaredConstructor(java.io.PrintStream.class);
        c.setAccessible(true);
        Object original = f.get(config);
        f.set(config, c.newInstance(new java.io.PrintStream(out, true, java.nio.charset.StandardCharsets.UTF_8)));
        if (simpleOriginal == null) {
            simpleOriginal = original;
        }
    }

    /** slf4j-simple's SimpleLogger.CONFIG_PARAMS, initialised. */
    private static Object simpleConfig() throws ReflectiveOperationException {
        Class<?> logger = Class.forName("org.slf4j.simple.SimpleLogger", true, LoggerFactory.getILoggerFactory().getClass().getClassLoader());
        java.lang.reflect.Method init = logger.getDeclaredMethod("lazyInit");
        init.setAccessible(true);
        init.invoke(null);
        Field config = logger.getDeclaredField("CONFIG_PARAMS");
        config.setAccessible(true);
        return config.get(null);
    }

    private static Field simpleConfigField() throws ReflectiveOperationException {
        Field f = simpleConfig().getClass().getDeclaredField("outputChoice");
        f.setAccessible(true);
        return f;
    }

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
