package dev.jkrun.loader.krunfw;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.loader.Tools;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The scanning part against synthetic blobs, and the whole fetch pipeline with a fake npm. */
class KrunfwFetcherTest {
    @TempDir
    static Path shared;
    @TempDir
    Path dir;
    private static byte[] target;
    private static byte[] decoyUndefined;
    private static byte[] decoyPrefix;

    @BeforeAll
    static void buildLibraries() throws Exception {
        target = Files.readAllBytes(Tools.gcc(shared, "libkrunfw.so", """
                #include <stddef.h>
                static const char K[4096] = {1, 2, 3};
                int krunfw_get_version(void) { return 5; }
                const char *krunfw_get_kernel(size_t *l, size_t *e, size_t *s) { *l = 0x1000000; *e = 0x1000123; *s = 4096; return K; }
                """, "-shared", "-fPIC"));
        // Mentions krunfw_get_kernel only as an undefined import: must not match.
        decoyUndefined = Files.readAllBytes(Tools.gcc(shared, "libdecoy1.so", """
                extern const char *krunfw_get_kernel(void *, void *, void *);
                int krunfw_get_version(void) { return 5; }
                const char *call(void) { return krunfw_get_kernel(0, 0, 0); }
                """, "-shared", "-fPIC"));
        // Exports a longer name with the same prefix: must not match.
        decoyPrefix = Files.readAllBytes(Tools.gcc(shared, "libdecoy2.so",
                "int krunfw_get_kernel_size(void) { return 1; }\n", "-shared", "-fPIC"));
    }

    private static byte[] blob(boolean withTarget, long seed) {
        Random r = new Random(seed);
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.writeBytes(random(r, 3001));
        b.writeBytes(new byte[] {0x7f, 'E', 'L', 'F', 2, 1, 1, 0}); // a stray magic with a garbage header
        b.writeBytes(random(r, 200));
        b.writeBytes("krunfw_get_kernel\0".getBytes(StandardCharsets.US_ASCII));
        b.writeBytes(decoyUndefined);
        b.writeBytes(random(r, 777));
        b.writeBytes(decoyPrefix);
        b.writeBytes(random(r, 123));
        if (withTarget) {
            b.writeBytes(target);
        }
        b.writeBytes(random(r, 5000));
        return b.toByteArray();
    }

    private static byte[] random(Random r, int n) {
        byte[] x = new byte[n];
        r.nextBytes(x);
        return x;
    }

    @Test
    void extractsExactlyTheEmbeddedLibrary() throws IOException {
        Path node = dir.resolve("addon.node");
        Files.write(node, blob(true, 1));
        Path out = dir.resolve("libkrunfw.so.5");
        assertEquals(out, KrunfwFetcher.extractEmbedded(node, out).orElseThrow());
        assertArrayEquals(target, Files.readAllBytes(out));
    }

    @Test
    void findsNothingWhenOnlyDecoysArePresent() throws IOException {
        Path node = dir.resolve("addon.node");
        Files.write(node, blob(false, 2));
        Path out = dir.resolve("libkrunfw.so.5");
        assertTrue(KrunfwFetcher.extractEmbedded(node, out).isEmpty());
        assertFalse(Files.exists(out));
    }

    @Test
    void ignoresALibraryCutShortByTheEndOfTheFile() throws IOException {
        Path node = dir.resolve("addon.node");
        byte[] b = blob(false, 3);
        byte[] cut = new byte[b.length + target.length - 100];
        System.arraycopy(b, 0, cut, 0, b.length);
        System.arraycopy(target, 0, cut, b.length, target.length - 100);
        Files.write(node, cut);
        assertTrue(KrunfwFetcher.extractEmbedded(node, dir.resolve("out")).isEmpty());
    }

    // ---- the fetch pipeline, with a shell script standing in for npm ----

    /** A package tarball (pax format, with a member name longer than 100 bytes) holding the given .node files. */
    private Path tarball(byte[]... nodes) throws Exception {
        Path staging = Files.createDirectories(dir.resolve("staging/package/" + "d".repeat(90)));
        Files.writeString(dir.resolve("staging/package/package.json"), "{}");
        for (int i = 0; i < nodes.length; i++) {
            Files.write(staging.resolve("addon" + i + ".linux-x64-gnu.node"), nodes[i]);
        }
        Path tgz = dir.resolve("pkg-1.0.0.tgz");
        Tools.run(List.of("tar", "--format=pax", "-czf", tgz.toString(), "-C", dir.resolve("staging").toString(), "package"));
        return tgz;
    }

    private Path fakeNpm(String body) throws IOException {
        Path npm = dir.resolve("npm");
        Files.writeString(npm, "#!/bin/sh\n" + body + "\n");
        Files.setPosixFilePermissions(npm, PosixFilePermissions.fromString("rwxr-xr-x"));
        return npm;
    }

