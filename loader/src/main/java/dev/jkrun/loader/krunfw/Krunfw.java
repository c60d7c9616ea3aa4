package dev.jkrun.loader.krunfw;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Map;

/** The one call the VMM makes to get a libkrunfw: find an installed one, else fetch it into the cache. */
public final class Krunfw {
    private Krunfw() {}

    /**
     * {@link KrunfwLocator#find} or else {@link KrunfwFetcher#fetch} into {@link KrunfwLocator#cacheDir}.
     *
     * @throws KrunfwNotFoundException an explicit path or JKRUN_KRUNFW names a missing file (no fetch then)
     * @throws KrunfwFetchException    nothing installed and the fetch failed
     */
    public static Path locateOrFetch(Path explicit, Map<String, String> env, PrintStream progress) {
        return KrunfwLocator.find(explicit, env)
                .map(KrunfwLocator.Found::path)
                .orElseGet(() -> KrunfwFetcher.fetch(KrunfwLocator.cacheDir(env), progress));
    }
}
