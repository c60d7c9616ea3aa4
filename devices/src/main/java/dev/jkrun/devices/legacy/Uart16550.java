package dev.jkrun.devices.legacy;

import dev.jkrun.devices.RateLimitedLog;
import dev.jkrun.devices.bus.BusDevice;

/**
 * The register model of a 16550A UART (National Semiconductor PC16550D data sheet), as Linux's 8250 driver probes and
 * drives it: RBR/THR, IER, IIR/FCR, LCR (DLAB and the divisor latch), MCR (loopback), LSR, MSR, SCR on 8 byte-wide
 * ports. Register it on the PIO bus at a COM port (0x3F8 ...) with length 8. No timing is modelled: a byte written to
 * THR leaves at once into a bounded transmit buffer the host drains ({@link #peekTx}/{@link #consumeTx}), and the
 * receive FIFO's character timeout counts as already expired (IIR says timeout whenever data below the trigger level
 * waits).
 *
 * <p>Bounded both ways: the receive FIFO holds 16 bytes (1 with FIFOs off) and the host offers input only into the
 * room {@link #rxRoom()} reports, so a guest that never reads keeps the host's bytes in the host's descriptor; the
 * transmit buffer holds {@link #TX_CAPACITY} bytes and LSR.THRE is clear while fewer than a FIFO's worth are free, so
 * a guest that writes faster than the host takes waits as on a slow line (bytes written past a full buffer are lost,
 * as on a real UART). Host input waits while the UART loops back.
 *
 * <p>The interrupt output ({@link #interruptPending()}) is a level, high while IIR reports a source; the owner drives
 * the ISA line from it (an edge-triggered IOAPIC pin sees its rising edges, as a real UART's INTR pin would give).
 * {@link Host#interruptChanged()} and the other callbacks run after this object's lock is released, so the owner may
 * read other UARTs sharing the line. OUT2 does not gate the interrupt (as in QEMU and Firecracker).
 *
 * <p>All guest accesses are 1 byte wide; other widths are ignored (reads leave the data as it was) and never throw.
 */
public final class Uart16550 implements BusDevice {
    /** Register offsets (DLAB = 0, except DLL/DLM). */
    public static final int RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5,
            MSR = 6, SCR = 7;
    public static final int IER_RDI = 0x01, IER_THRI = 0x02, IER_RLSI = 0x04, IER_MSI = 0x08;
    public static final int IIR_NO_INT = 0x01, IIR_MSI = 0x00, IIR_THRI = 0x02, IIR_RDI = 0x04, IIR_RLSI = 0x06,
            IIR_CTI = 0x0C, IIR_FIFOS = 0xC0;
    public static final int FCR_ENABLE = 0x01, FCR_CLEAR_RX = 0x02, FCR_CLEAR_TX = 0x04;
    public static final int LCR_DLAB = 0x80;
    public static final int MCR_DTR = 0x01, MCR_RTS = 0x02, MCR_OUT1 = 0x04, MCR_OUT2 = 0x08, MCR_LOOP = 0x10;
    public static final int LSR_DR = 0x01, LSR_OE = 0x02, LSR_THRE = 0x20, LSR_TEMT = 0x40;
    public static final int MSR_DCTS = 0x01, MSR_DDSR = 0x02, MSR_TERI = 0x04, MSR_DDCD = 0x08, MSR_CTS = 0x10,
            MSR_DSR = 0x20, MSR_RI = 0x40, MSR_DCD = 0x80;
    /** The 16550A's FIFO depth: receive FIFO size, and the burst a driver writes after seeing THRE. */
    public static final int FIFO_SIZE = 16;
    /** Bytes of guest output that wait for the host at most. */
    public static final int TX_CAPACITY = 4096;
    /** The host side of the line: carrier, data set ready and clear to send are up; no ring. */
    private static final int HOST_LINES = MSR_DCD | MSR_DSR | MSR_CTS;
    private static final int[] TRIGGER = {1, 4, 8, 14};

    /** What the UART tells its host side; every call happens outside the UART's lock, on the thread that caused it. */
    public interface Host {
        /** {@link #interruptPending()} may have changed. */
        void interruptChanged();

        /** Transmit bytes wait ({@link #peekTx}); called when the buffer stops being empty. */
        void txReady();

        /** {@link #rxRoom()} went from 0 to more (the guest read, the FIFO was cleared, loopback ended). */
        void rxRoomAvailable();
    }

    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(Uart16550.class);
    private final Host host;
    private final RateLimitedLog failures = new RateLimitedLog(LOG, "uart");

    // Guarded by this.
    private int ier, lcr, mcr, scr, fcr;
    private int divisor = 12; // 9600 baud, libkrun's default
    private boolean overrun, thrPending;
    private int msrDelta, msrLines;
    private final byte[] rx = new byte[FIFO_SIZE];
    private int rxHead, rxCount;
    private final byte[] tx = new byte[TX_CAPACITY];
    private int txHead, txCount;
    private long txDropped;
    private volatile boolean irq;

    public Uart16550(Host host) {
        this.host = host;
        this.lcr = 0x03; // 8 data bits
        this.mcr = MCR_OUT2;
        this.msrLines = lines();
    }

