package dev.jkrun.devices.legacy;

import dev.jkrun.devices.bus.BusDevice;

import java.util.function.IntConsumer;

/**
 * A write-only UART "sink" for early kernel output on COM1 (register at 0x3F8, length 8). Bytes written to THR
 * (offset 0) go to {@code sink} (the VMM assembles lines and logs them). LSR (offset 5) always reads 0x60
 * (transmitter holding register and shift register empty), so a guest polling it before each byte never waits;
 * LCR (offset 3) is kept so divisor-latch writes (DLAB set) are not taken for characters; every other
 * register reads 0 and ignores writes.
 */
public final class DebugPort implements BusDevice {
    public static final int THR = 0, LCR = 3, LSR = 5;
    private static final int LCR_DLAB = 0x80;
    public static final int LSR_THR_EMPTY = 0x20, LSR_TX_EMPTY = 0x40;

    private final IntConsumer sink;
    private volatile int lcr;

    public DebugPort(IntConsumer sink) { this.sink = sink; }

    @Override
    public void read(long offset, byte[] data) {
        if (data.length == 1 && offset == LSR) {
            data[0] = (byte) (LSR_THR_EMPTY | LSR_TX_EMPTY);
        } else if (data.length == 1 && offset == LCR) {
            data[0] = (byte) lcr;
        }
    }

    @Override
    public void write(long offset, byte[] data) {
        if (offset == LCR && data.length >= 1) {
            lcr = data[0] & 0xFF;
            return;
        }
        // With DLAB set, offset 0 is the divisor latch (8250 setup), not a character.
        if (offset == THR && data.length >= 1 && (lcr & LCR_DLAB) == 0) {
            try {
                sink.accept(data[0] & 0xFF);
            } catch (RuntimeException ignored) {
                // A failing sink must not reach the vCPU thread.
            }
        }
    }
}
