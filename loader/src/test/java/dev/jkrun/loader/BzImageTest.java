package dev.jkrun.loader;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.HeapGuestMemory;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BzImageTest {
    @TempDir
    Path dir;

    /** A minimal boot-protocol 2.15 image: 7 setup sectors + a 1 KiB "protected-mode kernel". */
    static byte[] synthetic() {
        ByteBuffer b = ByteBuffer.allocate(8 * 512 + 1024).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0x1f1, (byte) 7);
        b.putShort(0x1fe, (short) 0xaa55);
        b.put(0x200, (byte) 0xeb).put(0x201, (byte) 0x6a);
        b.put(0x202, (byte) 'H').put(0x203, (byte) 'd').put(0x204, (byte) 'r').put(0x205, (byte) 'S');
        b.putShort(0x206, (short) 0x020f);
        b.put(0x211, (byte) 0x01);
        b.putInt(0x214, 0x100000);
        b.putShort(0x236, (short) 0x3);
        b.putInt(0x238, 2047); // cmdline_size: COMMAND_LINE_SIZE - 1
        b.putInt(0x260, 0x800000);
        for (int i = 0; i < 1024; i++) {
            b.put(8 * 512 + i, (byte) (i * 7 + 1));
        }
        return b.array();
    }

    @Test
    void parsesAndPlacesASyntheticImage() throws IOException {
        Path p = dir.resolve("bzImage");
        Files.write(p, synthetic());
        BzImage k = BzImage.load(p);
        assertEquals(0x100000, k.loadAddress());
        assertEquals(0x100200, k.entry());
        assertEquals(0x100400, k.end());
        assertEquals(0x020f, k.protocol());
        assertEquals(0x800000, k.initSize());
        assertEquals(0x26c - 0x1f1, k.setupHeader().length);
        assertEquals("bzImage bzImage (boot protocol 2.15, 0.0 MiB at 0x100000)", k.description());
        assertEquals(java.util.OptionalInt.of(2047), k.commandLineLimit());
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x200000);
        k.writeInto(mem);
        assertArrayEquals(Arrays.copyOfRange(synthetic(), 4096, 4096 + 1024), mem.readBytes(GuestAddress.of(0x100000), 1024));
    }

    @Test
    void rejectsOldOrBrokenHeaders() throws IOException {
        reject("no-magic", b -> b.put(0x202, (byte) 'X'), KernelFormatException.Reason.UNKNOWN_FORMAT);
        reject("old-protocol", b -> b.putShort(0x206, (short) 0x0206), KernelFormatException.Reason.UNSUPPORTED_BZIMAGE);
        reject("no-64bit", b -> b.putShort(0x236, (short) 0), KernelFormatException.Reason.UNSUPPORTED_BZIMAGE);
        reject("zimage", b -> b.put(0x211, (byte) 0), KernelFormatException.Reason.UNSUPPORTED_BZIMAGE);
        reject("boot-flag", b -> b.putShort(0x1fe, (short) 0), KernelFormatException.Reason.UNSUPPORTED_BZIMAGE);
        reject("huge-setup", b -> b.put(0x1f1, (byte) 0xff), KernelFormatException.Reason.TRUNCATED);
        Path cut = dir.resolve("cut");
        Files.write(cut, Arrays.copyOf(synthetic(), 0x240));
        assertEquals(KernelFormatException.Reason.TRUNCATED,
                assertThrows(KernelFormatException.class, () -> BzImage.load(cut)).reason());
    }

    private void reject(String name, java.util.function.Consumer<ByteBuffer> m, KernelFormatException.Reason r)
            throws IOException {
        ByteBuffer b = ByteBuffer.wrap(synthetic()).order(ByteOrder.LITTLE_ENDIAN);
        m.accept(b);
        Path p = dir.resolve(name);
        Files.write(p, b.array());
        KernelFormatException e = assertThrows(KernelFormatException.class, () -> BzImage.load(p));
        assertEquals(r, e.reason(), e.getMessage());
        assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
    }

    /** Debian's own kernel, when the machine has one in /boot (not in containers). */
    @Test
    void parsesTheHostsDebianKernel() throws IOException {
        List<Path> kernels = List.of();
        Path boot = Path.of("/boot");
        if (Files.isDirectory(boot)) {
            try (Stream<Path> s = Files.list(boot)) {
                kernels = s.filter(f -> f.getFileName().toString().startsWith("vmlinuz-") && Files.isReadable(f)).toList();
            }
        }
        assumeTrue(!kernels.isEmpty(), "no readable /boot/vmlinuz-* on this machine: skipping the real bzImage test");
        for (Path k : kernels) {
            KernelPayload p = Kernels.open(k);
            assertTrue(p instanceof BzImage, k + " sniffed as " + p.getClass());
            BzImage b = (BzImage) p;
            assertTrue(b.protocol() >= 0x020c, b.description());
            assertEquals(b.loadAddress() + 0x200, b.entry());
            assertTrue(b.size() > 1 << 20 && b.initSize() > b.size(), b.description());
            assertEquals(java.util.OptionalInt.of(2047), b.commandLineLimit(), "x86's COMMAND_LINE_SIZE - 1: " + k);
        }
    }
}