    /** Whether the interrupt output is high (IIR reports a source). Lock-free: a line shared by several reads it. */
    public boolean interruptPending() { return irq; }

    @Override
    public void read(long offset, byte[] data) {
        if (data.length != 1 || offset < 0 || offset > 7) {
            return;
        }
        int notify;
        synchronized (this) {
            int before = snapshot();
            data[0] = (byte) readRegister((int) offset);
            notify = changes(before);
        }
        tell(notify);
    }

    @Override
    public void write(long offset, byte[] data) {
        if (data.length != 1 || offset < 0 || offset > 7) {
            return;
        }
        int notify;
        synchronized (this) {
            int before = snapshot();
            writeRegister((int) offset, data[0] & 0xFF);
            notify = changes(before);
        }
        tell(notify);
    }

    /** Free bytes in the receive FIFO the host may fill now; 0 while looping back. */
    public synchronized int rxRoom() { return loopback() ? 0 : rxCapacity() - rxCount; }

    /**
     * Host input: takes at most {@link #rxRoom()} bytes of {@code b[off..off+len)} into the receive FIFO and returns
     * how many it took; the rest is the caller's to keep.
     */
    public int receive(byte[] b, int off, int len) {
        int notify, n;
        synchronized (this) {
            int before = snapshot();
            n = Math.max(0, Math.min(len, loopback() ? 0 : rxCapacity() - rxCount));
            for (int i = 0; i < n; i++) {
                pushRx(b[off + i]);
            }
            notify = changes(before);
        }
        tell(notify);
        return n;
    }

    /** Copies up to {@code len} waiting transmit bytes into {@code b}, oldest first, without removing them. */
    public synchronized int peekTx(byte[] b, int off, int len) {
        int n = Math.min(len, txCount);
        for (int i = 0; i < n; i++) {
            b[off + i] = tx[(txHead + i) % TX_CAPACITY];
        }
        return n;
    }

    /** Removes {@code n} transmit bytes the host took (after {@link #peekTx}). */
    public void consumeTx(int n) {
        int notify;
        synchronized (this) {
            int before = snapshot();
            boolean wasEmpty = thrEmpty();
            n = Math.max(0, Math.min(n, txCount));
            txHead = (txHead + n) % TX_CAPACITY;
            txCount -= n;
            if (!wasEmpty && thrEmpty() && (ier & IER_THRI) != 0) {
                thrPending = true; // the transmitter has room again: THRE interrupts, as when a FIFO empties
            }
            notify = changes(before);
        }
        tell(notify);
    }

    /** Transmit bytes waiting for the host. */
    public synchronized int txPending() { return txCount; }

    /** Bytes the guest wrote while the transmit buffer was full (lost). */
    public synchronized long txDropped() { return txDropped; }

    // ---- registers (under the lock) ------------------------------------------------------------------------------

    private int readRegister(int offset) {
        switch (offset) {
            case RBR:
                if (dlab()) {
                    return divisor & 0xFF;
                }
                return popRx();
            case IER:
                return dlab() ? divisor >>> 8 : ier;
            case IIR: {
                int id = interruptId();
                if (id == IIR_THRI) {
                    thrPending = false; // reading IIR with THRE as its source acknowledges it
                }
                return id | (fifos() ? IIR_FIFOS : 0);
            }
            case LCR:
                return lcr;
            case MCR:
                return mcr;
            case LSR: {
                int v = lsr();
                overrun = false;
                return v;
            }
            case MSR: {
                int v = msrLines | msrDelta;
                msrDelta = 0;
                return v;
            }
            default:
                return scr;
        }
    }

    private void writeRegister(int offset, int v) {
        switch (offset) {
            case THR:
                if (dlab()) {
                    divisor = divisor & 0xFF00 | v;
                } else {
                    transmit(v);
                }
                break;
            case IER:
                if (dlab()) {
                    divisor = divisor & 0x00FF | v << 8;
                } else {
                    int was = ier;
                    ier = v & 0x0F;
                    // Enabling THRI while THR is empty raises it even if IIR acknowledged it before (QEMU, Bochs;
                    // Linux's startup test for UART_BUG_THRE relies on it).
                    if ((ier & IER_THRI) == 0) {
                        thrPending = false;
                    } else if ((was & IER_THRI) == 0 && thrEmpty()) {
                        thrPending = true;
                    }
                }
                break;
            case FCR:
                writeFcr(v);
                break;
            case LCR:
                lcr = v;
                break;
            case MCR:
                mcr = v & 0x1F;
                updateLines();
                break;
            case SCR:
                scr = v;
                break;
            default:
                break; // LSR and MSR are read-only
        }
    }

    private void writeFcr(int v) {
        boolean enable = (v & FCR_ENABLE) != 0;
        if (enable != fifos()) {
            clearRx(); // switching the FIFOs on or off empties them
        }
        fcr = enable ? v & 0xC9 : 0; // enable, DMA mode, trigger level; the clear bits self-clear
        if (enable && (v & FCR_CLEAR_RX) != 0) {
            clearRx();
        }
        // FCR_CLEAR_TX: what THR took has already left the UART for the host; nothing to clear here.
    }

