package dev.jkrun.loader.krunfw;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Finds an ELF64 shared object embedded in a larger blob (a Node.js addon that carries libkrunfw as data)
 * by its contents, never by a fixed offset: every {@code \x7fELF} is a candidate; a candidate is taken when its
 * header is a consistent little-endian ELF64 {@code ET_DYN} whose extent (the furthest of the section header
 * table end and every segment's {@code p_offset + p_filesz}) lies inside the blob, and whose {@code .dynsym}
 * (found through the section headers) defines the wanted symbol with global or weak binding.
 *
 * <p>All reads are bounds-checked against the candidate's extent; a malformed candidate is skipped.
 */
final class EmbeddedElf {
    private static final int EHDR = 64;
    private static final int PHDR = 56;
    private static final int SHDR = 64;
    private static final int SYM = 24;
    private static final int ET_DYN = 3;
    private static final int SHT_STRTAB = 3;
    private static final int SHT_DYNSYM = 11;
    private static final int STB_GLOBAL = 1;
    private static final int STB_WEAK = 2;
    private static final int MAX_HEADERS = 4096;

    /** A located object: {@code [offset, offset + size)} of the blob. */
    record Span(long offset, long size) {}

    private EmbeddedElf() {}

    /** The first embedded shared object that exports {@code symbol}, or null. */
    static Span find(ByteBuffer blob, String symbol) {
        ByteBuffer b = blob.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        byte[] want = symbol.getBytes(StandardCharsets.US_ASCII);
        int limit = b.limit();
        for (int i = 0; i + EHDR <= limit; i++) {
            if (b.get(i) != 0x7f || b.get(i + 1) != 'E' || b.get(i + 2) != 'L' || b.get(i + 3) != 'F') {
                continue;
            }
            long size = extent(b, i);
            if (size > 0 && exports(b, i, size, want)) {
                return new Span(i, size);
            }
        }
        return null;
    }

    /** The candidate's size in bytes, or -1 if its header is not a plausible ELF64 shared object in the blob. */
    static long extent(ByteBuffer b, int base) {
        long avail = b.limit() - (long) base;
        if (avail < EHDR || b.get(base + 4) != 2 || b.get(base + 5) != 1 || b.get(base + 6) != 1) {
            return -1;
        }
        int type = u16(b, base + 16);
        long phoff = b.getLong(base + 32);
        long shoff = b.getLong(base + 40);
        int ehsize = u16(b, base + 52);
        int phentsize = u16(b, base + 54);
        int phnum = u16(b, base + 56);
        int shentsize = u16(b, base + 58);
        int shnum = u16(b, base + 60);
        if (type != ET_DYN || ehsize != EHDR || phentsize != PHDR || shentsize != SHDR
                || phnum == 0 || shnum == 0 || phnum > MAX_HEADERS || shnum > MAX_HEADERS) {
            return -1;
        }
        if (!inside(phoff, (long) phnum * PHDR, avail) || !inside(shoff, (long) shnum * SHDR, avail)) {
            return -1;
        }
        long end = Math.max(shoff + (long) shnum * SHDR, phoff + (long) phnum * PHDR);
        for (int k = 0; k < phnum; k++) {
            int ph = base + (int) phoff + k * PHDR;
            long off = b.getLong(ph + 8);
            long filesz = b.getLong(ph + 32);
            if (!inside(off, filesz, avail)) {
                return -1;
            }
            end = Math.max(end, off + filesz);
        }
        return end;
    }

    /** Whether the candidate's .dynsym defines {@code want} (global or weak, not undefined). */
    static boolean exports(ByteBuffer b, int base, long size, byte[] want) {
        long shoff = b.getLong(base + 40);
        int shnum = u16(b, base + 60);
        for (int s = 0; s < shnum; s++) {
            int sh = base + (int) shoff + s * SHDR;
            if (b.getInt(sh + 4) != SHT_DYNSYM) {
                continue;
            }
            long symOff = b.getLong(sh + 24);
            long symSize = b.getLong(sh + 32);
            long link = b.getInt(sh + 40) & 0xffffffffL;
            long entsize = b.getLong(sh + 56);
            if (entsize != SYM || !inside(symOff, symSize, size) || link >= shnum) {
                return false;
            }
            int str = base + (int) shoff + (int) link * SHDR;
            long strOff = b.getLong(str + 24);
            long strSize = b.getLong(str + 32);
            if (b.getInt(str + 4) != SHT_STRTAB || !inside(strOff, strSize, size)) {
                return false;
            }
            for (long y = 0; y + SYM <= symSize; y += SYM) {
                int sym = base + (int) (symOff + y);
                long name = b.getInt(sym) & 0xffffffffL;
                int bind = (b.get(sym + 4) & 0xff) >> 4;
                int shndx = u16(b, sym + 6);
                if (shndx == 0 || (bind != STB_GLOBAL && bind != STB_WEAK) || name + want.length >= strSize) {
                    continue;
                }
                if (nameEquals(b, base + (int) (strOff + name), want)) {
                    return true;
                }
            }
            return false;
        }
        return false;
    }

    private static boolean nameEquals(ByteBuffer b, int at, byte[] want) {
        for (int k = 0; k < want.length; k++) {
            if (b.get(at + k) != want[k]) {
                return false;
            }
        }
        return b.get(at + want.length) == 0;
    }

    /** {@code [off, off+len)} lies inside {@code [0, limit)}, with no overflow. */
    private static boolean inside(long off, long len, long limit) {
        return off >= 0 && len >= 0 && off <= limit && len <= limit - off;
    }

    private static int u16(ByteBuffer b, int at) { return b.getShort(at) & 0xffff; }
}
