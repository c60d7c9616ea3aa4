package dev.jkrun.loader.krunfw;

import java.io.BufferedInputStream;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;

/**
 * Fetches libkrunfw when none is installed. No distribution ships libkrunfw.so.5 for us, but the BoxLite
 * Node.js addon for linux-x64 carries one as embedded data. The fetcher {@code npm pack}s that package (npm
 * does the download, proxy and cache handling), unpacks the addon from the tarball, finds the embedded shared
 * object that exports {@code krunfw_get_kernel} by scanning its contents ({@link #extractEmbedded}), checks it
 * against the pinned {@link #SHA256} and installs it atomically as {@code <cacheDir>/libkrunfw.so.5}.
 */
public final class KrunfwFetcher {
    public static final String PACKAGE = "@boxlite-ai/boxlite-linux-x64-gnu@0.10.3";
    public static final String SHA256 = "953201c0c367070946a2f99695cb50dbb8980d97e416964bfa3fb1e9d1f15f69";
    /** The symbol that identifies libkrunfw among the embedded objects. */
    public static final String SYMBOL = "krunfw_get_kernel";
    private static final long NPM_TIMEOUT_MINUTES = 10;

    private KrunfwFetcher() {}

    /** Fetches, verifies and installs libkrunfw into {@code cacheDir}; returns the installed path. */
    public static Path fetch(Path cacheDir, PrintStream progress) {
        return fetch(cacheDir, progress, "npm", PACKAGE, SHA256);
    }

