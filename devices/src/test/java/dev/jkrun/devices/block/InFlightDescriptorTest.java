package dev.jkrun.devices.block;

import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.PosixFs;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** A close while calls are in flight closes the number only after the last of them. */
class InFlightDescriptorTest {
    @TempDir
    Path dir;

    @Test
    void theLastUserClosesIt() throws Exception {
        Path f = Files.writeString(dir.resolve("f"), "x");
        FileDescriptor fd = PosixFs.openat(null, PosixFs.bytes(f.toString()), PosixFs.O_RDONLY, 0);
        InFlightDescriptor d = new InFlightDescriptor(fd);
        FileDescriptor a = d.acquire(), b = d.acquire();
        assertSame(fd, a);
        d.close();
        assertTrue(fd.isOpen(), "two calls still use it");
        assertNull(d.acquire(), "no new call once closed");
        assertEquals(1, PosixFs.pread(b, ByteBuffer.allocateDirect(8), 0), "a call in flight still reads its file");
        d.release();
        assertTrue(fd.isOpen(), "one call still uses it");
        d.release();
        assertFalse(fd.isOpen(), "closed by the last");
        d.close(); // idempotent
    }

    @Test
    void closedAtOnceWhenNothingUsesIt() throws Exception {
        Path f = Files.writeString(dir.resolve("g"), "y");
        FileDescriptor fd = PosixFs.openat(null, PosixFs.bytes(f.toString()), PosixFs.O_RDONLY, 0);
        InFlightDescriptor d = new InFlightDescriptor(fd);
        d.acquire();
        d.release();
        assertTrue(fd.isOpen());
        d.close();
        assertFalse(fd.isOpen());
    }
}
