package dev.jkrun.devices.legacy;

import dev.jkrun.devices.bus.BusDevice;
import java.util.Arrays;

/**
 * An I/O APIC emulated in the VMM, for KVM's split irqchip (LAPICs in the kernel, no PIC or PIT), 24 pins: the
 * redirection-table semantics of KVM's in-kernel IOAPIC (arch/x86/kvm/ioapic.c) with QEMU's version 0x20 and its EOI
 * register at 0x40 (hw/intc/ioapic.c; Intel 82093AA datasheet).
 *
 * <p>Every pin reaches the LAPICs as an MSI: the {@link Sink} keeps one route per pin (GSI n = pin n). KVM uses a
 * route when a device signals the pin's irqfd, and asks user space for the EOIs of the vectors that level-triggered
 * routes name (kvm_scan_ioapic_routes). A masked pin's route is <em>parked</em>: the same vector and trigger mode with
 * logical destination 0, which no LAPIC matches, so an irqfd on it delivers nothing. A masked level-triggered pin
 * that only the VMM drives ({@link #setLevel}: a level shared by several devices, a UART; not {@link #carriesIrqfd})
 * keeps its message instead, since nothing signals its GSI: the mask is applied here, and the EOI of its vector in
 * service stays reported. The VMM's lines are delivered here: a
 * level-triggered pin sets its Remote IRR and is not delivered again until the EOI for its vector
 * ({@link #endOfInterrupt}, from the vCPU's EOI exit or the EOI register); a line still high at that EOI is
 * delivered again.
 *
 * <p>Everything about an entry is the guest's to choose; what it chooses can only misdirect its own interrupts.
 * ExtINT and the reserved delivery modes deliver nothing (there is no PIC), as does a masked pin. Polarity is
 * stored and ignored (lines are active high, as the MP table says). Thread-safe: vCPU threads write registers and
 * end interrupts while device threads drive lines; the sink is called under this object's lock.
 */
public final class IoApic implements BusDevice {
    /** Input pins (KVM_IOAPIC_NUM_PINS); the version register says 23 as its highest entry. */
    public static final int PINS = 24;
    /** Bytes of guest-physical space the registers are decoded in. */
    public static final int WINDOW = 0x1000;

    static final int IOREGSEL = 0x00, IOWIN = 0x10, EOI = 0x40;
    static final int REG_ID = 0x00, REG_VERSION = 0x01, REG_ARBITRATION = 0x02, REG_TABLE = 0x10;
    static final int VERSION = 0x20;

    static final long VECTOR = 0xFFL, DELIVERY_MODE = 0x700L, DEST_LOGICAL = 1L << 11, DELIVERY_STATUS = 1L << 12,
            REMOTE_IRR = 1L << 14, LEVEL = 1L << 15, MASKED = 1L << 16;
    static final int DM_FIXED = 0, DM_LOWEST = 1, DM_SMI = 2, DM_NMI = 4, DM_INIT = 5;

    /** The LAPICs' MSI window (xAPIC): address = 0xFEE0_0000 | destination << 12 | logical << 2. */
    static final long MSI_BASE = 0xFEE0_0000L;

    /** One message signalled interrupt: what the IOAPIC writes to the LAPICs for a pin. */
    public record Msi(long address, int data) {
        public int vector() { return data & 0xFF; }

        public boolean level() { return (data & (1 << 15)) != 0; }
    }

    /** Where this IOAPIC's interrupts go: the hypervisor's per-pin routes and direct delivery. */
    public interface Sink {
        /** Replaces the routes of all pins; {@code routes[pin]} is what a signal on GSI {@code pin} delivers. */
        void routes(Msi[] routes);

        /**
         * Delivers one interrupt now; returns whether it counts as delivered for Remote IRR, as KVM's own IOAPIC
         * counts it: true unless LAPICs matched the destination and none accepted it (a software-disabled LAPIC).
         */
        boolean deliver(Msi msi);
    }

    private final Sink sink;
    private final long[] table = new long[PINS];
    private final boolean[] line = new boolean[PINS];
    private final Msi[] routes = new Msi[PINS];
    private final boolean[] irqfd = new boolean[PINS];
    private int select;
    private int id;

