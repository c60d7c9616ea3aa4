package dev.jkrun.guests;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class TestGuestsTest {
    @Test
    void everyGuestIsAStaticX86_64Executable() throws IOException {
        for (String name : TestGuests.names()) {
            Path p = TestGuests.path(name);
            assertTrue(Files.isRegularFile(p), name);
            ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(p)).order(ByteOrder.LITTLE_ENDIAN);
            byte[] magic = new byte[4];
            b.get(magic);
            assertArrayEquals(new byte[] {0x7F, 'E', 'L', 'F'}, magic, name);
            assertEquals(2, b.get(4), name + ": ELFCLASS64");
            assertEquals(2, b.getShort(16), name + ": ET_EXEC");
            assertEquals(62, b.getShort(18), name + ": EM_X86_64");
            assertEquals(0x100000L, b.getLong(24), name + ": entry");
        }
    }

    @Test
    void pathIsStable() {
        assertEquals(TestGuests.path("exit_status"), TestGuests.path("exit_status"));
    }

    @Test
    void unknownGuestIsRejected() {
        assertThrows(IllegalArgumentException.class, () -> TestGuests.path("nope"));
    }
}
