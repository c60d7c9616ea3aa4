package dev.jkrun.devices.legacy;

import static dev.jkrun.devices.legacy.Uart16550.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.ByteArrayOutputStream;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A hostile guest's register accesses (any offset, any width, any value, in any order) interleaved with the host's
 * input and output, against the 16550A model. Oracle: nothing throws; the receive FIFO and the transmit buffer stay
 * within their bounds whatever the guest does; the interrupt line the callbacks drive always equals the model's
 * output; IIR only ever reads a 16550 interrupt id; LSR.THRE says exactly whether a FIFO's burst fits; and what
 * reaches the host is exactly the THR writes made with DLAB clear and loopback off, in order, less the ones counted
 * as dropped. Replayed from the committed inputs by every test run; fuzzed with {@code fuzz/run Uart16550FuzzTest};
 * {@link #randomPokesKeepTheModelConsistent} runs a fixed pseudo-random sequence as a plain test.
 */
class Uart16550FuzzTest {
    /** One run: the model, its fake line, a shadow of LCR/MCR, and the byte streams. */
    static final class Run {
        final Uart16550Test.FakeHost host = new Uart16550Test.FakeHost();
        final Uart16550 u = new Uart16550(host);
        final ByteArrayOutputStream expectTx = new ByteArrayOutputStream(), gotTx = new ByteArrayOutputStream();
        int lcr = 0x03, mcr = MCR_OUT2;
        long dropped;

        Run() { host.uart = u; }

        void write(long offset, byte[] data) {
            if (data.length == 1 && offset == LCR) {
                lcr = data[0] & 0xFF;
            } else if (data.length == 1 && offset == MCR) {
                mcr = data[0] & 0x1F;
            } else if (data.length == 1 && offset == THR && (lcr & LCR_DLAB) == 0 && (mcr & MCR_LOOP) == 0) {
                if (u.txPending() < TX_CAPACITY) {
                    expectTx.write(data[0]);
                } else {
                    dropped++;
                }
            }
            u.write(offset, data);
            check();
        }

        void read(long offset, byte[] data) {
            u.read(offset, data);
            if (data.length == 1 && offset == IIR) {
                int id = data[0] & 0x0F;
                assertTrue(id == IIR_NO_INT || id == IIR_MSI || id == IIR_THRI || id == IIR_RDI || id == IIR_RLSI
                        || id == IIR_CTI, "IIR id 0x" + Integer.toHexString(id));
                assertTrue((data[0] & 0x30) == 0, "IIR bits 4-5 are 0 on a 16550A");
            }
            check();
        }

        void receive(byte[] b) {
            int room = u.rxRoom();
            int n = u.receive(b, 0, b.length);
            assertEquals(Math.min(room, b.length), n, "receive takes exactly the room it reported");
            check();
        }

        void drain(int max) {
            byte[] b = new byte[Math.max(0, max)];
            int n = u.peekTx(b, 0, b.length);
            gotTx.write(b, 0, n);
            u.consumeTx(n);
            check();
        }

        void check() {
            assertEquals(u.interruptPending(), host.line, "the line follows the interrupt output");
            int room = u.rxRoom();
            assertTrue(room >= 0 && room <= FIFO_SIZE, "rx room " + room);
            assertTrue(u.txPending() >= 0 && u.txPending() <= TX_CAPACITY, "tx pending " + u.txPending());
        }

        void finish() {
            drain(TX_CAPACITY);
            assertEquals(0, u.txPending());
            assertEquals(dropped, u.txDropped());
            assertTrue(Arrays.equals(expectTx.toByteArray(), gotTx.toByteArray()), "the host got the THR writes in order");
            // LSR.THRE after draining: the transmitter is empty
            byte[] lsr = {0};
            u.read(LSR, lsr);
            if ((mcr & MCR_LOOP) == 0) {
                assertEquals(LSR_THRE | LSR_TEMT, lsr[0] & (LSR_THRE | LSR_TEMT));
            }
        }
    }

    static final int[] WIDTHS = {1, 1, 1, 1, 2, 4, 8, 0};

    @FuzzTest(maxDuration = "1h")
    void registerSequencesKeepTheModelConsistent(FuzzedDataProvider data) {
        Run r = new Run();
        int ops = 0;
        while (data.remainingBytes() > 0 && ops++ < 4000) {
            switch (data.consumeInt(0, 5)) {
                case 0, 1 -> {
                    long off = data.consumeBoolean() ? data.consumeInt(0, 7) : data.consumeLong();
                    r.write(off, data.consumeBytes(WIDTHS[data.consumeInt(0, WIDTHS.length - 1)]));
                }
                case 2, 3 -> {
                    long off = data.consumeBoolean() ? data.consumeInt(0, 7) : data.consumeLong();
                    r.read(off, new byte[WIDTHS[data.consumeInt(0, WIDTHS.length - 1)]]);
                }
                case 4 -> r.receive(data.consumeBytes(data.consumeInt(0, 40)));
                default -> r.drain(data.consumeInt(0, 5000));
            }
        }
        r.finish();
    }

    @Test
    void randomPokesKeepTheModelConsistent() {
        Random rnd = new Random(16550);
        for (int round = 0; round < 8; round++) {
            Run r = new Run();
            for (int i = 0; i < 20_000; i++) {
                int op = rnd.nextInt(10);
                long off = rnd.nextInt(16) == 0 ? rnd.nextLong() : rnd.nextInt(8);
                byte[] b = new byte[WIDTHS[rnd.nextInt(WIDTHS.length)]];
                rnd.nextBytes(b);
                if (op < 4) {
                    r.write(off, b);
                } else if (op < 8) {
                    r.read(off, b);
                } else if (op == 8) {
                    byte[] in = new byte[rnd.nextInt(40)];
                    rnd.nextBytes(in);
                    r.receive(in);
                } else if (rnd.nextInt(50) == 0) {
                    r.drain(rnd.nextInt(5000)); // rarely: the buffer fills up, and bytes are dropped
                }
            }
            r.finish();
        }
    }
}