    /** An IOAPIC in its reset state (every pin masked, ID 0), its parked routes already given to {@code sink}. */
    public IoApic(Sink sink) {
        this.sink = sink;
        Arrays.fill(table, MASKED);
        synchronized (this) {
            for (int pin = 0; pin < PINS; pin++) {
                routes[pin] = route(table[pin], false);
            }
            sink.routes(routes.clone());
        }
    }

    @Override
    public synchronized void read(long offset, byte[] data) {
        long value;
        if (offset == IOREGSEL) {
            value = select;
        } else if (offset == IOWIN) {
            value = readRegister(select);
        } else {
            value = 0;
        }
        for (int i = 0; i < data.length; i++) {
            data[i] = i < 4 ? (byte) (value >>> (8 * i)) : 0;
        }
    }

    @Override
    public synchronized void write(long offset, byte[] data) {
        if (data.length == 0) {
            return;
        }
        int value = 0;
        for (int i = 0; i < Math.min(data.length, 4); i++) {
            value |= (data[i] & 0xFF) << (8 * i);
        }
        if (offset == IOREGSEL) {
            select = value & 0xFF;
        } else if (offset == IOWIN) {
            writeRegister(select, value);
        } else if (offset == EOI) {
            endOfInterrupt(value & 0xFF);
        }
    }

    private long readRegister(int reg) {
        switch (reg) {
            case REG_ID:
            case REG_ARBITRATION:
                return (long) id << 24;
            case REG_VERSION:
                return (PINS - 1) << 16 | VERSION;
            default:
                int pin = (reg - REG_TABLE) >> 1;
                if (reg < REG_TABLE || pin >= PINS) {
                    return 0xFFFF_FFFFL;
                }
                return (reg & 1) == 0 ? table[pin] & 0xFFFF_FFFFL : table[pin] >>> 32;
        }
    }

    private void writeRegister(int reg, int value) {
        if (reg == REG_ID) {
            id = (value >>> 24) & 0xF;
            return;
        }
        int pin = (reg - REG_TABLE) >> 1;
        if (reg < REG_TABLE || pin >= PINS) {
            return; // version, arbitration and the registers past the table are read-only
        }
        long old = table[pin];
        long entry;
        if ((reg & 1) == 0) {
            long readOnly = DELIVERY_STATUS | REMOTE_IRR;
            entry = (old & ~0xFFFF_FFFFL) | (value & 0xFFFF_FFFFL & ~readOnly) | (old & readOnly);
        } else {
            entry = (old & 0xFFFF_FFFFL) | ((long) value << 32);
        }
        if ((entry & LEVEL) == 0) {
            entry &= ~REMOTE_IRR; // an edge-triggered pin has no interrupt in service (as KVM's IOAPIC)
        }
        table[pin] = entry;
        updateRoute(pin);
        if ((entry & LEVEL) != 0 && line[pin]) {
            service(pin); // a level line already up is delivered once its pin is unmasked
        }
    }

    private void updateRoute(int pin) {
        Msi r = route(table[pin], irqfd[pin]);
        if (!r.equals(routes[pin])) {
            Msi[] next = routes.clone();
            next[pin] = r;
            sink.routes(next);
            routes[pin] = r;
        }
    }

    /**
     * Says that the hypervisor delivers on pin {@code pin} by itself (a device's irqfd on its GSI), so the pin's
     * route must be parked while it is masked. Set up before the guest runs.
     */
    public synchronized void carriesIrqfd(int pin) {
        if (pin >= 0 && pin < PINS && !irqfd[pin]) {
            irqfd[pin] = true;
            updateRoute(pin);
        }
    }

    /**
     * Drives pin {@code pin} of a line the VMM emulates: a rising edge on an edge-triggered pin is one interrupt; a
     * level-triggered pin interrupts while high, once per EOI. Pins out of range are ignored.
     */
    public synchronized void setLevel(int pin, boolean high) {
        if (pin < 0 || pin >= PINS) {
            return;
        }
        boolean rising = high && !line[pin];
        line[pin] = high;
        if (high && (rising || (table[pin] & LEVEL) != 0)) {
            service(pin);
        }
    }

