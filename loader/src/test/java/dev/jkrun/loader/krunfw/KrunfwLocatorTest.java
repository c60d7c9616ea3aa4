package dev.jkrun.loader.krunfw;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KrunfwLocatorTest {
    @TempDir
    Path dir;
    private Path explicit;
    private Path fromEnv;
    private Path ldDir;
    private Path sysDir;
    private Path cached;
    private final Map<String, String> env = new HashMap<>();

    @BeforeEach
    void layout() throws IOException {
        explicit = touch(dir.resolve("explicit/libkrunfw.so.5"));
        fromEnv = touch(dir.resolve("env/libkrunfw.so.5"));
        ldDir = Files.createDirectories(dir.resolve("ld"));
        sysDir = Files.createDirectories(dir.resolve("sys"));
        cached = touch(dir.resolve("xdg/jkrun/libkrunfw.so.5"));
        env.put("HOME", dir.resolve("home").toString());
        env.put("XDG_CACHE_HOME", dir.resolve("xdg").toString());
    }

    private static Path touch(Path p) throws IOException {
        Files.createDirectories(p.getParent());
        Files.writeString(p, "lib");
        return p;
    }

    private Optional<KrunfwLocator.Found> find(Path explicitPath) {
        return KrunfwLocator.find(explicitPath, env, List.of(sysDir));
    }

    @Test
    void explicitBeatsEnvBeatsSystemBeatsCache() throws IOException {
        Path sys = touch(sysDir.resolve("libkrunfw.so.5"));
        env.put(KrunfwLocator.ENV_VAR, fromEnv.toString());
        assertEquals(new KrunfwLocator.Found(explicit, "explicit"), find(explicit).orElseThrow());
        assertEquals(new KrunfwLocator.Found(fromEnv, "JKRUN_KRUNFW"), find(null).orElseThrow());
        env.remove(KrunfwLocator.ENV_VAR);
        assertEquals(new KrunfwLocator.Found(sys, "system"), find(null).orElseThrow());
        Files.delete(sys);
        assertEquals(new KrunfwLocator.Found(cached, "cache"), find(null).orElseThrow());
        Files.delete(cached);
        assertEquals(Optional.empty(), find(null));
    }

    @Test
    void systemSearchPrefersSo5AndLdLibraryPathFirst() throws IOException {
        Path ld4 = touch(ldDir.resolve("libkrunfw.so.4"));
        env.put("LD_LIBRARY_PATH", dir.resolve("nowhere") + "::" + ldDir);
        assertEquals(ld4, find(null).orElseThrow().path());
        Path sys5 = touch(sysDir.resolve("libkrunfw.so.5"));
        assertEquals(sys5, find(null).orElseThrow().path(), ".so.5 anywhere beats .so.4");
        Path ld5 = touch(ldDir.resolve("libkrunfw.so.5"));
        assertEquals(ld5, find(null).orElseThrow().path(), "LD_LIBRARY_PATH before the fixed directories");
    }

    @Test
    void missingExplicitPathIsAnErrorNamingIt() {
        Path absent = dir.resolve("absent/libkrunfw.so.5");
        KrunfwNotFoundException e = assertThrows(KrunfwNotFoundException.class, () -> find(absent));
        assertEquals(absent, e.path());
        assertTrue(e.getMessage().contains(absent.toString()), e.getMessage());
        env.put(KrunfwLocator.ENV_VAR, absent.toString());
        e = assertThrows(KrunfwNotFoundException.class, () -> find(null));
        assertTrue(e.getMessage().startsWith("JKRUN_KRUNFW=" + absent), e.getMessage());
    }

    @Test
    void cacheDirHonoursXdgThenHome() {
        assertEquals(dir.resolve("xdg/jkrun"), KrunfwLocator.cacheDir(env));
        env.put("XDG_CACHE_HOME", "relative/ignored");
        assertEquals(dir.resolve("home/.cache/jkrun"), KrunfwLocator.cacheDir(env));
        assertEquals(Path.of(System.getProperty("user.home"), ".cache", "jkrun"), KrunfwLocator.cacheDir(Map.of()));
    }
}
