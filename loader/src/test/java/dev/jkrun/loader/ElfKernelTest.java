package dev.jkrun.loader;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.HeapGuestMemory;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ElfKernelTest {
    private static final String GUEST = """
            const unsigned char marker[16] = {0xde,0xad,0xbe,0xef,1,2,3,4,5,6,7,8,9,10,11,12};
            unsigned char scratch[8192];
            void _start(void) {
                for (;;) { scratch[0] = marker[0]; __asm__ volatile("hlt"); }
            }
            """;

    @TempDir
    static Path dir;
    private static Path guest;

    @BeforeAll
    static void build() throws Exception {
        guest = Tools.gcc(dir, "guest", GUEST, "-static", "-nostdlib", "-ffreestanding", "-fno-pic", "-no-pie", "-O1",
                "-Wl,-Ttext=0x100000", "-Wl,--build-id=none");
    }

    private static long symbol(String name) throws Exception {
        for (String line : Tools.run(List.of("nm", guest.toString())).split("\n")) {
            String[] f = line.trim().split("\\s+");
            if (f.length == 3 && f[2].equals(name)) {
                return Long.parseLong(f[0], 16);
            }
        }
        throw new AssertionError("no symbol " + name);
    }

    @Test
    void loadsGccStaticGuestAtItsPhysicalAddresses() throws Exception {
        ElfKernel k = ElfKernel.load(guest);
        assertEquals(0x100000, k.entry(), "entry is _start at -Ttext");
        assertEquals(symbol("_start"), k.entry());
        assertTrue(k.loadAddress() <= 0x100000 && k.loadAddress() >= 0xf0000, k.description());
        assertTrue(k.end() > 0x100000 + 8192, "bss is covered: " + Long.toHexString(k.end()));

        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x200000);
        mem.fill(GuestAddress.ZERO, 0x200000, (byte) 0xaa);
        k.writeInto(mem);

        // Every segment's file bytes are where its program header says, and the BSS tail is zeroed.
        byte[] file = Files.readAllBytes(guest);
        ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        long phoff = b.getLong(32);
        int phnum = b.getShort(56);
        int loads = 0;
        for (int i = 0; i < phnum; i++) {
            int p = (int) phoff + i * 56;
            if (b.getInt(p) != 1 || b.getLong(p + 40) == 0) {
                continue;
            }
            loads++;
            int off = (int) b.getLong(p + 8);
            long paddr = b.getLong(p + 24);
            int filesz = (int) b.getLong(p + 32);
            int memsz = (int) b.getLong(p + 40);
            assertArrayEquals(Arrays.copyOfRange(file, off, off + filesz), mem.readBytes(GuestAddress.of(paddr), filesz),
                    "segment " + i + " at 0x" + Long.toHexString(paddr));
            assertArrayEquals(new byte[memsz - filesz], mem.readBytes(GuestAddress.of(paddr + filesz), memsz - filesz));
        }
        assertEquals(loads, k.segments().size());
        assertArrayEquals(new byte[] {(byte) 0xde, (byte) 0xad, (byte) 0xbe, (byte) 0xef, 1, 2, 3, 4},
                mem.readBytes(GuestAddress.of(symbol("marker")), 8));
        assertArrayEquals(new byte[8192], mem.readBytes(GuestAddress.of(symbol("scratch")), 8192), "bss zeroed");
        assertEquals((byte) 0xaa, mem.readByte(GuestAddress.of(k.end())), "nothing written past end()");
        assertTrue(k.description().startsWith("ELF guest ("), k.description());
    }

    @Test
    void doesNotFitLeavesMemoryUntouched() {
        ElfKernel k = ElfKernel.load(guest);
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x100800); // ends inside the text segment's page
        KernelFormatException e = assertThrows(KernelFormatException.class, () -> k.writeInto(mem));
        assertEquals(KernelFormatException.Reason.DOES_NOT_FIT, e.reason());
        assertArrayEquals(new byte[0x800], mem.readBytes(GuestAddress.of(0x100000), 0x800));
    }

    @Test
    void translatesAVirtualEntryThroughItsSegment() throws IOException {
        byte[] code = new byte[0x400];
        code[0x200] = (byte) 0xf4;
        byte[] elf = new ElfBuilder().segment(0xffffffff81000000L, 0x1000000, code, 0x3000)
                .entry(0xffffffff81000200L).build();
        ElfKernel k = ElfKernel.load(write("vmlinux", elf));
        assertEquals(0x1000200, k.entry());
        assertEquals(0x1000000, k.loadAddress());
        assertEquals(0x1003000, k.end());
        HeapGuestMemory mem = HeapGuestMemory.of(0x1000000, 0x4000);
        k.writeInto(mem);
        assertEquals((byte) 0xf4, mem.readByte(GuestAddress.of(k.entry())));
    }

    @Test
    void segmentsAreSortedByPhysicalAddress() throws IOException {
        byte[] elf = new ElfBuilder().segment(0x300000, 0x300000, new byte[] {3}, 0x1000)
                .segment(0x200000, 0x200000, new byte[] {2}, 0x1000).entry(0x200000).build();
        ElfKernel k = ElfKernel.load(write("two", elf));
        assertEquals(0x200000, k.loadAddress());
        assertEquals(0x301000, k.end());
        assertEquals(0x200000, k.segments().get(0).physicalAddress());
    }

    private static final byte[] GOOD = new ElfBuilder().segment(0x100000, 0x100000, new byte[64], 0x1000)
            .entry(0x100000).build();

    private static byte[] mutate(Consumer<ByteBuffer> m) {
        ByteBuffer b = ByteBuffer.wrap(GOOD.clone()).order(ByteOrder.LITTLE_ENDIAN);
        m.accept(b);
        return b.array();
    }

    private static KernelFormatException rejects(String name, byte[] content, KernelFormatException.Reason reason)
            throws IOException {
        Path p = write(name, content);
        KernelFormatException e = assertThrows(KernelFormatException.class, () -> ElfKernel.load(p));
        assertEquals(reason, e.reason(), e.getMessage());
        assertTrue(e.getMessage().contains(p.toString()), "message names the file: " + e.getMessage());
        return e;
    }

    @Test
    void builderOutputIsValid() throws IOException {
        assertEquals(0x100000, ElfKernel.load(write("good", GOOD)).entry());
    }

    @Test
    void rejectsMalformedFiles() throws IOException {
        KernelFormatException e = rejects("notelf", "#!/bin/sh\necho hi\n".getBytes(), KernelFormatException.Reason.UNKNOWN_FORMAT);
        assertEquals(dir.resolve("notelf") + " is not an ELF file", e.getMessage());
        rejects("empty", new byte[0], KernelFormatException.Reason.UNKNOWN_FORMAT);
        rejects("truncated-header", Arrays.copyOf(GOOD, 40), KernelFormatException.Reason.TRUNCATED);
        rejects("elf32", mutate(b -> b.put(4, (byte) 1)), KernelFormatException.Reason.UNSUPPORTED_ELF);
        rejects("big-endian", mutate(b -> b.put(5, (byte) 2)), KernelFormatException.Reason.UNSUPPORTED_ELF);
        rejects("aarch64", mutate(b -> b.putShort(18, (short) 183)), KernelFormatException.Reason.UNSUPPORTED_ELF);
        rejects("shared-object", mutate(b -> b.putShort(16, (short) 3)), KernelFormatException.Reason.UNSUPPORTED_ELF);
        rejects("no-phdrs", mutate(b -> b.putShort(56, (short) 0)), KernelFormatException.Reason.NO_SEGMENTS);
        rejects("too-many", mutate(b -> b.putShort(56, (short) 1000)), KernelFormatException.Reason.TOO_MANY_SEGMENTS);
        rejects("phdrs-beyond-eof", mutate(b -> b.putLong(32, 0x7fff_ffff_ffff_fff0L)), KernelFormatException.Reason.TRUNCATED);
        int p = ElfBuilder.phdr(0);
        rejects("offset-beyond-eof", mutate(b -> b.putLong(p + 8, 1 << 20)), KernelFormatException.Reason.SEGMENT_BEYOND_FILE);
        rejects("offset-overflow", mutate(b -> b.putLong(p + 8, -16)), KernelFormatException.Reason.SEGMENT_BEYOND_FILE);
        rejects("filesz-beyond-eof", mutate(b -> b.putLong(p + 32, 0x900).putLong(p + 40, 0x1000)),
                KernelFormatException.Reason.SEGMENT_BEYOND_FILE);
        rejects("cut-in-segment", Arrays.copyOf(GOOD, GOOD.length - 10), KernelFormatException.Reason.SEGMENT_BEYOND_FILE);
        rejects("huge-memsz", mutate(b -> b.putLong(p + 40, 1L << 40)), KernelFormatException.Reason.OVERFLOW);
        rejects("huge-memsz-negative", mutate(b -> b.putLong(p + 40, -1L)), KernelFormatException.Reason.OVERFLOW);
        rejects("paddr-wraps", mutate(b -> b.putLong(p + 24, 0xffff_ffff_ffff_f000L)), KernelFormatException.Reason.OVERFLOW);
        rejects("filesz-over-memsz", mutate(b -> b.putLong(p + 40, 16)), KernelFormatException.Reason.BAD_SEGMENT);
        rejects("entry-outside", mutate(b -> b.putLong(24, 0x500000)), KernelFormatException.Reason.BAD_ENTRY);
        rejects("virtual-entry-outside", mutate(b -> b.putLong(24, 0xffffffff81000000L)), KernelFormatException.Reason.BAD_ENTRY);
        rejects("no-load", mutate(b -> b.putInt(p, 4)), KernelFormatException.Reason.NO_SEGMENTS);
        byte[] overlap = new ElfBuilder().segment(0x100000, 0x100000, new byte[8], 0x2000)
                .segment(0x101000, 0x101000, new byte[8], 0x1000).entry(0x100000).build();
        rejects("overlap", overlap, KernelFormatException.Reason.OVERLAPPING_SEGMENTS);
    }

    @Test
    void missingFileIsAnIoError() {
        KernelFormatException e = assertThrows(KernelFormatException.class, () -> ElfKernel.load(dir.resolve("absent")));
        assertEquals(KernelFormatException.Reason.IO, e.reason());
    }

    static Path write(String name, byte[] content) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, content);
        return p;
    }
}