    /**
     * The EOI for {@code vector} (a LAPIC EOI reported by the hypervisor, or a write to the EOI register): every
     * level-triggered pin with that vector in service is done; one whose line is still high is delivered again.
     */
    public synchronized void endOfInterrupt(int vector) {
        for (int pin = 0; pin < PINS; pin++) {
            long e = table[pin];
            if ((e & VECTOR) != (vector & 0xFF) || (e & REMOTE_IRR) == 0) {
                continue;
            }
            table[pin] = e & ~REMOTE_IRR;
            if ((e & LEVEL) != 0 && line[pin]) {
                service(pin);
            }
        }
    }

    private void service(int pin) {
        long e = table[pin];
        if ((e & MASKED) != 0 || !delivers(e)) {
            return;
        }
        if ((e & LEVEL) != 0 && (e & REMOTE_IRR) != 0) {
            return; // still in service: the EOI delivers again
        }
        if (sink.deliver(message(e)) && (e & LEVEL) != 0) {
            table[pin] = e | REMOTE_IRR; // not when no LAPIC took it: the next entry write or EOI tries again
        }
    }

    /**
     * The pins a guest has set up (unmasked, or masked with a line up or an interrupt in service), one line each, for
     * diagnosing a guest that waits for an interrupt: vector, trigger, destination, Remote IRR, the line's level and
     * whether an irqfd drives it.
     */
    public synchronized java.util.List<String> describe() {
        java.util.List<String> out = new java.util.ArrayList<>();
        for (int pin = 0; pin < PINS; pin++) {
            long e = table[pin];
            if ((e & MASKED) != 0 && !line[pin] && (e & REMOTE_IRR) == 0) {
                continue;
            }
            out.add("ioapic pin " + pin + ": vector " + (e & VECTOR) + ((e & LEVEL) != 0 ? " level" : " edge")
                    + " mode " + ((e & DELIVERY_MODE) >>> 8) + ((e & DEST_LOGICAL) != 0 ? " logical " : " physical ")
                    + (e >>> 56) + ((e & MASKED) != 0 ? " MASKED" : "") + ((e & REMOTE_IRR) != 0 ? " REMOTE-IRR" : "")
                    + (line[pin] ? " line-high" : "") + (irqfd[pin] ? " irqfd" : ""));
        }
        return out;
    }

    /** The redirection table entry of {@code pin}, as the guest would read it. */
    public synchronized long entry(int pin) { return table[pin]; }

    private static boolean delivers(long entry) {
        int mode = (int) ((entry & DELIVERY_MODE) >>> 8);
        return mode == DM_FIXED || mode == DM_LOWEST || mode == DM_SMI || mode == DM_NMI || mode == DM_INIT;
    }

    /** The MSI an entry sends: xAPIC destination in bits 56..63. */
    static Msi message(long entry) {
        long dest = (entry >>> 56) & 0xFF;
        long address = MSI_BASE | dest << 12 | ((entry & DEST_LOGICAL) != 0 ? 1L << 2 : 0);
        int data = (int) (entry & (VECTOR | DELIVERY_MODE | LEVEL));
        return new Msi(address, data);
    }

    /**
     * The route of a pin with {@code entry}: its message, or parked (nothing delivered) when it cannot deliver or is
     * masked, except a masked level-triggered pin that only the VMM drives: its message stays, so that KVM keeps
     * reporting the EOI of its vector in service whatever the kernel's version (before 6.2 the route scan did not
     * look at vectors still pending), and nothing signals its GSI.
     */
    static Msi route(long entry, boolean irqfd) {
        boolean masked = (entry & MASKED) != 0;
        if (delivers(entry) && (!masked || (!irqfd && (entry & LEVEL) != 0))) {
            return message(entry);
        }
        // parked: logical destination 0 matches no LAPIC; the vector and trigger mode keep a level EOI reported
        return new Msi(MSI_BASE | 1L << 2, (int) (entry & (VECTOR | LEVEL)));
    }
}
