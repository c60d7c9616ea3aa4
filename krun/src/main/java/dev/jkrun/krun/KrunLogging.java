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
 * that descriptor: a Logback or Log4j 2 {@code OutputStreamAppender} on the tree (not additive), a java.util.logging
 * handler on it (parent handlers off), or slf4j-simple's one output, which is every slf4j-simple logger's; other
 * backends cannot be redirected this way. {@link #restore} undoes it, leaving the application's own configuration as
 * it was.
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
    private static Object log4jAppender;
    private static Boolean log4jAdditive;
    private static final String PATTERN = "%d{ISO8601} %-5level %logger - %msg%n";
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
        String backend = backend(LoggerFactory.getILoggerFactory());
        return backend == null ? null : redirect(fd, backend);
    }

    /** The SLF4J backend behind {@code factory}: "logback", "log4j2", "jul", "simple", or null for any other. */
    private static String backend(ILoggerFactory factory) {
        String cls = factory.getClass().getName();
        return cls.equals("ch.qos.logback.classic.LoggerContext") ? "logback"
                : cls.startsWith("org.apache.logging.slf4j.") ? "log4j2"
                : cls.contains("JDK14LoggerFactory") || cls.startsWith("org.slf4j.jdk.platform.logging.") ? "jul"
                : cls.endsWith(".SimpleLoggerFactory") ? "simple" : null;
    }

    /** Logback's logger of the dev.jkrun tree. */
    private static Object logbackTree(ILoggerFactory factory) throws ReflectiveOperationException {
        return factory.getClass().getMethod("getLogger", String.class).invoke(factory, TREE);
    }

    /** Log4j's loggers take a changed configuration only when told. */
    private static void log4jUpdateLoggers(ILoggerFactory factory) throws ReflectiveOperationException {
        Object ctx = log4jContext(factory);
        ctx.getClass().getMethod("updateLoggers").invoke(ctx);
    }

    /** {@link #redirect(int)} for a backend named as {@link #apply} names them ("jul" stands alone: JUL is the JDK's). */
    static synchronized String redirect(int fd, String backend) {
        ILoggerFactory factory = LoggerFactory.getILoggerFactory();
        FdOutputStream out = new FdOutputStream(dev.jkrun.libc.FileDescriptor.duplicate(fd, "krun_init_log target"));
        FdOutputStream oldTarget = target;
        Object oldAppender = logbackAppender;
        Object oldLog4j = log4jAppender;
        java.util.logging.Handler oldHandler = julHandler;
        try {
            switch (backend) {
                case "logback" -> logbackAppender = logbackAppender(factory, out);
                case "log4j2" -> log4jAppender = log4jAppender(factory, out);
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
        retire(factory, oldTarget, oldAppender == logbackAppender ? null : oldAppender, oldHandler == julHandler ? null : oldHandler,
                oldLog4j == log4jAppender ? null : oldLog4j);
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
                Object logger = logbackTree(factory);
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
        retire(factory, target, logbackAppender, julHandler, log4jAppender);
        if (log4jAdditive != null) {
            try {
                Object lc = log4jTreeConfig(factory);
                lc.getClass().getMethod("setAdditive", boolean.class).invoke(lc, log4jAdditive);
                log4jUpdateLoggers(factory);
            } catch (ReflectiveOperationException | RuntimeException e) {
                LoggerFactory.getLogger(KrunLogging.class).debug("cannot restore Log4j's additivity: {}", e.toString());
            }
            log4jAdditive = null;
        }
        target = null;
        logbackAppender = null;
        log4jAppender = null;
        julHandler = null;
    }

    /**
     * Takes an output of jkrun's out of use: detached first (no new records reach it), its descriptor closed next (a
     * writer waiting for room in a full pipe then gives up), the appender stopped last (Logback's stop takes the lock
     * such a writer holds).
     */
    private static void retire(ILoggerFactory factory, FdOutputStream out, Object appender, java.util.logging.Handler handler,
                               Object log4j) {
        if (log4j != null) {
            try {
                Object lc = log4jTreeConfig(factory);
                String name = (String) log4j.getClass().getMethod("getName").invoke(log4j);
                lc.getClass().getMethod("removeAppender", String.class).invoke(lc, name);
                log4jUpdateLoggers(factory);
            } catch (ReflectiveOperationException | RuntimeException e) {
                LoggerFactory.getLogger(KrunLogging.class).debug("cannot detach the Log4j appender: {}", e.toString());
            }
        }
        try {
            if (appender != null) {
                Object logger = logbackTree(factory);
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
        for (Object a : new Object[] {appender, log4j}) {
            if (a == null) {
                continue;
            }
            try {
                a.getClass().getMethod("stop").invoke(a);
            } catch (ReflectiveOperationException | RuntimeException e) {
                LoggerFactory.getLogger(KrunLogging.class).debug("cannot stop the log appender: {}", e.toString());
            }
        }
    }

    /** Log4j's configuration keeps appenders by name: each redirect's gets a name of its own. */
    private static int log4jCount;

    private static Object log4jContext(ILoggerFactory factory) throws ReflectiveOperationException {
        Class<?> logManager = Class.forName("org.apache.logging.log4j.LogManager", true, factory.getClass().getClassLoader());
        return logManager.getMethod("getContext", boolean.class).invoke(null, false);
    }

    /** The LoggerConfig named dev.jkrun, made (inheriting the level in force) when the configuration has none. */
    private static Object log4jTreeConfig(ILoggerFactory factory) throws ReflectiveOperationException {
        ClassLoader cl = factory.getClass().getClassLoader();
        Object ctx = log4jContext(factory);
        Object config = ctx.getClass().getMethod("getConfiguration").invoke(ctx);
        Class<?> configClass = Class.forName("org.apache.logging.log4j.core.config.Configuration", true, cl);
        Object lc = configClass.getMethod("getLoggerConfig", String.class).invoke(config, TREE);
        if (!TREE.equals(lc.getClass().getMethod("getName").invoke(lc))) {
            Class<?> lcClass = Class.forName("org.apache.logging.log4j.core.config.LoggerConfig", true, cl);
            Class<?> levelClass = Class.forName("org.apache.logging.log4j.Level", true, cl);
            Object level = lcClass.getMethod("getLevel").invoke(lc);
            lc = lcClass.getConstructor(String.class, levelClass, boolean.class).newInstance(TREE, level, true);
            configClass.getMethod("addLogger", String.class, lcClass).invoke(config, TREE, lc);
        }
        return lc;
    }

    private static Object log4jAppender(ILoggerFactory factory, FdOutputStream out) throws ReflectiveOperationException {
        ClassLoader cl = factory.getClass().getClassLoader();
        Object ctx = log4jContext(factory);
        Object config = ctx.getClass().getMethod("getConfiguration").invoke(ctx);
        Class<?> configClass = Class.forName("org.apache.logging.log4j.core.config.Configuration", true, cl);
        Object lb = Class.forName("org.apache.logging.log4j.core.layout.PatternLayout", true, cl).getMethod("newBuilder").invoke(null);
        lb.getClass().getMethod("withPattern", String.class).invoke(lb, PATTERN);
        lb.getClass().getMethod("withConfiguration", configClass).invoke(lb, config);
        Object layout = lb.getClass().getMethod("build").invoke(lb);
        Object ab = Class.forName("org.apache.logging.log4j.core.appender.OutputStreamAppender", true, cl)
                .getMethod("newBuilder").invoke(null);
        String name = APPENDER + "-" + (++log4jCount);
        ab.getClass().getMethod("setName", String.class).invoke(ab, name);
        ab.getClass().getMethod("setLayout", Class.forName("org.apache.logging.log4j.core.Layout", true, cl)).invoke(ab, layout);
        ab.getClass().getMethod("setTarget", java.io.OutputStream.class).invoke(ab, out);
        ab.getClass().getMethod("setConfiguration", configClass).invoke(ab, config);
        Object appender = ab.getClass().getMethod("build").invoke(ab);
        appender.getClass().getMethod("start").invoke(appender);
        Class<?> appenderClass = Class.forName("org.apache.logging.log4j.core.Appender", true, cl);
        Object lc = log4jTreeConfig(factory);
        lc.getClass().getMethod("addAppender", appenderClass, Class.forName("org.apache.logging.log4j.Level", true, cl),
                Class.forName("org.apache.logging.log4j.core.Filter", true, cl)).invoke(lc, appender, null, null);
        if (log4jAdditive == null) {
            log4jAdditive = (Boolean) lc.getClass().getMethod("isAdditive").invoke(lc);
        }
        lc.getClass().getMethod("setAdditive", boolean.class).invoke(lc, false);
        log4jUpdateLoggers(factory);
        return appender;
    }

    private static Object logbackAppender(ILoggerFactory factory, FdOutputStream out) throws ReflectiveOperationException {
        ClassLoader cl = factory.getClass().getClassLoader();
        Class<?> contextClass = Class.forName("ch.qos.logback.core.Context", true, cl);
        Object encoder = Class.forName("ch.qos.logback.classic.encoder.PatternLayoutEncoder", true, cl).getConstructor().newInstance();
        encoder.getClass().getMethod("setContext", contextClass).invoke(encoder, factory);
        encoder.getClass().getMethod("setPattern", String.class).invoke(encoder, PATTERN);
        encoder.getClass().getMethod("start").invoke(encoder);
        Class<?> appenderClass = Class.forName("ch.qos.logback.core.OutputStreamAppender", true, cl);
        Object appender = appenderClass.getConstructor().newInstance();
        appenderClass.getMethod("setContext", contextClass).invoke(appender, factory);
        appenderClass.getMethod("setName", String.class).invoke(appender, APPENDER);
        appenderClass.getMethod("setEncoder", Class.forName("ch.qos.logback.core.encoder.Encoder", true, cl)).invoke(appender, encoder);
        appenderClass.getMethod("setOutputStream", java.io.OutputStream.class).invoke(appender, out);
        appenderClass.getMethod("start").invoke(appender);
        Object logger = logbackTree(factory);
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
        String backend = backend(factory);
        try {
            if ("logback".equals(backend)) {
                Object logger = logbackTree(factory);
                Class<?> levelClass = Class.forName("ch.qos.logback.classic.Level", true, factory.getClass().getClassLoader());
                Object l = levelClass.getMethod("toLevel", String.class).invoke(null, name.toUpperCase(Locale.ROOT));
                logger.getClass().getMethod("setLevel", levelClass).invoke(logger, l);
                return backend;
            }
            if ("log4j2".equals(backend)) {
                ClassLoader cl = factory.getClass().getClassLoader();
                Class<?> levelClass = Class.forName("org.apache.logging.log4j.Level", true, cl);
                Object l = levelClass.getMethod("toLevel", String.class).invoke(null, name.toUpperCase(Locale.ROOT));
                Class<?> configurator = Class.forName("org.apache.logging.log4j.core.config.Configurator", true, cl);
                configurator.getMethod("setLevel", String.class, levelClass).invoke(null, TREE, l);
                return backend;
            }
            if ("jul".equals(backend)) {
                applyJul(level);
                return backend;
            }
            if ("simple".equals(backend)) {
                applySimple(factory, name);
                return backend;
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            // A backend of an unexpected version: leave its configuration alone, as for an unknown backend.
            LoggerFactory.getLogger(KrunLogging.class).debug("cannot set the log level on {}: {}",
                    factory.getClass().getName(), e.toString());
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
