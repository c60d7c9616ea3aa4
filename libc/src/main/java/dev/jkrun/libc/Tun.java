package dev.jkrun.libc;


/**
 * Linux TUN/TAP ({@code <linux/if_tun.h>}): a tap device opened on {@code /dev/net/tun}, non-blocking and
 * close-on-exec, as libkrun's tap backend opens it (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, a 12-byte vnet header).
 */
public final class Tun {
    /** _IOW('T', 202, int), _IOW('T', 208, unsigned int), _IOW('T', 216, int). */
    static final long TUNSETIFF = 0x400454CAL, TUNSETOFFLOAD = 0x400454D0L, TUNSETVNETHDRSZ = 0x400454D8L;
    static final short IFF_TAP = 0x0002, IFF_NO_PI = 0x1000, IFF_VNET_HDR = 0x4000;
    /** TUNSETOFFLOAD bits. */
    public static final int TUN_F_CSUM = 0x01, TUN_F_TSO4 = 0x02, TUN_F_TSO6 = 0x04, TUN_F_UFO = 0x10;
    /** IFNAMSIZ less the NUL. */
    public static final int MAX_NAME = 15;

    private Tun() {}

    /**
     * Attaches to the tap device {@code name} (created when it does not exist and the caller may create it), with a
     * virtio-net header of {@code vnetHeaderSize} bytes before every frame.
     */
    public static FileDescriptor openTap(String name, int vnetHeaderSize) {
        byte[] n = name.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        if (n.length == 0 || n.length > MAX_NAME || name.indexOf('/') >= 0 || name.indexOf('\0') >= 0) {
            throw new IllegalArgumentException("tap name '" + name + "': 1 to " + MAX_NAME + " characters");
        }
        FileDescriptor fd = FileDescriptor.open("/dev/net/tun", FileDescriptor.O_RDWR | FileDescriptor.O_NONBLOCK
                | FileDescriptor.O_CLOEXEC);
        try {
            NativeBuffer ifr = Ioctl.allocate(40); // struct ifreq: char ifr_name[16]; short ifr_flags; ...
            ifr.put(0, n, 0, n.length);
            ifr.putShort(16, (short) (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR));
            Ioctl.call(fd, "TUNSETIFF(" + name + ")", TUNSETIFF, ifr);
            NativeBuffer size = Ioctl.allocate(4);
            size.putInt(0, vnetHeaderSize);
            Ioctl.call(fd, "TUNSETVNETHDRSZ", TUNSETVNETHDRSZ, size);
            return fd;
        } catch (RuntimeException e) {
            fd.close();
            throw e;
        }
    }

    /** The offloads the kernel may hand us (TUN_F_* bits): what the guest can take, since frames pass through. */
    public static void setOffload(FileDescriptor fd, int flags) {
        Ioctl.call(fd, "TUNSETOFFLOAD", TUNSETOFFLOAD, flags);
    }
}
