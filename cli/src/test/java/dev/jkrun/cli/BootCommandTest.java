package dev.jkrun.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.jkrun.loader.KernelFormat;
import org.junit.jupiter.api.Test;

class BootCommandTest {
    @Test
    void kernelFormatsAreLibkrunsX86Ones() throws Exception {
        assertEquals(KernelFormat.ELF, BootCommand.kernelFormat("elf"));
        assertEquals(KernelFormat.IMAGE_GZ, BootCommand.kernelFormat("image-gz"));
        assertEquals(KernelFormat.IMAGE_ZSTD, BootCommand.kernelFormat("image-zstd"));
        assertEquals(KernelFormat.IMAGE_BZ2, BootCommand.kernelFormat("image-bz2"));
        assertEquals(KernelFormat.RAW, BootCommand.kernelFormat("raw"));
        assertThrows(Main.UsageException.class, () -> BootCommand.kernelFormat("pe-gz"));
    }
}
