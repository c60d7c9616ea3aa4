package dev.jkrun.devices.legacy;

import dev.jkrun.devices.bus.BusDevice;

/**
 * The CMOS RAM at PIO 0x70 (index, masked with 0x7F; bit 7 is the NMI mask) and 0x71 (data); register at base
 * 0x70 with length 2 (or up to 8: odd offsets are data). Only the index is writable. All 128 bytes read zero except
 * the firmware's memory-size fields: 0x34/0x35 = (RAM below 4 GiB - 16 MiB) / 64 KiB capped at 0xFFFF, and
 * 0x5B..0x5D = (RAM above 4 GiB) / 64 KiB as 24 bits.
 */
public final class Cmos implements BusDevice {
    private static final long MIB16 = 16L << 20, KIB64 = 64L << 10;

    private final byte[] data = new byte[128];
    private int index;

    /** @param memBelow4g bytes of RAM below 4 GiB; @param memAbove4g bytes of RAM above 4 GiB */
    public Cmos(long memBelow4g, long memAbove4g) {
        long low = memBelow4g > MIB16 ? Math.min((memBelow4g - MIB16) / KIB64, 0xFFFF) : 0;
        data[0x34] = (byte) low;
        data[0x35] = (byte) (low >>> 8);
        long high = Math.min(Math.max(memAbove4g, 0) / KIB64, 0xFF_FFFF);
        data[0x5B] = (byte) high;
        data[0x5C] = (byte) (high >>> 8);
        data[0x5D] = (byte) (high >>> 16);
    }

    @Override
    public synchronized void read(long offset, byte[] out) {
        if (out.length != 1) {
            return;
        }
        out[0] = (offset & 1) == 0 ? (byte) index : data[index];
    }

    @Override
    public synchronized void write(long offset, byte[] in) {
        if (in.length == 1 && (offset & 1) == 0) {
            index = in[0] & 0x7F;
        }
    }
}
