package dev.jkrun.krun;

import jnr.ffi.LibraryLoader;

/** read(2)/write(2) for the tests, to use the eventfd krun_get_shutdown_eventfd hands out as a C program would. */
public interface TestLibC {
    long write(int fd, byte[] buf, long count);

    long read(int fd, byte[] buf, long count);

    TestLibC INSTANCE = LibraryLoader.create(TestLibC.class).load("c");

    /** Writes the 8-byte value {@code v} (an eventfd's unit), native byte order (little-endian here). */
    static long writeU64(int fd, long v) {
        byte[] b = new byte[8];
        for (int i = 0; i < 8; i++) {
            b[i] = (byte) (v >>> (8 * i));
        }
        return INSTANCE.write(fd, b, 8);
    }

    /** Reads an eventfd's 8-byte counter, or returns -1. */
    static long readU64(int fd) {
        byte[] b = new byte[8];
        if (INSTANCE.read(fd, b, 8) != 8) {
            return -1;
        }
        long v = 0;
        for (int i = 7; i >= 0; i--) {
            v = (v << 8) | (b[i] & 0xFF);
        }
        return v;
    }
}
