package dev.jkrun.devices.fs;

/** Linux errno values the file-system layer uses (asm-generic/errno*.h), beyond {@link dev.jkrun.libc.Errno}. */
public final class Errnos {
    public static final int EPERM = 1, ENOENT = 2, EIO = 5, ENXIO = 6, E2BIG = 7, EBADF = 9, EACCES = 13, EEXIST = 17,
            EXDEV = 18, ENOTDIR = 20, EISDIR = 21, EINVAL = 22, ENFILE = 23, EMFILE = 24, ENOTTY = 25, EFBIG = 27,
            ENOSPC = 28, EROFS = 30, ERANGE = 34, ENAMETOOLONG = 36, ENOSYS = 38, ENOTEMPTY = 39, ELOOP = 40,
            ENODATA = 61, EPROTO = 71, EOVERFLOW = 75, EOPNOTSUPP = 95;

    private Errnos() {}
}
