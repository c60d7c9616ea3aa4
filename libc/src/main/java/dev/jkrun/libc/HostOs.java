package dev.jkrun.libc;

/**
 * The few numbers this package needs that macOS gives differently from Linux, where the code on the macOS path
 * (Hypervisor.framework, pipes as event descriptors, poll(2)) uses them. The rest of this package speaks Linux's ABI
 * (errno numbers, open flags, struct stat): porting it to macOS is not done (README.md, "macOS").
 */
final class HostOs {
    private HostOs() {}

    static final boolean MACOS = System.getProperty("os.name", "").startsWith("Mac");

    /** EAGAIN: 11 on Linux, 35 on macOS (sys/errno.h). */
    static final int EAGAIN = MACOS ? 35 : Errno.EAGAIN;
    /** O_NONBLOCK: 0x800 on Linux, 0x4 on macOS (sys/fcntl.h). */
    static final int O_NONBLOCK = MACOS ? 0x4 : 0x800;
    /** mmap's MAP_ANONYMOUS (MAP_ANON) and MAP_NORESERVE: 0x20 and 0x4000 on Linux, 0x1000 and 0x40 on macOS. */
    static final int MAP_ANONYMOUS = MACOS ? 0x1000 : 0x20, MAP_NORESERVE = MACOS ? 0x40 : 0x4000;
}
