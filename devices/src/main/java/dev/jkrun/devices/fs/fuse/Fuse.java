package dev.jkrun.devices.fs.fuse;

/** Opcodes, flags and struct sizes of the FUSE kernel ABI, from {@code <linux/fuse.h>}. */
public final class Fuse {
    private Fuse() {}

    public static final int KERNEL_VERSION = 7;
    /** The minor version this server speaks; INIT answers min(guest minor, this). */
    public static final int KERNEL_MINOR_VERSION = 31;
    /** The oldest guest minor accepted (libkrun's server also requires 7.27). */
    public static final int MIN_MINOR_VERSION = 27;

    // enum fuse_opcode
    public static final int LOOKUP = 1, FORGET = 2, GETATTR = 3, SETATTR = 4, READLINK = 5, SYMLINK = 6, MKNOD = 8,
            MKDIR = 9, UNLINK = 10, RMDIR = 11, RENAME = 12, LINK = 13, OPEN = 14, READ = 15, WRITE = 16, STATFS = 17,
            RELEASE = 18, FSYNC = 20, SETXATTR = 21, GETXATTR = 22, LISTXATTR = 23, REMOVEXATTR = 24, FLUSH = 25,
            INIT = 26, OPENDIR = 27, READDIR = 28, RELEASEDIR = 29, FSYNCDIR = 30, GETLK = 31, SETLK = 32,
            SETLKW = 33, ACCESS = 34, CREATE = 35, INTERRUPT = 36, BMAP = 37, DESTROY = 38, IOCTL = 39, POLL = 40,
            NOTIFY_REPLY = 41, BATCH_FORGET = 42, FALLOCATE = 43, READDIRPLUS = 44, RENAME2 = 45, LSEEK = 46,
            COPY_FILE_RANGE = 47, SETUPMAPPING = 48, REMOVEMAPPING = 49, SYNCFS = 50, TMPFILE = 51, STATX = 52;

    // INIT flags
    public static final long ASYNC_READ = 1L, POSIX_LOCKS = 1L << 1, FILE_OPS = 1L << 2, ATOMIC_O_TRUNC = 1L << 3,
            EXPORT_SUPPORT = 1L << 4, BIG_WRITES = 1L << 5, DONT_MASK = 1L << 6, SPLICE_WRITE = 1L << 7,
            SPLICE_MOVE = 1L << 8, SPLICE_READ = 1L << 9, FLOCK_LOCKS = 1L << 10, HAS_IOCTL_DIR = 1L << 11,
            AUTO_INVAL_DATA = 1L << 12, DO_READDIRPLUS = 1L << 13, READDIRPLUS_AUTO = 1L << 14, ASYNC_DIO = 1L << 15,
            WRITEBACK_CACHE = 1L << 16, NO_OPEN_SUPPORT = 1L << 17, PARALLEL_DIROPS = 1L << 18,
            HANDLE_KILLPRIV = 1L << 19, POSIX_ACL = 1L << 20, ABORT_ERROR = 1L << 21, MAX_PAGES = 1L << 22,
            CACHE_SYMLINKS = 1L << 23, NO_OPENDIR_SUPPORT = 1L << 24, EXPLICIT_INVAL_DATA = 1L << 25,
            MAP_ALIGNMENT = 1L << 26, SUBMOUNTS = 1L << 27, HANDLE_KILLPRIV_V2 = 1L << 28, SETXATTR_EXT = 1L << 29,
            INIT_EXT = 1L << 30, INIT_RESERVED = 1L << 31,
            // flags2 (INIT_EXT), as bits 32..63 of one 64-bit set
            CREATE_SUPP_GROUP = 1L << 34;

    /** Request extensions (fuse.h {@code fuse_ext_header}): their header, and the supplementary-group type. */
    public static final int EXT_HEADER = 8, EXT_GROUPS = 32;
    /** Where {@code fuse_in_header.total_extlen} (u16, in 8-byte units) sits. */
    public static final int IN_HEADER_TOTAL_EXTLEN = 36;

    public static final int GETATTR_FH = 1;
    public static final int FSYNC_FDATASYNC = 1;
    public static final int IOCTL_COMPAT = 1, IOCTL_UNRESTRICTED = 1 << 1, IOCTL_RETRY = 1 << 2, IOCTL_32BIT = 1 << 3,
            IOCTL_DIR = 1 << 4;

    // struct sizes
    public static final int IN_HEADER = 40, OUT_HEADER = 16, ATTR = 88, ENTRY_OUT = 40 + ATTR, ATTR_OUT = 16 + ATTR,
            SETUPMAPPING_IN = 40, REMOVEMAPPING_IN = 4, REMOVEMAPPING_ONE = 16,
            INIT_IN_COMPAT = 16, INIT_IN = 64, INIT_OUT = 64, GETATTR_IN = 16, SETATTR_IN = 88, FORGET_IN = 8,
            BATCH_FORGET_IN = 8, FORGET_ONE = 16, MKNOD_IN = 16, MKDIR_IN = 8, RENAME_IN = 8, RENAME2_IN = 16,
            LINK_IN = 8, OPEN_IN = 8, OPEN_OUT = 16, CREATE_IN = 16, RELEASE_IN = 24, FLUSH_IN = 24, READ_IN = 40,
            WRITE_IN = 40, WRITE_OUT = 8, FSYNC_IN = 16, STATFS_OUT = 80, SETXATTR_IN_COMPAT = 8, GETXATTR_IN = 8,
            GETXATTR_OUT = 8, ACCESS_IN = 8, INTERRUPT_IN = 8, FALLOCATE_IN = 32, LSEEK_IN = 24, LSEEK_OUT = 8,
            COPY_FILE_RANGE_IN = 56, IOCTL_IN = 32, IOCTL_OUT = 16, DIRENT = 24;

    /** Largest WRITE/READ payload negotiated ({@code max_write}, {@code max_pages} * 4 KiB). */
    public static final int MAX_BUFFER = 1 << 20;
    /** The most one COPY_FILE_RANGE copies (its u64 length is clamped), so one request cannot hold a worker long. */
    public static final long MAX_COPY_FILE_RANGE = 1L << 30;
    /** fuse.h: the mapping may be written; REMOVEMAPPING carries at most PAGE_SIZE / 16 ranges. */
    public static final long SETUPMAPPING_FLAG_WRITE = 1L;
    public static final int REMOVEMAPPING_MAX_ENTRY = 4096 / 16;
    /** A request longer than this is refused E2BIG (header + the biggest op struct + {@link #MAX_BUFFER}). */
    public static final int MAX_REQUEST = MAX_BUFFER + 4096;

    /** Rounds {@code n} up to a multiple of 8 (FUSE_DIRENT_ALIGN). */
    public static int align8(int n) { return (n + 7) & ~7; }
}
