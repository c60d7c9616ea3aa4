package dev.jkrun.kvm;

/**
 * struct kvm_run (linux/kvm.h), the page shared with the kernel per vCPU: the header and the exit union members
 * {@link Vcpu#run()} decodes. The union starts at 32.
 */
final class KvmRunLayout {
    static final int REQUEST_INTERRUPT_WINDOW = 0, IMMEDIATE_EXIT = 1, EXIT_REASON = 8,
            READY_FOR_INTERRUPT_INJECTION = 12, IF_FLAG = 13, FLAGS = 14, CR8 = 16, APIC_BASE = 24, UNION = 32;

    // KVM_EXIT_IO: u8 direction, u8 size, u16 port, u32 count, u64 data_offset (from the start of kvm_run)
    static final int IO_DIRECTION = 32, IO_SIZE = 33, IO_PORT = 34, IO_COUNT = 36, IO_DATA_OFFSET = 40;
    static final int KVM_EXIT_IO_IN = 0, KVM_EXIT_IO_OUT = 1;

    // KVM_EXIT_MMIO: u64 phys_addr, u8 data[8], u32 len, u8 is_write
    static final int MMIO_PHYS_ADDR = 32, MMIO_DATA = 40, MMIO_LEN = 48, MMIO_IS_WRITE = 52, MMIO_DATA_MAX = 8;

    // KVM_EXIT_FAIL_ENTRY: u64 hardware_entry_failure_reason, u32 cpu
    static final int FAIL_ENTRY_REASON = 32, FAIL_ENTRY_CPU = 40;

    // KVM_EXIT_INTERNAL_ERROR: u32 suberror, u32 ndata, u64 data[16]
    static final int INTERNAL_SUBERROR = 32, INTERNAL_NDATA = 36, INTERNAL_DATA = 40, INTERNAL_DATA_MAX = 16;
    // ... and for suberror KVM_INTERNAL_ERROR_EMULATION: u64 flags at data[0], then u8 insn_size, u8 insn_bytes[15]
    static final int EMULATION_FLAGS = 40, EMULATION_INSN_SIZE = 48, EMULATION_INSN_BYTES = 49,
            EMULATION_INSN_MAX = 15;

    // KVM_EXIT_SYSTEM_EVENT: u32 type, u32 ndata, u64 data[16] (data[0] is the legacy "flags")
    static final int SYSTEM_EVENT_TYPE = 32, SYSTEM_EVENT_NDATA = 36, SYSTEM_EVENT_DATA = 40,
            SYSTEM_EVENT_DATA_MAX = 16;

    // KVM_EXIT_DEBUG (x86 struct kvm_debug_exit_arch): u32 exception, u32 pad, u64 pc, u64 dr6, u64 dr7
    static final int DEBUG_EXCEPTION = 32, DEBUG_PC = 40, DEBUG_DR6 = 48, DEBUG_DR7 = 56;

    // KVM_EXIT_IOAPIC_EOI: u8 vector
    static final int EOI_VECTOR = 32;

    // KVM_EXIT_ARM_NISV: u64 esr_iss, u64 fault_ipa
    static final int NISV_ESR_ISS = 32, NISV_FAULT_IPA = 40;

    // exit_reason values
    static final int KVM_EXIT_UNKNOWN = 0, KVM_EXIT_EXCEPTION = 1, KVM_EXIT_IO = 2, KVM_EXIT_HYPERCALL = 3,
            KVM_EXIT_DEBUG = 4, KVM_EXIT_HLT = 5, KVM_EXIT_MMIO = 6, KVM_EXIT_IRQ_WINDOW_OPEN = 7,
            KVM_EXIT_SHUTDOWN = 8, KVM_EXIT_FAIL_ENTRY = 9, KVM_EXIT_INTR = 10, KVM_EXIT_INTERNAL_ERROR = 17,
            KVM_EXIT_SYSTEM_EVENT = 24, KVM_EXIT_IOAPIC_EOI = 26,
            KVM_EXIT_ARM_NISV = 28;

    private KvmRunLayout() {}
}
