package dev.jkrun.libc;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * {@code struct stat} as fstatat(2) fills it. x86_64 glibc ({@code bits/struct_stat.h}, 144 bytes): dev@0 ino@8
 * nlink@16 (64-bit) mode@24 uid@28 gid@32 rdev@40 size@48 blksize@56 blocks@64 atim@72 mtim@88 ctim@104. aarch64 (the
 * generic layout, asm-generic/stat.h, 128 bytes): dev@0 ino@8 mode@16 nlink@20 (32-bit) uid@24 gid@28 rdev@32
 * size@48 blksize@56 (32-bit) blocks@64 atim@72 mtim@88 ctim@104.
 */
public record Stat(long dev, long ino, int mode, long nlink, int uid, int gid, long rdev, long size, long blksize,
                   long blocks, long atimeSec, long atimeNsec, long mtimeSec, long mtimeNsec, long ctimeSec,
                   long ctimeNsec) {
    public static final int SIZE = 144;
    public static final int S_IFMT = 0170000, S_IFSOCK = 0140000, S_IFLNK = 0120000, S_IFREG = 0100000,
            S_IFBLK = 0060000, S_IFDIR = 0040000, S_IFCHR = 0020000, S_IFIFO = 0010000;

    /** aarch64 glibc fills the generic layout; {@link #SIZE} holds either. */
    static final boolean GENERIC_LAYOUT = switch (System.getProperty("os.arch")) {
        case "amd64", "x86_64" -> false;
        case "aarch64" -> true;
        default -> throw new UnsupportedOperationException("struct stat of " + System.getProperty("os.arch") + " unknown");
    };

    static Stat parse(byte[] raw) { return GENERIC_LAYOUT ? parseGeneric(raw) : parseX86(raw); }

    static Stat parseX86(byte[] raw) {
        ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        return new Stat(b.getLong(0), b.getLong(8), b.getInt(24), b.getLong(16), b.getInt(28), b.getInt(32),
                b.getLong(40), b.getLong(48), b.getLong(56), b.getLong(64), b.getLong(72), b.getLong(80),
                b.getLong(88), b.getLong(96), b.getLong(104), b.getLong(112));
    }

    static Stat parseGeneric(byte[] raw) {
        ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        return new Stat(b.getLong(0), b.getLong(8), b.getInt(16), b.getInt(20) & 0xFFFF_FFFFL, b.getInt(24),
                b.getInt(28), b.getLong(32), b.getLong(48), b.getInt(56), b.getLong(64), b.getLong(72), b.getLong(80),
                b.getLong(88), b.getLong(96), b.getLong(104), b.getLong(112));
    }

    /** The file type bits ({@code mode & S_IFMT}). */
    public int type() { return mode & S_IFMT; }

    public boolean isDirectory() { return type() == S_IFDIR; }

    public boolean isRegular() { return type() == S_IFREG; }

    public boolean isSymlink() { return type() == S_IFLNK; }
}
