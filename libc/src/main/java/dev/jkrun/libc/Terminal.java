package dev.jkrun.libc;

import java.lang.ref.Reference;


/** Terminal control for the console: isatty, raw mode with restore, window size. */
public final class Terminal {
    private static final int TCSANOW = 0;
    private static final long TIOCGWINSZ = 0x5413;
    private static final int TERMIOS_BYTES = 60; // struct termios on x86_64 glibc
    private static final int C_LFLAG = 12, ISIG = 0x1;

    /** asm-generic/ioctls.h: _IOW('T', 0x31, int) and _IOR('T', 0x30, unsigned int); fcntl.h's O_NOCTTY. */
    private static final long TIOCSPTLCK = 0x40045431L, TIOCGPTN = 0x80045430L;
    private static final int O_NOCTTY = 0x100;

    private Terminal() {}

    /** A pseudo-terminal pair: what is written to one end is read from the other. Closing it closes both. */
    public record Pty(FileDescriptor master, FileDescriptor slave) implements AutoCloseable {
        @Override
        public void close() {
            slave.close();
            master.close();
        }
    }

    /** Opens a new pseudo-terminal (posix_openpt, unlockpt, ptsname, as openpty(3) does), neither end our tty. */
    public static Pty openPty() {
        FileDescriptor master = FileDescriptor.open("/dev/ptmx", FileDescriptor.O_RDWR | FileDescriptor.O_CLOEXEC | O_NOCTTY);
        try {
            NativeBuffer arg = Ioctl.allocate(4);
            arg.putInt(0, 0);
            Ioctl.call(master, "TIOCSPTLCK", TIOCSPTLCK, arg);
            Ioctl.call(master, "TIOCGPTN", TIOCGPTN, arg);
            FileDescriptor slave = FileDescriptor.open("/dev/pts/" + Integer.toUnsignedString(arg.getInt(0)),
                    FileDescriptor.O_RDWR | FileDescriptor.O_CLOEXEC | O_NOCTTY);
            return new Pty(master, slave);
        } catch (RuntimeException e) {
            master.close();
            throw e;
        }
    }

    public static boolean isTerminal(int fd) { return Native.libc().isatty(fd) == 1; }

    /** Columns and rows of the terminal on {@code fd}, or 0x0 when it is not one. */
    public record Size(int cols, int rows) {}

    public static Size size(int fd) {
        NativeBuffer ws = Ioctl.allocate(8);
        if (Native.libc().ioctl(fd, TIOCGWINSZ, ws.address()) < 0) {
            return new Size(0, 0);
        }
        return new Size(Short.toUnsignedInt(ws.getShort(2)), Short.toUnsignedInt(ws.getShort(0)));
    }

    /** A saved terminal mode; {@link #close()} puts it back (idempotent). */
    public static final class RawMode implements AutoCloseable {
        private final int fd;
        private final byte[] saved;
        private boolean restored;

        private RawMode(int fd, byte[] saved) {
            this.fd = fd;
            this.saved = saved;
        }

        @Override
        public synchronized void close() {
            if (!restored) {
                restored = true;
                NativeBuffer t = Ioctl.allocate(TERMIOS_BYTES);
                t.put(0, saved, 0, saved.length);
                Native.libc().tcsetattr(fd, TCSANOW, t.address());
                Reference.reachabilityFence(t);
            }
        }
    }

    /** Puts {@code fd} into raw mode (cfmakeraw), keeping ISIG when {@code keepSignals}. */
    public static RawMode enterRaw(int fd, boolean keepSignals) {
        NativeBuffer t = Ioctl.allocate(TERMIOS_BYTES);
        if (Native.libc().tcgetattr(fd, t.address()) != 0) {
            throw new NativeCallException("tcgetattr", Native.errno());
        }
        byte[] saved = new byte[TERMIOS_BYTES];
        t.get(0, saved, 0, saved.length);
        Native.libc().cfmakeraw(t.address());
        if (keepSignals) {
            t.putInt(C_LFLAG, t.getInt(C_LFLAG) | ISIG);
        }
        int rc = Native.libc().tcsetattr(fd, TCSANOW, t.address());
        Reference.reachabilityFence(t);
        if (rc != 0) {
            throw new NativeCallException("tcsetattr", Native.errno());
        }
        return new RawMode(fd, saved);
    }
}