    private void transmit(int v) {
        if (loopback()) {
            if (rxCount < rxCapacity()) {
                pushRx((byte) v);
            } else {
                overrun = true;
            }
        } else if (txCount < TX_CAPACITY) {
            tx[(txHead + txCount) % TX_CAPACITY] = (byte) v;
            txCount++;
        } else {
            txDropped++;
        }
        thrPending = thrEmpty(); // THR was written: its interrupt is acknowledged, and comes again if it is still empty
    }

    private int lsr() {
        int v = 0;
        if (rxCount > 0) {
            v |= LSR_DR;
        }
        if (overrun) {
            v |= LSR_OE;
        }
        if (thrEmpty()) {
            v |= LSR_THRE;
        }
        if (txCount == 0 || loopback()) {
            v |= LSR_TEMT;
        }
        return v;
    }

    /** IIR's interrupt id, by the 16550's priorities. */
    private int interruptId() {
        if ((ier & IER_RLSI) != 0 && overrun) {
            return IIR_RLSI;
        }
        if ((ier & IER_RDI) != 0 && rxCount > 0) {
            return fifos() && rxCount < TRIGGER[fcr >>> 6] ? IIR_CTI : IIR_RDI;
        }
        if ((ier & IER_THRI) != 0 && thrPending) {
            return IIR_THRI;
        }
        if ((ier & IER_MSI) != 0 && msrDelta != 0) {
            return IIR_MSI;
        }
        return IIR_NO_INT;
    }

    /** The modem status lines: the host's, or in loopback MCR's outputs (RTS→CTS, DTR→DSR, OUT1→RI, OUT2→DCD). */
    private int lines() {
        if (!loopback()) {
            return HOST_LINES;
        }
        int v = 0;
        v |= (mcr & MCR_RTS) != 0 ? MSR_CTS : 0;
        v |= (mcr & MCR_DTR) != 0 ? MSR_DSR : 0;
        v |= (mcr & MCR_OUT1) != 0 ? MSR_RI : 0;
        v |= (mcr & MCR_OUT2) != 0 ? MSR_DCD : 0;
        return v;
    }

    private void updateLines() {
        int now = lines(), changed = now ^ msrLines;
        msrDelta |= (changed & MSR_CTS) != 0 ? MSR_DCTS : 0;
        msrDelta |= (changed & MSR_DSR) != 0 ? MSR_DDSR : 0;
        msrDelta |= (changed & MSR_DCD) != 0 ? MSR_DDCD : 0;
        msrDelta |= (msrLines & MSR_RI) != 0 && (now & MSR_RI) == 0 ? MSR_TERI : 0; // trailing edge only
        msrLines = now;
    }

    private boolean dlab() { return (lcr & LCR_DLAB) != 0; }

    private boolean fifos() { return (fcr & FCR_ENABLE) != 0; }

    private boolean loopback() { return (mcr & MCR_LOOP) != 0; }

    private int rxCapacity() { return fifos() ? FIFO_SIZE : 1; }

    /** THRE: room for a FIFO's worth of bytes, which a driver writes without looking again. */
    private boolean thrEmpty() { return loopback() || txCount <= TX_CAPACITY - FIFO_SIZE; }

    private void pushRx(byte b) {
        rx[(rxHead + rxCount) % FIFO_SIZE] = b;
        rxCount++;
    }

    private int popRx() {
        if (rxCount == 0) {
            return 0;
        }
        int b = rx[rxHead] & 0xFF;
        rxHead = (rxHead + 1) % FIFO_SIZE;
        rxCount--;
        return b;
    }

    private void clearRx() {
        rxHead = 0;
        rxCount = 0;
    }

    // ---- telling the host, outside the lock ------------------------------------------------------------------------

    private static final int TELL_IRQ = 1, TELL_TX = 2, TELL_RX_ROOM = 4;

    /** The state the callbacks depend on: [irq, tx non-empty, rx room > 0]. Under the lock. */
    private int snapshot() {
        return (interruptId() != IIR_NO_INT ? TELL_IRQ : 0) | (txCount > 0 ? TELL_TX : 0)
                | (!loopback() && rxCount < rxCapacity() ? TELL_RX_ROOM : 0);
    }

    /** Which callbacks to make for the change from {@code before}; updates the interrupt output. Under the lock. */
    private int changes(int before) {
        int after = snapshot();
        irq = (after & TELL_IRQ) != 0;
        int tell = (before ^ after) & TELL_IRQ;
        tell |= after & ~before & (TELL_TX | TELL_RX_ROOM); // rising only
        return tell;
    }

    private void tell(int what) {
        if (what == 0) {
            return;
        }
        try {
            if ((what & TELL_IRQ) != 0) {
                host.interruptChanged();
            }
            if ((what & TELL_TX) != 0) {
                host.txReady();
            }
            if ((what & TELL_RX_ROOM) != 0) {
                host.rxRoomAvailable();
            }
        } catch (RuntimeException e) {
            failures.warn("uart: host callback failed: {}", e.toString()); // never into the vCPU thread
        }
    }
}
