package dev.jkrun.loader.krunfw;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Finds an installed libkrunfw without touching the network. Lookup order:
 * <ol>
 *   <li>an explicit path (must exist, else {@link KrunfwNotFoundException} naming it);</li>
 *   <li>{@code JKRUN_KRUNFW} in the environment (must exist too when set);</li>
 *   <li>the system library path: {@code libkrunfw.so.5} then {@code libkrunfw.so.4}, each searched in the
 *       {@code LD_LIBRARY_PATH} directories, then {@link #SYSTEM_DIRS};</li>
 *   <li>the user cache, {@code $XDG_CACHE_HOME/jkrun/libkrunfw.so.5} (default {@code ~/.cache/jkrun}), where
 *       {@link KrunfwFetcher} puts it.</li>
 * </ol>
 * The environment is a parameter (normally {@code System.getenv()}) so that tests can pass their own.
 */
public final class KrunfwLocator {
    public static final String ENV_VAR = "JKRUN_KRUNFW";
    public static final String LIBRARY_NAME = "libkrunfw.so.5";
    /** Names tried on the system library path, in order. */
    public static final List<String> SYSTEM_NAMES = List.of("libkrunfw.so.5", "libkrunfw.so.4");
    /** The host's Debian multiarch directory name: x86_64-linux-gnu or aarch64-linux-gnu. */
    static final String MULTIARCH = ("aarch64".equals(System.getProperty("os.arch")) ? "aarch64" : "x86_64") + "-linux-gnu";
    public static final List<Path> SYSTEM_DIRS = List.of(Path.of("/usr/local/lib64"), Path.of("/usr/local/lib"),
            Path.of("/usr/lib64"), Path.of("/usr/lib"), Path.of("/usr/lib/" + MULTIARCH), Path.of("/lib/" + MULTIARCH));

    /** ELF e_machine of a shared library (EM_X86_64 62, EM_AARCH64 183), or -1 when it is not a readable ELF. */
    public static int elfMachine(Path library) {
        try (java.io.InputStream in = Files.newInputStream(library)) {
            byte[] h = in.readNBytes(20);
            if (h.length < 20 || h[0] != 0x7F || h[1] != 'E' || h[2] != 'L' || h[3] != 'F') {
                return -1;
            }
            return (h[18] & 0xFF) | (h[19] & 0xFF) << 8;
        } catch (java.io.IOException e) {
            return -1;
        }
    }

    /** Where the library was found and by which rule ("explicit", "JKRUN_KRUNFW", "system", "cache"). */
    public record Found(Path path, String source) {}

    private KrunfwLocator() {}

    public static Optional<Found> find(Path explicit, Map<String, String> env) {
        return find(explicit, env, SYSTEM_DIRS);
    }

    /** {@link #find(Path, Map)} with the fixed system directories replaced (tests). */
    static Optional<Found> find(Path explicit, Map<String, String> env, List<Path> systemDirs) {
        if (explicit != null) {
            if (!Files.isRegularFile(explicit)) {
                throw new KrunfwNotFoundException(explicit, "libkrunfw not found at " + explicit);
            }
            return Optional.of(new Found(explicit, "explicit"));
        }
        String fromEnv = env.get(ENV_VAR);
        if (fromEnv != null && !fromEnv.isBlank()) {
            Path p = Path.of(fromEnv);
            if (!Files.isRegularFile(p)) {
                throw new KrunfwNotFoundException(p, ENV_VAR + "=" + fromEnv + ": no such file");
            }
            return Optional.of(new Found(p, ENV_VAR));
        }
        List<Path> dirs = new ArrayList<>();
        String ld = env.get("LD_LIBRARY_PATH");
        if (ld != null) {
            for (String d : ld.split(":")) {
                if (!d.isEmpty()) {
                    dirs.add(Path.of(d));
                }
            }
        }
        dirs.addAll(systemDirs);
        for (String name : SYSTEM_NAMES) {
            for (Path d : dirs) {
                Path p = d.resolve(name);
                if (Files.isRegularFile(p)) {
                    return Optional.of(new Found(p, "system"));
                }
            }
        }
        Path cached = cacheDir(env).resolve(LIBRARY_NAME);
        if (Files.isRegularFile(cached)) {
            return Optional.of(new Found(cached, "cache"));
        }
        return Optional.empty();
    }

    /** {@code $XDG_CACHE_HOME/jkrun}, else {@code $HOME/.cache/jkrun} (HOME from env, else user.home). */
    public static Path cacheDir(Map<String, String> env) {
        String xdg = env.get("XDG_CACHE_HOME");
        if (xdg != null && !xdg.isBlank() && Path.of(xdg).isAbsolute()) {
            return Path.of(xdg, "jkrun");
        }
        String home = env.get("HOME");
        if (home == null || home.isBlank()) {
            home = System.getProperty("user.home");
        }
        return Path.of(home, ".cache", "jkrun");
    }
}
