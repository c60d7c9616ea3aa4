package dev.jkrun.devices.legacy;

import dev.jkrun.devices.bus.BusDevice;
import java.util.function.LongSupplier;

/**
 * The ARM PrimeCell PL031 real-time clock (ARM DDI 0224), what aarch64 Linux reads the wall clock from at boot
 * (drivers/rtc/rtc-pl031.c): RTCDR counts seconds since the epoch from the host's clock plus whatever offset the
 * guest loaded through RTCLR; the match register is kept but raises no interrupt (libkrun's PL031 raises none
 * either). The PrimeCell id registers let the AMBA bus probe it. 32-bit registers; other widths read as zero and
 * are ignored, as is everything outside the registers.
 */
public final class Pl031 implements BusDevice {
    static final int DR = 0x00, MR = 0x04, LR = 0x08, CR = 0x0C, IMSC = 0x10, RIS = 0x14, MIS = 0x18, ICR = 0x1C;
    /** PeriphID0..3 at 0xFE0 (part 0x031, designer ARM 0x41, revision 1), PCellID0..3 at 0xFF0 (0xB105F00D). */
    private static final int[] IDS = {0x31, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1};

    private final LongSupplier nowSeconds;
    private long offset;
    private int match, mask;

    public Pl031() { this(() -> System.currentTimeMillis() / 1000); }

    /** With {@code nowSeconds} as the host's clock (seconds since the epoch). */
    public Pl031(LongSupplier nowSeconds) { this.nowSeconds = nowSeconds; }

    @Override
    public synchronized void read(long at, byte[] data) {
        if (data.length != 4) {
            return;
        }
        int v = switch ((int) Math.min(at, 0x1000)) {
            case DR -> (int) (nowSeconds.getAsLong() + offset);
            case MR -> match;
            case LR -> (int) (nowSeconds.getAsLong() + offset);
            case CR -> 1; // always started
            case IMSC -> mask;
            case RIS, MIS -> 0;
            default -> at >= 0xFE0 && at <= 0xFFC && at % 4 == 0 ? IDS[(int) (at - 0xFE0) / 4] : 0;
        };
        data[0] = (byte) v;
        data[1] = (byte) (v >>> 8);
        data[2] = (byte) (v >>> 16);
        data[3] = (byte) (v >>> 24);
    }

    @Override
    public synchronized void write(long at, byte[] data) {
        if (data.length != 4) {
            return;
        }
        long v = (data[0] & 0xFFL) | (data[1] & 0xFFL) << 8 | (data[2] & 0xFFL) << 16 | (data[3] & 0xFFL) << 24;
        switch ((int) Math.min(at, 0x1000)) {
            case MR -> match = (int) v;
            case LR -> offset = v - nowSeconds.getAsLong(); // the guest sets the clock: keep the difference
            case IMSC -> mask = (int) v & 1;
            default -> { } // CR (cannot be stopped), ICR (nothing pending), ids, and the rest
        }
    }
}
