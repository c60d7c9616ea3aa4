package dev.jkrun.loader;

import static dev.jkrun.loader.GuestWrites.hex;

import dev.jkrun.memory.GuestMemory;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * An ELF64 x86_64 {@code ET_EXEC} image: an uncompressed {@code vmlinux} or one of our static test guests.
 *
 * <p>Like linux-loader (which libkrun uses for external kernels), each {@code PT_LOAD} segment goes to its
 * {@code p_paddr}: for vmlinux the physical addresses are the real load addresses (0x1000000 and up), while
 * {@code p_vaddr} is the kernel's high virtual mapping. {@code p_filesz} bytes are copied and the rest of
 * {@code p_memsz} is zeroed. The entry is {@code e_entry}; a vmlinux's is already physical
 * ({@code ENTRY(phys_startup_64)} in vmlinux.lds.S), but an entry in the kernel's virtual window
 * ({@code >= 0xffffffff80000000}) is translated through the segment that contains it.
 *
 * <p>The file is validated strictly before anything is kept; every failure is a {@link KernelFormatException}
 * with its own {@link KernelFormatException.Reason}. Segment bytes are read into the heap at load time, so
 * {@link #writeInto} needs no file.
 */
public final class ElfKernel implements KernelPayload {
    /** Kernels have ~5 program headers; anything beyond this is not a kernel. */
    public static final int MAX_PROGRAM_HEADERS = 64;
    /** No single segment of a kernel or test guest is this large. */
    public static final long MAX_SEGMENT_SIZE = 1L << 30;

    static final byte[] MAGIC = {0x7f, 'E', 'L', 'F'};
    private static final int EHDR_SIZE = 64;
    private static final int PHDR_SIZE = 56;
    private static final int ELFCLASS64 = 2;
    private static final int ELFDATA2LSB = 1;
    private static final int EV_CURRENT = 1;
    private static final int ET_EXEC = 2;
    private static final int ET_DYN = 3;
    private static final int EM_X86_64 = 62;
    private static final int PT_LOAD = 1;
    private static final long KERNEL_VIRTUAL_BASE = 0xffffffff80000000L;

    /** One {@code PT_LOAD} segment as placed in guest RAM. */
    public record Segment(long physicalAddress, long virtualAddress, long fileSize, long memorySize) {
        /** Exclusive end in guest physical memory. */
        public long end() { return physicalAddress + memorySize; }
    }

    private final Path path;
    private final long entry;
    private final List<Segment> segments;
    private final List<byte[]> data;

    private ElfKernel(Path path, long entry, List<Segment> segments, List<byte[]> data) {
        this.path = path;
        this.entry = entry;
        this.segments = List.copyOf(segments);
        this.data = List.copyOf(data);
    }

    public static ElfKernel load(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            return parse(file, ch);
        } catch (IOException e) {
            throw new KernelFormatException(KernelFormatException.Reason.IO, file + ": cannot read: " + e, e);
        }
    }

    /**
     * An ELF image already in memory (a decompressed {@code KRUN_KERNEL_FORMAT_IMAGE_*} kernel); {@code name} is only
     * for messages.
     */
    public static ElfKernel parse(Path name, byte[] image) {
        try {
            return parse(name, new Source() {
                @Override public long size() { return image.length; }
                @Override public int read(ByteBuffer dst, long pos) {
                    if (pos >= image.length) {
                        return -1;
                    }
                    int n = (int) Math.min(dst.remaining(), image.length - pos);
                    dst.put(image, (int) pos, n);
                    return n;
                }
            });
        } catch (IOException e) {
            throw new KernelFormatException(KernelFormatException.Reason.IO, name + ": " + e, e);
        }
    }

    /** Positional reads of the image: a file or a byte array. */
    private interface Source {
        long size() throws IOException;

        int read(ByteBuffer dst, long pos) throws IOException;
    }

    private static ElfKernel parse(Path file, FileChannel ch) throws IOException {
        return parse(file, new Source() {
            @Override public long size() throws IOException { return ch.size(); }
            @Override public int read(ByteBuffer dst, long pos) throws IOException { return ch.read(dst, pos); }
        });
    }

    private static ElfKernel parse(Path file, Source ch) throws IOException {
        long size = ch.size();
        ByteBuffer eh = read(ch, 0, (int) Math.min(size, EHDR_SIZE));
        if (eh.limit() < MAGIC.length || !hasMagic(eh)) {
            throw new KernelFormatException(KernelFormatException.Reason.UNKNOWN_FORMAT, file + " is not an ELF file");
        }
        if (eh.limit() < EHDR_SIZE) {
            throw fail(KernelFormatException.Reason.TRUNCATED,
                    file + ": truncated ELF header (" + size + " bytes, need " + EHDR_SIZE + ")");
        }
        int cls = eh.get(4) & 0xff;
        int dataEnc = eh.get(5) & 0xff;
        int version = eh.get(6) & 0xff;
        if (cls != ELFCLASS64) {
            throw unsupported(file + ": ELF class " + cls + " is not supported (need ELFCLASS64)");
        }
        if (dataEnc != ELFDATA2LSB) {
            throw unsupported(file + ": ELF data encoding " + dataEnc + " is not supported (need little-endian)");
        }
        if (version != EV_CURRENT) {
            throw unsupported(file + ": ELF version " + version + " is not supported");
        }
        int type = eh.getShort(16) & 0xffff;
        int machine = eh.getShort(18) & 0xffff;
        if (machine != EM_X86_64) {
            throw unsupported(file + ": ELF machine " + machine + " is not supported (need x86_64, " + EM_X86_64 + ")");
        }
        if (type != ET_EXEC) {
            throw unsupported(file + ": ELF type " + type + (type == ET_DYN ? " (a shared object)" : "")
                    + " is not supported (need ET_EXEC)");
        }
        long eEntry = eh.getLong(24);
        long phoff = eh.getLong(32);
        int phentsize = eh.getShort(54) & 0xffff;
        int phnum = eh.getShort(56) & 0xffff;
        if (phnum == 0) {
            throw fail(KernelFormatException.Reason.NO_SEGMENTS, file + ": no program headers");
        }
        if (phentsize != PHDR_SIZE) {
            throw unsupported(file + ": program header size " + phentsize + " (need " + PHDR_SIZE + ")");
        }
        if (phnum > MAX_PROGRAM_HEADERS) {
            throw fail(KernelFormatException.Reason.TOO_MANY_SEGMENTS,
                    file + ": " + phnum + " program headers (at most " + MAX_PROGRAM_HEADERS + ")");
        }
        long tableLen = (long) phnum * PHDR_SIZE;
        if (Long.compareUnsigned(phoff, size) > 0 || tableLen > size - phoff) {
            throw fail(KernelFormatException.Reason.TRUNCATED, file + ": program header table at " + hex(phoff)
                    + " (" + tableLen + " bytes) extends beyond the end of the file (" + size + " bytes)");
        }
        ByteBuffer ph = read(ch, phoff, (int) tableLen);

        List<Loadable> segs = new ArrayList<>();
        for (int i = 0; i < phnum; i++) {
            int base = i * PHDR_SIZE;
            if (ph.getInt(base) != PT_LOAD) {
                continue;
            }
            long off = ph.getLong(base + 8);
            long vaddr = ph.getLong(base + 16);
            long paddr = ph.getLong(base + 24);
            long filesz = ph.getLong(base + 32);
            long memsz = ph.getLong(base + 40);
            String seg = file + ": segment " + i;
            if (Long.compareUnsigned(filesz, memsz) > 0) {
                throw fail(KernelFormatException.Reason.BAD_SEGMENT,
                        seg + ": p_filesz " + hex(filesz) + " exceeds p_memsz " + hex(memsz));
            }
            if (Long.compareUnsigned(memsz, MAX_SEGMENT_SIZE) > 0) {
                throw fail(KernelFormatException.Reason.OVERFLOW,
                        seg + ": p_memsz " + hex(memsz) + " is larger than " + GuestWrites.mib(MAX_SEGMENT_SIZE));
            }
            if (Long.compareUnsigned(off, size) > 0 || filesz > size - off) {
                throw fail(KernelFormatException.Reason.SEGMENT_BEYOND_FILE, seg + " (offset " + hex(off)
                        + ", p_filesz " + hex(filesz) + ") extends beyond the end of the file (" + size + " bytes)");
            }
            if (Long.compareUnsigned(paddr + memsz, paddr) < 0) {
                throw fail(KernelFormatException.Reason.OVERFLOW,
                        seg + ": p_paddr " + hex(paddr) + " + p_memsz " + hex(memsz) + " overflows");
            }
            if (memsz != 0) {
                segs.add(new Loadable(new Segment(paddr, vaddr, filesz, memsz), off));
            }
        }
        if (segs.isEmpty()) {
            throw fail(KernelFormatException.Reason.NO_SEGMENTS, file + ": no PT_LOAD segment");
        }
        segs.sort(Comparator.comparing(l -> l.segment().physicalAddress(), Long::compareUnsigned));
        List<Segment> sorted = new ArrayList<>();
        for (Loadable l : segs) {
            Segment s = l.segment();
            if (!sorted.isEmpty()) {
                Segment prev = sorted.get(sorted.size() - 1);
                if (Long.compareUnsigned(s.physicalAddress(), prev.end()) < 0) {
                    throw fail(KernelFormatException.Reason.OVERLAPPING_SEGMENTS, file + ": segments at "
                            + hex(prev.physicalAddress()) + " and " + hex(s.physicalAddress()) + " overlap");
                }
            }
            sorted.add(s);
        }
        long entry = physicalEntry(file, eEntry, sorted);
        // Only read segment bytes once the whole table has passed validation.
        List<byte[]> bytes = new ArrayList<>();
        for (Loadable l : segs) {
            bytes.add(read(ch, l.fileOffset(), (int) l.segment().fileSize()).array());
        }
        return new ElfKernel(file, entry, sorted, bytes);
    }

    private record Loadable(Segment segment, long fileOffset) {}

    private static long physicalEntry(Path file, long eEntry, List<Segment> segs) {
        long entry = eEntry;
        if (Long.compareUnsigned(eEntry, KERNEL_VIRTUAL_BASE) >= 0) {
            Segment owner = null;
            for (Segment s : segs) {
                if (Long.compareUnsigned(eEntry, s.virtualAddress()) >= 0
                        && Long.compareUnsigned(eEntry - s.virtualAddress(), s.memorySize()) < 0) {
                    owner = s;
                    break;
                }
            }
            if (owner == null) {
                throw fail(KernelFormatException.Reason.BAD_ENTRY,
                        file + ": virtual entry point " + hex(eEntry) + " is outside every PT_LOAD segment");
            }
            entry = eEntry - (owner.virtualAddress() - owner.physicalAddress());
        }
        for (Segment s : segs) {
            if (Long.compareUnsigned(entry, s.physicalAddress()) >= 0
                    && Long.compareUnsigned(entry - s.physicalAddress(), s.memorySize()) < 0) {
                return entry;
            }
        }
        throw fail(KernelFormatException.Reason.BAD_ENTRY,
                file + ": entry point " + hex(entry) + " is outside every PT_LOAD segment");
    }

    private static boolean hasMagic(ByteBuffer b) {
        for (int i = 0; i < MAGIC.length; i++) {
            if (b.get(i) != MAGIC[i]) {
                return false;
            }
        }
        return true;
    }

    private static ByteBuffer read(Source ch, long pos, int len) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.LITTLE_ENDIAN);
        while (b.hasRemaining()) {
            int n = ch.read(b, pos + b.position());
            if (n < 0) {
                break;
            }
        }
        b.flip();
        return b;
    }

    private static KernelFormatException unsupported(String msg) {
        return new KernelFormatException(KernelFormatException.Reason.UNSUPPORTED_ELF, msg);
    }

    private static KernelFormatException fail(KernelFormatException.Reason r, String msg) {
        return new KernelFormatException(r, msg);
    }

    /** The file this image came from. */
    public Path path() { return path; }

    /** The PT_LOAD segments with a non-zero size, in ascending physical address order. */
    public List<Segment> segments() { return segments; }

    @Override
    public long loadAddress() { return segments.get(0).physicalAddress(); }

    @Override
    public long end() {
        long end = 0;
        for (Segment s : segments) {
            end = Math.max(end, s.end());
        }
        return end;
    }

    @Override
    public long entry() { return entry; }

    @Override
    public void writeInto(GuestMemory mem) {
        for (Segment s : segments) {
            GuestWrites.checkFits(mem, s.physicalAddress(), s.memorySize(), this::description);
        }
        for (int i = 0; i < segments.size(); i++) {
            Segment s = segments.get(i);
            byte[] b = data.get(i);
            GuestWrites.write(mem, s.physicalAddress(), b, 0, b.length);
            GuestWrites.zero(mem, s.physicalAddress() + s.fileSize(), s.memorySize() - s.fileSize());
        }
    }

    @Override
    public String description() {
        return "ELF " + path.getFileName() + " (" + segments.size() + " segments, "
                + GuestWrites.mib(end() - loadAddress()) + " at " + hex(loadAddress()) + ", entry " + hex(entry) + ")";
    }
}
