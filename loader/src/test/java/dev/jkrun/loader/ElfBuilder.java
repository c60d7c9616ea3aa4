package dev.jkrun.loader;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/** Builds small ELF64 x86_64 ET_EXEC images byte by byte, for the malformed-input tests. */
final class ElfBuilder {
    record Seg(long vaddr, long paddr, byte[] data, long memsz) {}

    private final List<Seg> segs = new ArrayList<>();
    private long entry;

    ElfBuilder segment(long vaddr, long paddr, byte[] data, long memsz) {
        segs.add(new Seg(vaddr, paddr, data, memsz));
        return this;
    }

    ElfBuilder entry(long e) {
        entry = e;
        return this;
    }

    /** Offset of program header {@code i} in the built image. */
    static int phdr(int i) { return 64 + i * 56; }

    byte[] build() {
        int dataStart = 64 + segs.size() * 56;
        int total = dataStart;
        for (Seg s : segs) {
            total += s.data().length;
        }
        ByteBuffer b = ByteBuffer.allocate(total).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {0x7f, 'E', 'L', 'F', 2, 1, 1});
        b.putShort(16, (short) 2).putShort(18, (short) 62).putInt(20, 1).putLong(24, entry).putLong(32, 64)
                .putShort(52, (short) 64).putShort(54, (short) 56).putShort(56, (short) segs.size());
        int off = dataStart;
        for (int i = 0; i < segs.size(); i++) {
            Seg s = segs.get(i);
            int p = phdr(i);
            b.putInt(p, 1).putInt(p + 4, 5).putLong(p + 8, off).putLong(p + 16, s.vaddr()).putLong(p + 24, s.paddr())
                    .putLong(p + 32, s.data().length).putLong(p + 40, s.memsz()).putLong(p + 48, 0x1000);
            b.put(off, s.data());
            off += s.data().length;
        }
        return b.array();
    }
}
