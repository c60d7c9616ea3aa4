package dev.jkrun.devices.legacy;

import static dev.jkrun.devices.legacy.IoApic.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class IoApicTest {
    /** Records what the IOAPIC asks of the hypervisor. */
    static final class FakeSink implements IoApic.Sink {
        Msi[] routes;
        int routeUpdates;
        final List<Msi> delivered = new ArrayList<>();
        /** What {@link #deliver} answers: false as for a software-disabled LAPIC. */
        boolean accept = true;

        @Override
        public void routes(Msi[] r) {
            assertEquals(PINS, r.length);
            routes = r;
            routeUpdates++;
        }

        @Override
        public boolean deliver(Msi msi) {
            delivered.add(msi);
            return accept;
        }
    }

    final FakeSink sink = new FakeSink();
    final IoApic ioapic = new IoApic(sink);

    static byte[] le32(int v) { return new byte[] {(byte) v, (byte) (v >>> 8), (byte) (v >>> 16), (byte) (v >>> 24)}; }

    void writeReg(int reg, int value) {
        ioapic.write(IOREGSEL, le32(reg));
        ioapic.write(IOWIN, le32(value));
    }

    int readReg(int reg) {
        ioapic.write(IOREGSEL, le32(reg));
        byte[] b = new byte[4];
        ioapic.read(IOWIN, b);
        return (b[0] & 0xFF) | (b[1] & 0xFF) << 8 | (b[2] & 0xFF) << 16 | (b[3] & 0xFF) << 24;
    }

    void program(int pin, int low, int destination) {
        writeReg(REG_TABLE + 2 * pin + 1, destination << 24);
        writeReg(REG_TABLE + 2 * pin, low);
    }

    @Test
    void resetStateIsMaskedWithParkedRoutes() {
        assertEquals(1, sink.routeUpdates, "the constructor installs every pin's route");
        for (int pin = 0; pin < PINS; pin++) {
            assertEquals(MASKED, ioapic.entry(pin));
            assertEquals(0, readReg(REG_TABLE + 2 * pin + 1));
            assertEquals((int) MASKED, readReg(REG_TABLE + 2 * pin));
            assertEquals(MSI_BASE | 4, sink.routes[pin].address(), "logical destination 0: no LAPIC");
        }
        assertEquals(0x0017_0020, readReg(REG_VERSION), "24 entries, version 0x20");
        assertEquals(0, readReg(REG_ID));
        assertEquals(0xFFFF_FFFF, readReg(REG_TABLE + 2 * PINS), "past the table");
        assertEquals(0xFFFF_FFFF, readReg(0x03));
    }

    @Test
    void idIsWritableFourBitsVersionIsNot() {
        writeReg(REG_ID, 0xFF00_0000);
        assertEquals(0x0F00_0000, readReg(REG_ID));
        assertEquals(0x0F00_0000, readReg(REG_ARBITRATION));
        writeReg(REG_VERSION, 0);
        assertEquals(0x0017_0020, readReg(REG_VERSION));
    }

    @Test
    void unmaskingRoutesThePinAsAnMsi() {
        program(7, 0x31, 2); // fixed, physical, edge, vector 0x31 to APIC 2
        Msi r = sink.routes[7];
        assertEquals(0xFEE0_2000L, r.address());
        assertEquals(0x31, r.data());
        program(9, 0x41 | (int) LEVEL | (int) DEST_LOGICAL | DM_LOWEST << 8, 0x03);
        assertEquals(0xFEE0_3004L, sink.routes[9].address());
        assertEquals(0x41 | 1 << 15 | 1 << 8, sink.routes[9].data());
        assertTrue(sink.routes[9].level());
    }

    @Test
    void theResetRoutesAreParked() {
        for (int pin = 0; pin < PINS; pin++) {
            assertEquals(new Msi(MSI_BASE | 4, 0), sink.routes[pin]);
        }
    }

    @Test
    void rewritingTheSameEntryDoesNotTouchTheRoutes() {
        program(7, 0x31, 2);
        int n = sink.routeUpdates;
        program(7, 0x31, 2);
        assertEquals(n, sink.routeUpdates);
    }

    @Test
    void remoteIrrAndDeliveryStatusAreReadOnly() {
        program(5, (int) (LEVEL | REMOTE_IRR | DELIVERY_STATUS) | 0x50, 0);
        assertEquals(LEVEL | 0x50, ioapic.entry(5));
    }

    @Test
    void levelLineDeliversOncePerEoiWhileHigh() {
        program(5, 0x50 | (int) LEVEL, 0);
        ioapic.setLevel(5, true);
        assertEquals(1, sink.delivered.size());
        assertTrue((ioapic.entry(5) & REMOTE_IRR) != 0);
        ioapic.setLevel(5, true);
        ioapic.setLevel(5, false);
        ioapic.setLevel(5, true);
        assertEquals(1, sink.delivered.size(), "in service: held until the EOI");
        ioapic.endOfInterrupt(0x51);
        assertEquals(1, sink.delivered.size(), "another vector's EOI");
        ioapic.endOfInterrupt(0x50);
        assertEquals(2, sink.delivered.size(), "still high at the EOI: delivered again");
        ioapic.setLevel(5, false);
        ioapic.endOfInterrupt(0x50);
        assertEquals(2, sink.delivered.size());
        assertEquals(0, ioapic.entry(5) & REMOTE_IRR);
    }

    @Test
    void eoiRegisterEndsTheInterruptToo() {
        program(5, 0x50 | (int) LEVEL, 0);
        ioapic.setLevel(5, true);
        ioapic.write(EOI, le32(0x50));
        assertEquals(2, sink.delivered.size());
    }

    @Test
    void edgePinDeliversOnRisingEdgesOnly() {
        program(6, 0x60, 1);
        ioapic.setLevel(6, true);
        ioapic.setLevel(6, true);
        assertEquals(1, sink.delivered.size());
        ioapic.setLevel(6, false);
        ioapic.setLevel(6, true);
        assertEquals(2, sink.delivered.size());
        assertEquals(0, ioapic.entry(6) & REMOTE_IRR, "edges never set Remote IRR");
        assertEquals(new Msi(0xFEE0_1000L, 0x60), sink.delivered.get(0));
    }

    @Test
    void maskedLevelLineIsDeliveredWhenUnmasked() {
        program(8, 0x70 | (int) LEVEL | (int) MASKED, 0);
        ioapic.setLevel(8, true);
        assertEquals(0, sink.delivered.size());
        program(8, 0x70 | (int) LEVEL, 0);
        assertEquals(1, sink.delivered.size());
    }

    @Test
    void maskedEdgeIsLost() {
        program(8, 0x70 | (int) MASKED, 0);
        ioapic.setLevel(8, true);
        program(8, 0x70, 0);
        assertEquals(0, sink.delivered.size());
    }

    @Test
    void maskingAnIrqfdPinParksItsRouteButKeepsVectorAndTrigger() {
        ioapic.carriesIrqfd(10);
        program(10, 0x90 | (int) LEVEL, 3);
        assertEquals(0xFEE0_3000L, sink.routes[10].address());
        program(10, 0x90 | (int) LEVEL | (int) MASKED, 3);
        Msi r = sink.routes[10];
        assertEquals(MSI_BASE | 4, r.address(), "logical destination 0: the irqfd delivers nothing");
        assertEquals(0x90, r.vector());
        assertTrue(r.level(), "a masked level vector in service still has its EOI reported (Linux 6.2+)");
        program(10, 0x90 | (int) MASKED, 3);
        assertEquals(MSI_BASE | 4, sink.routes[10].address(), "masked edge: parked");
    }

    @Test
    void aMaskedLevelPinOfTheVmmsOwnKeepsItsRoute() {
        program(10, 0x90 | (int) LEVEL | (int) MASKED, 3);
        assertEquals(new Msi(0xFEE0_3000L, 0x90 | 1 << 15), sink.routes[10], "nothing signals it; its EOIs stay reported");
        ioapic.setLevel(10, true);
        assertEquals(0, sink.delivered.size(), "the mask is applied here");
        program(10, 0x90 | (int) MASKED, 3);
        assertEquals(MSI_BASE | 4, sink.routes[10].address(), "masked edge: parked");
    }

    @Test
    void carriesIrqfdParksAMaskedLevelRouteAtOnce() {
        program(11, 0x91 | (int) LEVEL | (int) MASKED, 3);
        int n = sink.routeUpdates;
        ioapic.carriesIrqfd(11);
        assertEquals(n + 1, sink.routeUpdates);
        assertEquals(MSI_BASE | 4, sink.routes[11].address());
        ioapic.carriesIrqfd(11);
        ioapic.carriesIrqfd(-1);
        ioapic.carriesIrqfd(PINS);
        assertEquals(n + 1, sink.routeUpdates);
    }

    @Test
    void maskedWhileInServiceThenEoiThenUnmaskDeliversAgain() {
        program(5, 0x50 | (int) LEVEL, 0);
        ioapic.setLevel(5, true);
        program(5, 0x50 | (int) LEVEL | (int) MASKED, 0); // Linux's ioapic_ack_level when the IRQ moves
        assertEquals(0xFEE0_0000L, sink.routes[5].address(), "still routed: KVM reports the EOI");
        ioapic.endOfInterrupt(0x50);
        assertEquals(0, ioapic.entry(5) & REMOTE_IRR);
        assertEquals(1, sink.delivered.size(), "masked: not delivered at the EOI");
        program(5, 0x50 | (int) LEVEL, 0);
        assertEquals(2, sink.delivered.size(), "unmasked with the line high");
    }

    @Test
    void anInterruptNoLapicTookLeavesRemoteIrrClear() {
        program(5, 0x50 | (int) LEVEL, 0);
        sink.accept = false;
        ioapic.setLevel(5, true);
        assertEquals(1, sink.delivered.size());
        assertEquals(0, ioapic.entry(5) & REMOTE_IRR, "as KVM's IOAPIC: not in service");
        sink.accept = true;
        program(5, 0x50 | (int) LEVEL, 0); // the guest enables its LAPIC and rewrites the entry
        assertEquals(2, sink.delivered.size());
        assertTrue((ioapic.entry(5) & REMOTE_IRR) != 0);
    }

    @Test
    void switchingToEdgeClearsRemoteIrr() {
        program(5, 0x50 | (int) LEVEL, 0);
        ioapic.setLevel(5, true);
        program(5, 0x50, 0);
        assertEquals(0, ioapic.entry(5) & REMOTE_IRR);
    }

    @Test
    void extIntAndReservedModesDeliverNothing() {
        for (int mode : new int[] {3, 6, 7}) {
            program(11, 0xA0 | mode << 8 | (int) LEVEL, 0);
            assertEquals(MSI_BASE | 4, sink.routes[11].address(), "mode " + mode);
            ioapic.setLevel(11, true);
            ioapic.setLevel(11, false);
        }
        assertEquals(0, sink.delivered.size());
    }

    @Test
    void accessWidthsAndOffsets() {
        program(12, 0xB0, 0x12);
        ioapic.write(IOREGSEL, new byte[] {(byte) (REG_TABLE + 2 * 12 + 1)});
        byte[] eight = new byte[8];
        ioapic.read(IOWIN, eight);
        assertArrayEquals(new byte[] {0, 0, 0, 0x12, 0, 0, 0, 0}, eight);
        byte[] one = new byte[1];
        ioapic.read(IOREGSEL, one);
        assertEquals(REG_TABLE + 2 * 12 + 1, one[0]);
        byte[] other = {1, 2, 3, 4};
        ioapic.read(0x20, other);
        assertArrayEquals(new byte[4], other, "undecoded offsets read 0");
        ioapic.write(0x20, le32(-1));
        ioapic.write(IOWIN, new byte[0]);
        ioapic.setLevel(-1, true);
        ioapic.setLevel(PINS, true);
        assertNotNull(sink.routes);
    }

    @Test
    void describeListsThePinsInUse() {
        assertEquals(List.of(), ioapic.describe()); // all masked, nothing pending: nothing to say
        program(5, (int) LEVEL | 0x31, 1);
        ioapic.setLevel(5, true);
        program(7, (int) MASKED | 0x40, 0);
        ioapic.setLevel(7, true);
        ioapic.carriesIrqfd(9);
        program(9, 0x41, 0);
        assertEquals(List.of("ioapic pin 5: vector 49 level mode 0 physical 1 REMOTE-IRR line-high",
                "ioapic pin 7: vector 64 edge mode 0 physical 0 MASKED line-high",
                "ioapic pin 9: vector 65 edge mode 0 physical 0 irqfd"), ioapic.describe());
    }
}
