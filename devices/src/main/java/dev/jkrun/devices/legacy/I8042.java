package dev.jkrun.devices.legacy;

import dev.jkrun.devices.bus.BusDevice;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayDeque;

/**
 * A minimal i8042 keyboard controller on PIO 0x60-0x64 (register it at base 0x60, length 5): data port at offset 0,
 * status/command port at offset 4. Its real job is the x86 reboot path: the guest writes the "pulse reset line"
 * command 0xFE to port 0x64, and {@code resetRequested} runs (the VMM stops the VM).
 *
 * <p>Also handled, as libkrun does: 0x20/0x60 read/write the control byte, 0xD0/0xD1 read/write the output port;
 * replies go through a 16-byte output buffer read at offset 0.
 */
public final class I8042 implements BusDevice {
    private static final Logger LOG = LoggerFactory.getLogger(I8042.class);

    public static final int DATA = 0, COMMAND = 4;
    public static final int CMD_READ_CTR = 0x20, CMD_WRITE_CTR = 0x60, CMD_READ_OUTP = 0xD0, CMD_WRITE_OUTP = 0xD1,
            CMD_RESET_CPU = 0xFE;
    /** Status: output buffer full (bit 0); system flag / keyboard enabled (bit 4 = 0x10). */
    public static final int SB_OUT_FULL = 0x01, SB_KBD_ENABLED = 0x10;
    private static final int OUT_BUFFER_SIZE = 16;

    private final Runnable resetRequested;
    private final ArrayDeque<Integer> out = new ArrayDeque<>();
    private int control = 0x01 | 0x04; // keyboard interrupt enabled, system flag
    private int outputPort = 0x01;     // A20 gate... bit 0 = not in reset
    private int pendingCommand;

    public I8042(Runnable resetRequested) { this.resetRequested = resetRequested; }

    @Override
    public synchronized void read(long offset, byte[] data) {
        if (data.length != 1) {
            return;
        }
        if (offset == COMMAND) {
            data[0] = (byte) (SB_KBD_ENABLED | (out.isEmpty() ? 0 : SB_OUT_FULL));
        } else if (offset == DATA) {
            Integer b = out.poll();
            data[0] = b == null ? 0 : b.byteValue();
        }
    }

    @Override
    public synchronized void write(long offset, byte[] data) {
        if (data.length != 1) {
            return;
        }
        int v = data[0] & 0xFF;
        if (offset == COMMAND) {
            pendingCommand = 0;
            switch (v) {
                case CMD_RESET_CPU -> {
                    LOG.debug("i8042: guest asked for a CPU reset");
                    try {
                        resetRequested.run();
                    } catch (RuntimeException e) {
                        LOG.warn("i8042: reset callback failed", e);
                    }
                }
                case CMD_READ_CTR -> push(control);
                case CMD_READ_OUTP -> push(outputPort);
                case CMD_WRITE_CTR, CMD_WRITE_OUTP -> pendingCommand = v;
                default -> LOG.debug("i8042: command 0x{} ignored", Integer.toHexString(v));
            }
        } else if (offset == DATA) {
            switch (pendingCommand) {
                case CMD_WRITE_CTR -> control = v;
                case CMD_WRITE_OUTP -> outputPort = v;
                default -> LOG.debug("i8042: data 0x{} ignored", Integer.toHexString(v));
            }
            pendingCommand = 0;
        }
    }

    private void push(int b) {
        if (out.size() < OUT_BUFFER_SIZE) {
            out.add(b & 0xFF);
        }
    }
}
