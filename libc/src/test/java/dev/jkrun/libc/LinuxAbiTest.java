package dev.jkrun.libc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * What libc assumes of each architecture's ABI, checked against that architecture's glibc headers by its compiler
 * (gcc for x86_64, aarch64-linux-gnu-gcc for aarch64; _Static_assert, so nothing runs): the struct stat layout
 * {@link Stat} reads, the open(2) flags arm64 numbers differently, and the sizes of the other structs libc passes.
 */
class LinuxAbiTest {
    @ParameterizedTest
    @CsvSource({"gcc, 0", "aarch64-linux-gnu-gcc, 1"})
    void matchesTheHeaders(String compiler, int abi, @TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(present(compiler), compiler + " is not installed");
        Map<String, Long> m = new LinkedHashMap<>();
        m.put("O_DIRECT", (long) PosixFs.DIRECT[abi]);
        m.put("O_DIRECTORY", (long) PosixFs.DIRECTORY[abi]);
        m.put("O_NOFOLLOW", (long) PosixFs.NOFOLLOW[abi]);
        m.put("O_PATH", (long) PosixFs.O_PATH);
        m.put("O_CLOEXEC", (long) PosixFs.O_CLOEXEC);
        m.put("O_NOATIME", (long) PosixFs.O_NOATIME);
        m.put("O_NONBLOCK", (long) PosixFs.O_NONBLOCK);
        m.put("AT_EMPTY_PATH", (long) PosixFs.AT_EMPTY_PATH);
        m.put("sizeof(struct stat) <= " + Stat.SIZE, 1L);
        // where Stat.parseX86 / parseGeneric read each field, found by parsing a stat filled with known values
        Stat probe = (abi == 0 ? Stat.parseX86(filled()) : Stat.parseGeneric(filled()));
        m.put("offsetof(struct stat, st_mode)", (long) offsetOf(probe.mode()));
        m.put("offsetof(struct stat, st_uid)", (long) offsetOf(probe.uid()));
        m.put("offsetof(struct stat, st_gid)", (long) offsetOf(probe.gid()));
        m.put("offsetof(struct stat, st_ino)", (long) offsetOf(probe.ino()));
        m.put("offsetof(struct stat, st_nlink)", (long) offsetOf(probe.nlink()));
        m.put("offsetof(struct stat, st_rdev)", (long) offsetOf(probe.rdev()));
        m.put("offsetof(struct stat, st_size)", (long) offsetOf(probe.size()));
        m.put("offsetof(struct stat, st_blksize)", (long) offsetOf(probe.blksize()));
        m.put("offsetof(struct stat, st_blocks)", (long) offsetOf(probe.blocks()));
        m.put("offsetof(struct stat, st_mtim)", (long) offsetOf(probe.mtimeSec()));
        m.put("offsetof(struct stat, st_ctim.tv_nsec)", (long) offsetOf(probe.ctimeNsec()));
        m.put("sizeof(struct statvfs)", 112L);
        m.put("sizeof(struct statfs)", 120L);
        m.put("sizeof(struct termios)", 60L);
        m.put("sizeof(sigset_t) >= 8", 1L);
        StringBuilder c = new StringBuilder("#define _GNU_SOURCE\n#include <stddef.h>\n#include <fcntl.h>\n"
                + "#include <signal.h>\n#include <sys/stat.h>\n#include <sys/statvfs.h>\n#include <sys/vfs.h>\n"
                + "#include <termios.h>\n");
        for (Map.Entry<String, Long> e : m.entrySet()) {
            c.append("_Static_assert((unsigned long)(").append(e.getKey()).append(") == ").append(e.getValue())
                    .append("UL, \"").append(e.getKey()).append(" is ").append(e.getValue()).append(" in Java\");\n");
        }
        compile(compiler, dir.resolve("abi.c"), c.toString());
        // the kernel's own numbers (glibc says O_LARGEFILE is 0 on 64-bit; the kernel and FUSE's open flags do not)
        StringBuilder k = new StringBuilder("#include <asm/fcntl.h>\n");
        Map<String, Integer> kernel = Map.of("O_LARGEFILE", PosixFs.LARGEFILE[abi], "O_DIRECT", PosixFs.DIRECT[abi],
                "O_DIRECTORY", PosixFs.DIRECTORY[abi], "O_NOFOLLOW", PosixFs.NOFOLLOW[abi]);
        kernel.forEach((name, v) -> k.append("_Static_assert(").append(name).append(" == ").append(v).append(", \"")
                .append(name).append(" is ").append(v).append(" in Java\");\n"));
        compile(compiler, dir.resolve("kernel.c"), k.toString());
    }

    private static void compile(String compiler, Path src, String text) throws Exception {
        Files.writeString(src, text);
        Process p = new ProcessBuilder(compiler, "-fsyntax-only", src.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), compiler + " disagrees:\n" + out);
    }

    /** A stat buffer whose every 4-byte word holds its own offset (little-endian), so a field's value names it. */
    private static byte[] filled() {
        ByteBuffer b = ByteBuffer.allocate(Stat.SIZE).order(ByteOrder.LITTLE_ENDIAN);
        for (int at = 0; at < Stat.SIZE; at += 4) {
            b.putInt(at, at);
        }
        return b.array();
    }

    private static int offsetOf(long value) { return (int) value; }

    private static boolean present(String compiler) {
        try {
            Process p = new ProcessBuilder(compiler, "--version").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (java.io.IOException | InterruptedException e) {
            return false;
        }
    }
}
