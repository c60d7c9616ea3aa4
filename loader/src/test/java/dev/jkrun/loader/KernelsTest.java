package dev.jkrun.loader;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KernelsTest {
    @TempDir
    Path dir;

    @Test
    void sniffsElf() throws Exception {
        Path p = dir.resolve("vmlinux");
        Files.write(p, new ElfBuilder().segment(0x1000000, 0x1000000, new byte[16], 0x1000).entry(0x1000000).build());
        assertEquals(0x1000000, assertInstanceOf(ElfKernel.class, Kernels.open(p)).entry());
    }

    @Test
    void sniffsBzImage() throws Exception {
        Path p = dir.resolve("vmlinuz");
        Files.write(p, BzImageTest.synthetic());
        assertEquals(0x100200, assertInstanceOf(BzImage.class, Kernels.open(p)).entry());
    }

    @Test
    void sniffsASharedObjectAsALibkrunfwBundle() throws Exception {
        Path lib = Tools.gcc(dir, "libkrunfw.so.5", """
                #include <stddef.h>
                static const char K[8192] __attribute__((aligned(4096))) = {1};
                int krunfw_get_version(void) { return 5; }
                const char *krunfw_get_kernel(size_t *l, size_t *e, size_t *s) { *l = 0x1000000; *e = 0x1000000; *s = 8192; return K; }
                """, "-shared", "-fPIC");
        assertEquals(5, assertInstanceOf(KrunfwBundle.class, Kernels.open(lib)).version());
    }

    @Test
    void rejectsEverythingElseNamingTheFile() throws Exception {
        Path p = dir.resolve("initrd.cpio");
        Files.writeString(p, "070701" + "0".repeat(600));
        KernelFormatException e = assertThrows(KernelFormatException.class, () -> Kernels.open(p));
        assertEquals(KernelFormatException.Reason.UNKNOWN_FORMAT, e.reason());
        assertEquals(p + " is not a kernel image (neither ELF, bzImage nor arm64 Image)", e.getMessage());
        Path empty = dir.resolve("empty");
        Files.write(empty, new byte[0]);
        assertEquals(KernelFormatException.Reason.UNKNOWN_FORMAT,
                assertThrows(KernelFormatException.class, () -> Kernels.open(empty)).reason());
        assertEquals(KernelFormatException.Reason.IO,
                assertThrows(KernelFormatException.class, () -> Kernels.open(dir.resolve("absent"))).reason());
    }
}
