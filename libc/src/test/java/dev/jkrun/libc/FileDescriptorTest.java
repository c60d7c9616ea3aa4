package dev.jkrun.libc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileDescriptorTest {
    @TempDir
    Path dir;

    @Test
    void accessModeIsHowTheDescriptorWasOpened() throws Exception {
        String f = Files.write(dir.resolve("f"), new byte[16]).toString();
        for (int mode : new int[] {FileDescriptor.O_RDONLY, FileDescriptor.O_WRONLY, FileDescriptor.O_RDWR}) {
            try (FileDescriptor fd = FileDescriptor.open(f, mode | FileDescriptor.O_NONBLOCK)) {
                assertEquals(mode, FileDescriptor.accessMode(fd.raw()), "flags beyond the access mode are left out");
            }
        }
        // a number far above any this JVM holds: closing one of ours instead could race with another thread's open
        assertEquals(Errno.EBADF, assertThrows(NativeCallException.class, () -> FileDescriptor.accessMode(999_999)).errno());
    }
}
