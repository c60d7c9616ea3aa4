package dev.jkrun.hypervisor;

import java.util.Arrays;
import java.util.HexFormat;

/** Why {@link Hypervisor.Vcpu#run()} returned: a decoded kvm_run exit. */
public sealed interface VcpuExit {

    /** IN/INS from {@code port}: the caller supplies {@code size * count} bytes with {@link Hypervisor.Vcpu#completeRead}. */
    record IoIn(int port, int size, int count) implements VcpuExit {
        public int length() { return size * count; }
    }

    /** OUT/OUTS to {@code port}: {@code data} holds {@code size * count} bytes (count > 1 for rep outs). */
    record IoOut(int port, int size, int count, byte[] data) implements VcpuExit {
        @Override
        public String toString() {
            return String.format("IoOut[port=0x%x, size=%d, count=%d, data=%s]", port, size, count,
                    HexFormat.of().formatHex(data));
        }
    }

    /** A read of {@code length} (1..8) bytes outside guest RAM: answer with {@link Hypervisor.Vcpu#completeRead}. */
    record MmioRead(long address, int length) implements VcpuExit {
        @Override
        public String toString() { return String.format("MmioRead[address=0x%x, length=%d]", address, length); }
    }

    /** A write of {@code data} (1..8 bytes) outside guest RAM. */
    record MmioWrite(long address, byte[] data) implements VcpuExit {
        @Override
        public String toString() {
            return String.format("MmioWrite[address=0x%x, data=%s]", address, HexFormat.of().formatHex(data));
        }
    }

    /** HLT handled in user space (no in-kernel irqchip; with one, KVM parks the vCPU instead). */
    record Hlt() implements VcpuExit {}

    /** KVM_EXIT_SHUTDOWN: a triple fault. */
    record Shutdown() implements VcpuExit {}

    /** KVM_EXIT_SYSTEM_EVENT: {@code type} is one of the KVM_SYSTEM_EVENT_* constants here. */
    record SystemEvent(int type, long[] data) implements VcpuExit {
        public static final int SHUTDOWN = 1, RESET = 2, CRASH = 3, WAKEUP = 4, SUSPEND = 5;

        @Override
        public String toString() { return "SystemEvent[type=" + type + ", data=" + Arrays.toString(data) + "]"; }
    }

    /** KVM_EXIT_INTERNAL_ERROR; {@code data} is the first {@code ndata} words of kvm_run.internal.data. */
    record InternalError(int suberror, long[] data) implements VcpuExit {
        /** KVM_INTERNAL_ERROR_EMULATION: the instruction emulator gave up. */
        public static final int EMULATION = 1, SIMUL_EX = 2, DELIVERY_EV = 3, UNEXPECTED_EXIT_REASON = 4;
        /** KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES in data[0]. */
        public static final long FLAG_INSTRUCTION_BYTES = 1;

        /**
         * The bytes of the instruction that failed to emulate, when KVM reported them (an emulation failure with
         * KVM_CAP_EXIT_ON_EMULATION_FAILURE enabled); otherwise empty. Layout: data[0] = flags, then u8 insn_size
         * and u8 insn_bytes[15] over data[1..2].
         */
        public byte[] instructionBytes() {
            if (suberror != EMULATION || data.length < 3 || (data[0] & FLAG_INSTRUCTION_BYTES) == 0) {
                return new byte[0];
            }
            byte[] raw = new byte[16];
            for (int i = 0; i < 16; i++) {
                raw[i] = (byte) (data[1 + i / 8] >>> (8 * (i % 8)));
            }
            int size = Math.min(raw[0] & 0xFF, 15);
            return Arrays.copyOfRange(raw, 1, 1 + size);
        }

        @Override
        public String toString() {
            StringBuilder b = new StringBuilder("InternalError[suberror=").append(suberror);
            byte[] insn = instructionBytes();
            if (insn.length > 0) {
                b.append(", instruction=").append(HexFormat.of().formatHex(insn));
            }
            b.append(", data=[");
            for (int i = 0; i < data.length; i++) {
                b.append(i == 0 ? "" : ", ").append("0x").append(Long.toHexString(data[i]));
            }
            return b.append("]]").toString();
        }
    }

    /**
     * KVM_EXIT_IOAPIC_EOI (split irqchip only): the guest's LAPIC took an EOI for {@code vector}, which a
     * level-triggered MSI route of an IOAPIC pin names, so the user-space IOAPIC can clear that pin's Remote IRR.
     */
    record IoapicEoi(int vector) implements VcpuExit {}

    /**
     * An arm64 data abort the hypervisor could not decode into an MMIO access (no valid syndrome: a load/store pair,
     * a writeback, an access across pages) at guest-physical {@code address}; KVM_EXIT_ARM_NISV, {@code esrIss} the
     * syndrome's ISS bits as far as known.
     */
    record DataAbortWithoutSyndrome(long address, long esrIss) implements VcpuExit {
        @Override
        public String toString() {
            return String.format("DataAbortWithoutSyndrome[address=0x%x, esrIss=0x%x]", address, esrIss);
        }
    }

    /**
     * An arm64 exception the hypervisor left to the VMM and the VMM does not handle (Hypervisor.framework: an
     * instruction fetch outside RAM, a BRK, an exception class jkrun has no rule for): {@code syndrome} is ESR_EL2,
     * {@code address} the faulting guest-physical address where there is one.
     */
    record UnhandledException(long syndrome, long address) implements VcpuExit {
        @Override
        public String toString() {
            return String.format("UnhandledException[EC=0x%02x, ESR=0x%x, address=0x%x]", (syndrome >>> 26) & 0x3F,
                    syndrome, address);
        }
    }

    /** KVM_EXIT_FAIL_ENTRY: the hardware refused to enter the guest (bad vCPU state). */
    record FailEntry(long hardwareEntryFailureReason, int cpu) implements VcpuExit {}

    /** KVM_RUN returned EINTR (a kick, or immediate_exit) or exited with KVM_EXIT_INTR. */
    record Interrupted() implements VcpuExit {}

    /** KVM_EXIT_DEBUG: a debug exception ({@code exception} is the vector) at {@code pc}. */
    record Debug(int exception, long pc, long dr6, long dr7) implements VcpuExit {}

    /** Any exit reason not decoded above (the KVM_EXIT_* number). */
    record Unknown(int reason) implements VcpuExit {}
}