    /** {@link #fetch(Path, PrintStream)} with the npm command, package and checksum as parameters (tests). */
    static Path fetch(Path cacheDir, PrintStream progress, String npm, String pkg, String sha256) {
        Path tmp;
        try {
            tmp = Files.createTempDirectory("jkrun-krunfw-");
        } catch (IOException e) {
            throw new KrunfwFetchException(KrunfwFetchException.Reason.IO, "cannot create a temporary directory: " + e, e);
        }
        try {
            progress.println("jkrun: fetching libkrunfw (npm pack " + pkg + ")");
            Path tgz = npmPack(npm, pkg, tmp, progress);
            Path node = extractNode(tgz, tmp, progress);
            progress.println("jkrun: scanning " + node.getFileName() + " for an embedded library exporting " + SYMBOL);
            Files.createDirectories(cacheDir);
            Path target = cacheDir.resolve(KrunfwLocator.LIBRARY_NAME);
            Path part = Files.createTempFile(cacheDir, "." + KrunfwLocator.LIBRARY_NAME + ".", ".part");
            try {
                if (extractEmbedded(node, part).isEmpty()) {
                    throw new KrunfwFetchException(KrunfwFetchException.Reason.NO_EMBEDDED_LIBRARY,
                            "no embedded libkrunfw (an ELF shared object exporting " + SYMBOL + ") in " + pkg);
                }
                String actual = sha256(part);
                progress.println("jkrun: verifying sha256 of " + Files.size(part) + " bytes: " + actual);
                if (!actual.equalsIgnoreCase(sha256)) {
                    throw new KrunfwFetchException(KrunfwFetchException.Reason.CHECKSUM_MISMATCH,
                            "libkrunfw from " + pkg + " has the wrong checksum: expected sha256 " + sha256
                                    + ", actual " + actual);
                }
                Files.setPosixFilePermissions(part, PosixFilePermissions.fromString("rw-r--r--"));
                try {
                    Files.move(part, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(part, target, StandardCopyOption.REPLACE_EXISTING);
                }
            } finally {
                Files.deleteIfExists(part);
            }
            progress.println("jkrun: libkrunfw installed at " + target);
            return target;
        } catch (IOException e) {
            throw new KrunfwFetchException(KrunfwFetchException.Reason.IO, "fetching libkrunfw failed: " + e, e);
        } finally {
            deleteTree(tmp);
        }
    }

    /**
     * Scans {@code nodeFile} for an embedded ELF64 shared object that exports {@code krunfw_get_kernel} and
     * writes exactly its bytes to {@code out}. Returns {@code out}, or empty (writing nothing) if there is none.
     */
    public static Optional<Path> extractEmbedded(Path nodeFile, Path out) {
        try (FileChannel ch = FileChannel.open(nodeFile, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size > Integer.MAX_VALUE) {
                throw new KrunfwFetchException(KrunfwFetchException.Reason.BAD_PACKAGE,
                        nodeFile + " is too large to scan (" + size + " bytes)");
            }
            MappedByteBuffer map = ch.map(FileChannel.MapMode.READ_ONLY, 0, size);
            EmbeddedElf.Span span = EmbeddedElf.find(map, SYMBOL);
            if (span == null) {
                return Optional.empty();
            }
            try (FileChannel w = FileChannel.open(out, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                long pos = span.offset();
                long end = span.offset() + span.size();
                while (pos < end) {
                    pos += ch.transferTo(pos, end - pos, w);
                }
            }
            return Optional.of(out);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot scan " + nodeFile + ": " + e.getMessage(), e);
        }
    }

    private static Path npmPack(String npm, String pkg, Path tmp, PrintStream progress) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(npm, "pack", pkg, "--pack-destination", tmp.toString())
                .directory(tmp.toFile())
                .redirectOutput(ProcessBuilder.Redirect.DISCARD);
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new KrunfwFetchException(KrunfwFetchException.Reason.NPM_MISSING,
                    "npm is needed to fetch libkrunfw: install Node.js/npm or set " + KrunfwLocator.ENV_VAR
                            + " to an existing libkrunfw.so.5", e);
        }
        String[] last = {null};
        Thread pump = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getErrorStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    progress.println(line);
                    if (isTellingLine(line)) {
                        synchronized (last) {
                            last[0] = line.strip();
                        }
                    }
                }
            } catch (IOException ignored) {
                // the process went away; its exit status tells the story
            }
        }, "npm-stderr");
        pump.setDaemon(true);
        pump.start();
        int rc;
        try {
            if (!p.waitFor(NPM_TIMEOUT_MINUTES, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                throw new KrunfwFetchException(KrunfwFetchException.Reason.NPM_FAILED,
                        "npm pack " + pkg + " did not finish within " + NPM_TIMEOUT_MINUTES + " minutes");
            }
            rc = p.exitValue();
            pump.join(5000);
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new KrunfwFetchException(KrunfwFetchException.Reason.NPM_FAILED, "interrupted while running npm pack", e);
        }
        String lastLine;
        synchronized (last) {
            lastLine = last[0];
        }
        if (rc != 0) {
            throw new KrunfwFetchException(KrunfwFetchException.Reason.NPM_FAILED, "npm pack " + pkg
                    + " failed (exit " + rc + ")" + (lastLine != null ? ": " + lastLine : ""));
        }
        List<Path> tgzs;
        try (Stream<Path> s = Files.list(tmp)) {
            tgzs = s.filter(f -> f.getFileName().toString().endsWith(".tgz")).toList();
        }
        if (tgzs.size() != 1) {
            throw new KrunfwFetchException(KrunfwFetchException.Reason.BAD_PACKAGE,
                    "npm pack " + pkg + " produced " + tgzs.size() + " .tgz files (expected 1)");
        }
        return tgzs.get(0);
    }

    /** npm ends failures with a pointer to its log; the line before says what went wrong. */
    private static boolean isTellingLine(String line) {
        String s = line.strip();
        return !s.isEmpty() && !s.contains("A complete log of this run") && !s.matches("npm (ERR!|error|notice)\\s*");
    }

    /** Extracts the single {@code *.node} member of the package tarball into {@code dir}. */
    static Path extractNode(Path tgz, Path dir, PrintStream progress) throws IOException {
        progress.println("jkrun: extracting " + tgz.getFileName());
        List<String> found = new ArrayList<>();
        Path node = null;
        try (InputStream in = new GZIPInputStream(new BufferedInputStream(Files.newInputStream(tgz), 1 << 16), 1 << 16)) {
            Tar tar = new Tar(in);
            for (Tar.Entry e = tar.next(); e != null; e = tar.next()) {
                if (!e.isFile() || !e.name().endsWith(".node")) {
                    continue;
                }
                found.add(e.name());
                if (node == null) {
                    // Only the base name, so a crafted member name cannot escape dir.
                    String base = e.name().substring(e.name().lastIndexOf('/') + 1);
                    node = dir.resolve("extracted-" + base);
                    try (OutputStream out = Files.newOutputStream(node)) {
                        tar.copyTo(out);
                    }
                }
            }
        }
        if (found.size() != 1) {
            throw new KrunfwFetchException(KrunfwFetchException.Reason.BAD_PACKAGE,
                    tgz.getFileName() + " holds " + found.size() + " *.node files " + found + " (expected 1)");
        }
        progress.println("jkrun: extracted " + found.get(0) + " (" + Files.size(node) + " bytes)");
        return node;
    }

    static String sha256(Path file) throws IOException {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        try (InputStream in = new DigestInputStream(Files.newInputStream(file), md)) {
            in.transferTo(OutputStream.nullOutputStream());
        }
        return HexFormat.of().formatHex(md.digest());
    }

    private static void deleteTree(Path root) {
        try (Stream<Path> s = Files.walk(root)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException ignored) {
                    // best effort: a leftover temp file is not worth failing the fetch
                }
            });
        } catch (IOException ignored) {
            // same
        }
    }
}
