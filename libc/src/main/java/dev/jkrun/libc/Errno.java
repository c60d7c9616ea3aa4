package dev.jkrun.libc;

/** Linux errno values jkrun reacts to, and their names for messages. */
public final class Errno {
    public static final int EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, EBADF = 9, EAGAIN = 11, ENOMEM = 12,
            EACCES = 13, EFAULT = 14, EEXIST = 17, ENODEV = 19, EINVAL = 22, ENOSPC = 28, ENOSYS = 38,
            ENOTSUP = 95, ETIMEDOUT = 110;

    private Errno() {}

    public static String name(int errno) {
        return switch (errno) {
            case EPERM -> "EPERM"; case ENOENT -> "ENOENT"; case EINTR -> "EINTR"; case EIO -> "EIO";
            case EBADF -> "EBADF"; case EAGAIN -> "EAGAIN"; case ENOMEM -> "ENOMEM"; case EACCES -> "EACCES";
            case EFAULT -> "EFAULT"; case EEXIST -> "EEXIST"; case ENODEV -> "ENODEV"; case EINVAL -> "EINVAL";
            case ENOSPC -> "ENOSPC"; case ENOSYS -> "ENOSYS"; case ENOTSUP -> "ENOTSUP"; case ETIMEDOUT -> "ETIMEDOUT";
            default -> "errno " + errno;
        };
    }

    public static String describe(int errno) {
        try {
            return Native.libc().strerror(errno);
        } catch (Throwable t) {
            return "unknown";
        }
    }
}
