package dev.jkrun.vmm.builder;

import dev.jkrun.arch.x86_64.Layout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.vmm.builder.MmioPlacement.Slot;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/** The pure placement of virtio-mmio devices: windows never overlap, lines are shared as evenly as they can be. */
class MmioPlacementTest {
    /** IOAPIC pins 5..23. */
    static final int LINES = 19;

    @ParameterizedTest
    @ValueSource(ints = {1, 11, 12, 19, 20, 24, 38, 63, 64})
    void windowsAreDisjointAndLinesEven(int n) {
        List<Slot> slots = MmioPlacement.place(X86_64Platform.DEVICES, n);
        assertEquals(n, slots.size());
        for (int k = 0; k < n; k++) {
            Slot s = slots.get(k);
            assertEquals(k, s.index());
            assertEquals(0x1000, s.size());
            assertEquals(0xD000_0000L + 0x1000L * k, s.base(), "window of device " + k);
            assertTrue(s.base() + s.size() <= Layout.IOAPIC, "below the IOAPIC");
            assertTrue(s.irq() >= 5 && s.irq() <= 23, "pin " + s.irq());
        }
        for (int a = 0; a < n; a++) {
            for (int b = a + 1; b < n; b++) {
                Slot x = slots.get(a), y = slots.get(b);
                assertTrue(x.base() + x.size() <= y.base() || y.base() + y.size() <= x.base(), a + " and " + b + " overlap");
            }
        }
        Map<Integer, Integer> perLine = new TreeMap<>();
        slots.forEach(s -> perLine.merge(s.irq(), 1, Integer::sum));
        int min = perLine.values().stream().min(Integer::compare).orElseThrow();
        int max = perLine.values().stream().max(Integer::compare).orElseThrow();
        assertTrue(max - min <= 1, "lines shared unevenly: " + perLine);
        assertEquals(Math.min(n, LINES), perLine.size(), "every line is used before any is shared: " + perLine);
        for (Slot s : slots) {
            assertEquals(perLine.get(s.irq()) > 1, s.shared(), "device " + s.index() + " on " + perLine);
        }
    }

    @Test
    void oneDevice() {
        assertEquals(List.of(new Slot(0, 0xD000_0000L, 0x1000, 5, false)), MmioPlacement.place(X86_64Platform.DEVICES, 1));
        assertEquals(Set.of(), MmioPlacement.sharedLines(MmioPlacement.place(X86_64Platform.DEVICES, 1)));
    }

    /** Up to 11 devices nothing changes from libkrun's placement: IRQ 5 + k, each its own. */
    @Test
    void elevenDevicesKeepLibkrunsIrqs() {
        List<Slot> slots = MmioPlacement.place(X86_64Platform.DEVICES, 11);
        for (Slot s : slots) {
            assertEquals(5 + s.index(), s.irq());
            assertFalse(s.shared());
        }
        assertEquals(15, slots.get(10).irq());
    }

    /** The twelfth device, once refused, takes IOAPIC pin 16. */
    @Test
    void twelveDevicesUsePinSixteen() {
        List<Slot> slots = MmioPlacement.place(X86_64Platform.DEVICES, 12);
        assertEquals(16, slots.get(11).irq());
        assertEquals(Set.of(), MmioPlacement.sharedLines(slots));
    }

    /** 24 devices: all 19 pins, the first five carry two devices each, level-triggered. */
    @Test
    void twentyFourDevicesShareFiveLines() {
        List<Slot> slots = MmioPlacement.place(X86_64Platform.DEVICES, 24);
        assertEquals(Set.of(5, 6, 7, 8, 9), MmioPlacement.sharedLines(slots));
        assertEquals(23, slots.get(18).irq());
        assertEquals(5, slots.get(19).irq());
        assertEquals(9, slots.get(23).irq());
        assertTrue(slots.get(0).shared() && slots.get(19).shared());
        assertFalse(slots.get(10).shared());
    }

    /** 64 devices: 3 or 4 on every pin (64 = 3·19 + 7), all shared. */
    @Test
    void sixtyFourDevicesShareEveryLine() {
        List<Slot> slots = MmioPlacement.place(X86_64Platform.DEVICES, 64);
        assertEquals(19, MmioPlacement.sharedLines(slots).size());
        Map<Integer, Integer> perLine = new TreeMap<>();
        slots.forEach(s -> perLine.merge(s.irq(), 1, Integer::sum));
        for (int pin = 5; pin <= 23; pin++) {
            assertEquals(pin < 12 ? 4 : 3, perLine.get(pin), "pin " + pin);
        }
        assertEquals(0xD003_F000L, slots.get(63).base());
    }

    @Test
    void beyondTheLimitIsRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MmioPlacement.place(X86_64Platform.DEVICES, 65));
        assertTrue(e.getMessage().contains("64"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> MmioPlacement.place(X86_64Platform.DEVICES, -1));
        assertEquals(List.of(), MmioPlacement.place(X86_64Platform.DEVICES, 0));
    }

    /** Another architecture's space: as many lines as devices, none shared. */
    @Test
    void aSpaceWithEnoughLinesSharesNone() {
        MmioPlacement.Space gic = new MmioPlacement.Space(0x0A00_0000L, 0x0A00_0000L + 0x200 * 128, 0x200, 32, 32 + 127, 128);
        List<Slot> slots = MmioPlacement.place(gic, 128);
        assertEquals(Set.of(), MmioPlacement.sharedLines(slots));
        assertEquals(32 + 127, slots.get(127).irq());
        assertThrows(IllegalArgumentException.class,
                () -> new MmioPlacement.Space(0, 0x1000, 0x1000, 5, 23, 2));
    }
}