    private Path packingNpm(Path tgz) throws IOException {
        // npm pack <pkg> --pack-destination <dir>
        return fakeNpm("[ \"$1\" = pack ] && [ \"$3\" = --pack-destination ] || exit 9\n"
                + "echo 'npm notice fake pack' >&2\ncp '" + tgz + "' \"$4/\"");
    }

    @Test
    void fetchInstallsTheVerifiedLibraryAtomically() throws Exception {
        Path npm = packingNpm(tarball(blob(true, 4)));
        Path cache = dir.resolve("cache/jkrun");
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        Path lib = KrunfwFetcher.fetch(cache, new PrintStream(log, true, StandardCharsets.UTF_8), npm.toString(),
                "pkg@1.0.0", sha256(target));
        assertEquals(cache.resolve("libkrunfw.so.5"), lib);
        assertArrayEquals(target, Files.readAllBytes(lib));
        try (Stream<Path> s = Files.list(cache)) {
            assertEquals(List.of(lib), s.toList(), "no temporary files left behind");
        }
        String progress = log.toString(StandardCharsets.UTF_8);
        assertTrue(progress.startsWith("jkrun: fetching libkrunfw (npm pack pkg@1.0.0)"), progress);
        assertTrue(progress.contains("npm notice fake pack"), "npm's stderr is shown: " + progress);
        assertTrue(progress.contains("jkrun: verifying sha256"), progress);
    }

    @Test
    void checksumMismatchIsReportedAndNothingInstalled() throws Exception {
        Path npm = packingNpm(tarball(blob(true, 5)));
        Path cache = dir.resolve("cache");
        String expected = "0".repeat(64);
        KrunfwFetchException e = assertThrows(KrunfwFetchException.class, () -> KrunfwFetcher.fetch(cache, quiet(),
                npm.toString(), "pkg@1.0.0", expected));
        assertEquals(KrunfwFetchException.Reason.CHECKSUM_MISMATCH, e.reason());
        assertTrue(e.getMessage().contains("expected sha256 " + expected + ", actual " + sha256(target)), e.getMessage());
        try (Stream<Path> s = Files.list(cache)) {
            assertEquals(0, s.count());
        }
    }

    @Test
    void noEmbeddedLibrary() throws Exception {
        Path npm = packingNpm(tarball(blob(false, 6)));
        KrunfwFetchException e = assertThrows(KrunfwFetchException.class, () -> KrunfwFetcher.fetch(dir.resolve("c"),
                quiet(), npm.toString(), "pkg@1.0.0", KrunfwFetcher.SHA256));
        assertEquals(KrunfwFetchException.Reason.NO_EMBEDDED_LIBRARY, e.reason());
    }

    @Test
    void packageWithTwoAddonsIsRejected() throws Exception {
        Path npm = packingNpm(tarball(blob(true, 7), blob(true, 8)));
        KrunfwFetchException e = assertThrows(KrunfwFetchException.class, () -> KrunfwFetcher.fetch(dir.resolve("c"),
                quiet(), npm.toString(), "pkg@1.0.0", KrunfwFetcher.SHA256));
        assertEquals(KrunfwFetchException.Reason.BAD_PACKAGE, e.reason());
    }

    @Test
    void npmMissing() {
        KrunfwFetchException e = assertThrows(KrunfwFetchException.class, () -> KrunfwFetcher.fetch(dir.resolve("c"),
                quiet(), dir.resolve("no/such/npm").toString(), KrunfwFetcher.PACKAGE, KrunfwFetcher.SHA256));
        assertEquals(KrunfwFetchException.Reason.NPM_MISSING, e.reason());
        assertEquals("npm is needed to fetch libkrunfw: install Node.js/npm or set JKRUN_KRUNFW to an existing "
                + "libkrunfw.so.5", e.getMessage());
    }

    @Test
    void npmFailureQuotesItsError() throws Exception {
        Path npm = fakeNpm("""
                echo 'npm error code E404' >&2
                echo 'npm error 404 Not Found - GET https://registry.npmjs.org/pkg - Not found' >&2
                echo 'npm error A complete log of this run can be found in: /tmp/x.log' >&2
                exit 1""");
        KrunfwFetchException e = assertThrows(KrunfwFetchException.class, () -> KrunfwFetcher.fetch(dir.resolve("c"),
                quiet(), npm.toString(), "pkg@1.0.0", KrunfwFetcher.SHA256));
        assertEquals(KrunfwFetchException.Reason.NPM_FAILED, e.reason());
        assertEquals("npm pack pkg@1.0.0 failed (exit 1): npm error 404 Not Found - GET https://registry.npmjs.org/pkg"
                + " - Not found", e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
    }

    private static PrintStream quiet() { return new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8); }

    private static String sha256(byte[] b) throws Exception {
        return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(b));
    }
}
