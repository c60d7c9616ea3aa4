package dev.jkrun.devices.legacy;

import static dev.jkrun.devices.legacy.Uart16550.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * The 16550A register model against a fake interrupt line (a level that follows {@link Uart16550#interruptPending()}
 * through the host callbacks, counting rising edges as an edge-triggered IOAPIC pin would see them), driven the way
 * Linux's 8250 driver probes and runs a port.
 */
class Uart16550Test {
    /** The host side: the line, and the callbacks seen. */
    static final class FakeHost implements Uart16550.Host {
        Uart16550 uart;
        boolean line;
        int edges, txReady, rxRoom;

        @Override
        public void interruptChanged() {
            boolean now = uart.interruptPending();
            if (now && !line) {
                edges++;
            }
            line = now;
        }

        @Override
        public void txReady() { txReady++; }

        @Override
        public void rxRoomAvailable() { rxRoom++; }
    }

    private final FakeHost host = new FakeHost();
    private final Uart16550 u = new Uart16550(host);

    {
        host.uart = u;
    }

    private int in(int reg) {
        byte[] b = {0};
        u.read(reg, b);
        return b[0] & 0xFF;
    }

    private void out(int reg, int v) { u.write(reg, new byte[] {(byte) v}); }

    private String tx() {
        byte[] b = new byte[TX_CAPACITY];
        int n = u.peekTx(b, 0, b.length);
        u.consumeTx(n);
        return new String(b, 0, n, StandardCharsets.ISO_8859_1);
    }

    @Test
    void linuxAutoconfigFindsA16550A() {
        // the IER scratch test
        out(IER, 0);
        assertEquals(0, in(IER) & 0x0F);
        out(IER, 0x0F);
        assertEquals(0x0F, in(IER) & 0x0F);
        out(IER, 0);
        // the loopback test: MCR = LOOP | OUT2 | RTS reads back CTS and DCD
        out(MCR, MCR_LOOP | 0x0A);
        assertEquals(0x90, in(MSR) & 0xF0);
        out(MCR, MCR_OUT2);
        // FIFO detection: IIR's top bits after enabling the FIFOs say 16550A
        out(FCR, FCR_ENABLE);
        assertEquals(3, in(IIR) >> 6);
        // no EFR behind LCR = 0xBF (reads IIR, non-zero), IER bit 6 (XScale UUE) not writable
        out(LCR, 0xBF);
        assertTrue(in(IIR) != 0);
        out(LCR, 0);
        out(IER, 0x40);
        assertEquals(0, in(IER));
        out(SCR, 0xA5);
        assertEquals(0xA5, in(SCR));
    }

    @Test
    void divisorLatchIsBehindDlabAndNotTransmitted() {
        out(LCR, LCR_DLAB | 0x03);
        out(DLL, 0x01);
        out(DLM, 0x00);
        assertEquals(0x01, in(DLL));
        assertEquals(0x00, in(DLM));
        out(LCR, 0x03);
        assertEquals("", tx(), "divisor bytes are not characters");
        assertEquals(0, in(IER), "IER kept apart from DLM");
        out(THR, 'A');
        assertEquals("A", tx());
    }

    @Test
    void transmitGoesToTheHostAndThreInterruptBehavesAsLinuxExpects() {
        assertEquals(LSR_THRE | LSR_TEMT, in(LSR));
        out(THR, 'h');
        assertEquals(1, host.txReady, "the host is told once the buffer stops being empty");
        assertEquals(LSR_THRE, in(LSR), "THRE: room; not TEMT: a byte waits for the host");
        out(THR, 'i');
        assertEquals(1, host.txReady);
        assertEquals("hi", tx());
        assertEquals(LSR_THRE | LSR_TEMT, in(LSR));

        // serial8250_do_startup's THRE test: enabling THRI raises it, IIR acknowledges it, enabling again re-raises
        out(IER, IER_THRI);
        assertTrue(host.line);
        assertEquals(1, host.edges);
        assertEquals(IIR_THRI, in(IIR) & 0x0F);
        assertFalse(host.line, "IIR read acknowledged THRE");
        assertEquals(IIR_NO_INT, in(IIR) & 0x0F);
        out(IER, 0);
        out(IER, IER_THRI);
        assertTrue(host.line);
        assertEquals(2, host.edges);
        // a THR write acknowledges and, the buffer still having room, raises it again (the line stays up)
        out(THR, 'x');
        assertTrue(host.line);
        assertEquals(IIR_THRI, in(IIR) & 0x0F);
        out(IER, 0);
        assertFalse(host.line);
    }

    @Test
    void aFullTransmitBufferClearsThreUntilTheHostTakesBytes() {
        out(IER, IER_THRI);
        in(IIR);
        int written = 0;
        while ((in(LSR) & LSR_THRE) != 0) {
            for (int i = 0; i < FIFO_SIZE; i++) { // a driver's blind burst after THRE
                out(THR, 'a' + i);
                written++;
            }
        }
        assertEquals(TX_CAPACITY - FIFO_SIZE + FIFO_SIZE, written, "a FIFO's burst always fits");
        assertEquals(0, u.txDropped());
        assertFalse(host.line, "no THRE interrupt while full");
        int edges = host.edges;
        for (int i = 0; i < 10; i++) {
            out(THR, '!');
        }
        assertEquals(10, u.txDropped(), "bytes past the bound are lost, never buffered");
        assertEquals(TX_CAPACITY, u.txPending());
        byte[] b = new byte[FIFO_SIZE];
        assertEquals(FIFO_SIZE, u.peekTx(b, 0, b.length));
        u.consumeTx(FIFO_SIZE);
        assertTrue(host.line, "room again: THRE raises the interrupt");
        assertEquals(edges + 1, host.edges);
        assertEquals(TX_CAPACITY - FIFO_SIZE, u.txPending());
    }

    @Test
    void receiveFifoIsBoundedAndInterruptsByTriggerLevel() {
        out(FCR, FCR_ENABLE | FCR_CLEAR_RX | 0x80); // trigger level 8
        out(IER, IER_RDI);
        assertEquals(FIFO_SIZE, u.rxRoom());
        byte[] data = "0123456789abcdefXYZ".getBytes(StandardCharsets.US_ASCII);
        assertEquals(3, u.receive(data, 0, 3));
        assertTrue(host.line);
        assertEquals(IIR_CTI | IIR_FIFOS, in(IIR), "below the trigger level: character timeout");
        assertEquals(13, u.receive(data, 3, data.length - 3), "only the room is taken");
        assertEquals(0, u.rxRoom());
        assertEquals(0, u.receive(data, 16, 3));
        assertEquals(IIR_RDI | IIR_FIFOS, in(IIR));
        assertEquals(LSR_DR, in(LSR) & (LSR_DR | LSR_OE));
        int roomCalls = host.rxRoom;
        byte[] got = new byte[16];
        for (int i = 0; i < 16; i++) {
            got[i] = (byte) in(RBR);
        }
        assertEquals(roomCalls + 1, host.rxRoom, "the host hears once that room came back");
        assertArrayEquals(Arrays.copyOf(data, 16), got);
        assertEquals(0, in(LSR) & LSR_DR);
        assertFalse(host.line);
        assertEquals(0, in(RBR), "an empty FIFO reads 0");
    }

    @Test
    void withoutFifosTheReceiverHoldsOneByte() {
        byte[] data = {'a', 'b'};
        assertEquals(1, u.receive(data, 0, 2));
        assertEquals(0, u.rxRoom());
        out(IER, IER_RDI);
        assertEquals(IIR_RDI, in(IIR));
        assertEquals('a', in(RBR));
        assertEquals(1, u.rxRoom());
    }

    @Test
    void loopbackReturnsTransmittedBytesAndHoldsHostInput() {
        out(FCR, FCR_ENABLE);
        out(MCR, MCR_LOOP);
        assertEquals(0, u.rxRoom(), "host input waits while looping back");
        for (int i = 0; i < FIFO_SIZE + 2; i++) {
            out(THR, 'a' + i);
        }
        assertEquals("", tx(), "nothing reaches the host");
        out(IER, IER_RLSI);
        assertEquals(IIR_RLSI | IIR_FIFOS, in(IIR), "overrun is a line status interrupt");
        assertEquals(LSR_DR | LSR_OE, in(LSR) & (LSR_DR | LSR_OE));
        assertEquals(0, in(LSR) & LSR_OE, "reading LSR clears OE");
        assertEquals('a', in(RBR));
        out(IER, 0);
        int room = host.rxRoom;
        out(FCR, FCR_ENABLE | FCR_CLEAR_RX);
        out(MCR, 0);
        assertEquals(FIFO_SIZE, u.rxRoom());
        assertTrue(host.rxRoom > room);
    }

    @Test
    void modemStatusDeltasInLoopback() {
        out(MCR, MCR_LOOP);
        in(MSR);
        out(IER, IER_MSI);
        out(MCR, MCR_LOOP | MCR_RTS | MCR_OUT1);
        assertTrue(host.line);
        assertEquals(IIR_MSI, in(IIR));
        assertEquals(MSR_CTS | MSR_RI | MSR_DCTS, in(MSR));
        assertFalse(host.line, "reading MSR clears the deltas");
        out(MCR, MCR_LOOP | MCR_RTS);
        assertEquals(MSR_CTS | MSR_TERI, in(MSR), "RI's trailing edge");
        out(MCR, 0);
        assertEquals(MSR_DCD | MSR_DSR | MSR_CTS | MSR_DDSR | MSR_DDCD, in(MSR), "leaving loopback: the host's lines, DSR and DCD changed");
    }

    @Test
    void priorityOrder() {
        out(FCR, FCR_ENABLE);
        out(IER, 0x0F);
        u.receive(new byte[] {'z'}, 0, 1);
        assertEquals(IIR_RDI, in(IIR) & 0x0F, "received data (trigger level 1) before THRE");
        in(RBR);
        assertEquals(IIR_THRI, in(IIR) & 0x0F);
        assertEquals(IIR_NO_INT, in(IIR) & 0x0F);
    }

    @Test
    void otherWidthsAndOffsetsAreIgnored() {
        byte[] wide = {1, 2, 3, 4};
        u.write(THR, wide);
        u.read(LSR, wide);
        assertArrayEquals(new byte[] {1, 2, 3, 4}, wide);
        u.write(8, new byte[] {1});
        u.write(-1, new byte[] {1});
        u.read(1L << 40, new byte[1]);
        assertEquals(0, u.txPending());
    }
}
