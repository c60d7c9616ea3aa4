package dev.jkrun.devices.legacy;

import static dev.jkrun.devices.legacy.IoApic.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A hostile guest's IOAPIC accesses (any offset, width and value, in any order) interleaved with the VMM's line
 * changes and EOIs. Oracle: nothing throws; the routes the hypervisor holds always equal what each entry says
 * (a masked or undeliverable entry parked); Remote IRR is only ever set on a level-triggered pin; one line change or
 * IOWIN write delivers at most one interrupt, and a level pin in service is not delivered again before an EOI of
 * its vector; the version register never changes. Replayed from the committed inputs by every test run; fuzzed with
 * {@code fuzz/run IoApicFuzzTest}; {@link #randomPokesKeepTheModelConsistent} runs a fixed pseudo-random sequence.
 */
class IoApicFuzzTest {
    static final int[] WIDTHS = {4, 4, 4, 1, 2, 8, 0};

    static final class Run {
        final IoApicTest.FakeSink sink = new IoApicTest.FakeSink();
        final IoApic io = new IoApic(sink);

        /** Pins 5..14 carry irqfds (as a VM's own virtio lines do); the others are the VMM's. */
        Run() {
            for (int pin = 5; pin < 15; pin++) {
                io.carriesIrqfd(pin);
            }
        }

        static boolean irqfd(int pin) { return pin >= 5 && pin < 15; }

        void write(long offset, byte[] data) {
            long[] before = entries();
            int n = sink.delivered.size();
            io.write(offset, data);
            // a register write delivers at most once; an EOI once for each pin with that vector
            assertTrue(sink.delivered.size() - n <= (offset == EOI ? PINS : 1), "deliveries for one write");
            if (offset != IOWIN && offset != IOREGSEL) {
                int eoiVector = data.length == 0 ? -1 : data[0] & 0xFF;
                for (int pin = 0; pin < PINS; pin++) { // only the EOI register changes entries outside IOWIN
                    long mask = offset == EOI && (before[pin] & VECTOR) == eoiVector ? ~REMOTE_IRR : -1L;
                    assertEquals(before[pin] & mask, io.entry(pin) & mask, "pin " + pin);
                }
            }
            check();
        }

        void read(long offset, byte[] data) {
            io.read(offset, data);
            check();
        }

        void setLevel(int pin, boolean high) {
            long before = pin >= 0 && pin < PINS ? io.entry(pin) : 0;
            int n = sink.delivered.size();
            io.setLevel(pin, high);
            int got = sink.delivered.size() - n;
            assertTrue(got <= 1, "one line change delivers at most once");
            if ((before & (LEVEL | REMOTE_IRR)) == (LEVEL | REMOTE_IRR)) {
                assertEquals(0, got, "a level pin in service waits for its EOI");
            }
            check();
        }

        void eoi(int vector) {
            io.endOfInterrupt(vector);
            check();
        }

        long[] entries() {
            long[] e = new long[PINS];
            for (int pin = 0; pin < PINS; pin++) {
                e[pin] = io.entry(pin);
            }
            return e;
        }

        void check() {
            for (int pin = 0; pin < PINS; pin++) {
                long e = io.entry(pin);
                assertEquals(IoApic.route(e, irqfd(pin)), sink.routes[pin], "pin " + pin + " route of entry 0x" + Long.toHexString(e));
                if ((e & LEVEL) == 0) {
                    assertEquals(0, e & REMOTE_IRR, "Remote IRR on an edge pin " + pin);
                }
                assertEquals(0, e & DELIVERY_STATUS);
            }
            // the version register, read without disturbing the guest's select
            byte[] sel = new byte[4];
            io.read(IOREGSEL, sel);
            io.write(IOREGSEL, new byte[] {REG_VERSION, 0, 0, 0});
            byte[] v = new byte[4];
            io.read(IOWIN, v);
            assertEquals(0x20, v[0]);
            assertEquals(23, v[2]);
            io.write(IOREGSEL, sel);
        }
    }

    static long offset(int choice, long any) {
        return switch (choice) {
            case 0, 1, 2 -> IOREGSEL;
            case 3, 4, 5, 6 -> IOWIN;
            case 7 -> EOI;
            default -> any;
        };
    }

    @FuzzTest(maxDuration = "1h")
    void registerSequencesKeepTheModelConsistent(FuzzedDataProvider data) {
        Run r = new Run();
        int ops = 0;
        while (data.remainingBytes() > 0 && ops++ < 4000) {
            switch (data.consumeInt(0, 5)) {
                case 0, 1 -> {
                    long off = offset(data.consumeInt(0, 8), data.consumeLong());
                    r.write(off, data.consumeBytes(WIDTHS[data.consumeInt(0, WIDTHS.length - 1)]));
                }
                case 2 -> {
                    long off = offset(data.consumeInt(0, 8), data.consumeLong());
                    r.read(off, new byte[WIDTHS[data.consumeInt(0, WIDTHS.length - 1)]]);
                }
                case 3 -> r.setLevel(data.consumeInt(-2, PINS + 1), data.consumeBoolean());
                case 4 -> r.sink.accept = data.consumeBoolean();
                default -> r.eoi(data.consumeInt(0, 255));
            }
        }
    }

    @Test
    void randomPokesKeepTheModelConsistent() {
        Random rnd = new Random(82093);
        for (int round = 0; round < 8; round++) {
            Run r = new Run();
            for (int i = 0; i < 20_000; i++) {
                int op = rnd.nextInt(10);
                if (op < 2) { // select a real register most of the time
                    int reg = rnd.nextInt(8) == 0 ? rnd.nextInt(256) : REG_TABLE + rnd.nextInt(2 * PINS);
                    r.write(IOREGSEL, new byte[] {(byte) reg, 0, 0, 0});
                } else if (op < 5) {
                    byte[] b = new byte[WIDTHS[rnd.nextInt(WIDTHS.length)]];
                    rnd.nextBytes(b);
                    if (b.length > 0 && rnd.nextBoolean()) {
                        b[0] = (byte) (0x30 + rnd.nextInt(4)); // few vectors, so EOIs and line changes meet
                    }
                    if (b.length > 2 && rnd.nextInt(3) > 0) {
                        b[2] &= ~1; // unmasked, more often than not
                    }
                    r.write(offset(rnd.nextInt(9), rnd.nextLong()), b);
                } else if (op < 6) {
                    r.read(offset(rnd.nextInt(9), rnd.nextLong()), new byte[WIDTHS[rnd.nextInt(WIDTHS.length)]]);
                } else if (op < 9) {
                    r.setLevel(rnd.nextInt(PINS + 2) - 1, rnd.nextBoolean());
                } else {
                    r.eoi(rnd.nextBoolean() ? 0x30 + rnd.nextInt(4) : rnd.nextInt(256));
                }
            }
            assertTrue(r.sink.delivered.size() > 100, "the sequence reached deliveries: " + r.sink.delivered.size());
        }
    }
}
