package dev.jkrun.kvm;

/**
 * Offsets of the small ioctl argument structs, each used by one call (linux/kvm.h; x86 ones from asm/kvm.h).
 * The larger register structs have their own *Layout class. StructLayoutTest checks all of them against gcc.
 */
final class ArgLayouts {
    private ArgLayouts() {}

    /** struct kvm_userspace_memory_region. */
    static final int MEMORY_REGION_SIZE = 32, MR_SLOT = 0, MR_FLAGS = 4, MR_GUEST_PHYS_ADDR = 8, MR_MEMORY_SIZE = 16,
            MR_USERSPACE_ADDR = 24;

    /** struct kvm_irq_level: union { u32 irq; s32 status; }, u32 level. */
    static final int IRQ_LEVEL_SIZE = 8, IL_IRQ = 0, IL_LEVEL = 4;

    /** struct kvm_irqfd. */
    static final int IRQFD_SIZE = 32, IRQFD_FD = 0, IRQFD_GSI = 4, IRQFD_FLAGS = 8, IRQFD_RESAMPLEFD = 12;
    static final int KVM_IRQFD_FLAG_DEASSIGN = 1;

    /** struct kvm_pit_config: u32 flags, u32 pad[15]. */
    static final int PIT_CONFIG_SIZE = 64, PIT_FLAGS = 0;
    static final int KVM_PIT_SPEAKER_DUMMY = 1;

    /** struct kvm_ioeventfd. */
    static final int IOEVENTFD_SIZE = 64, IOE_DATAMATCH = 0, IOE_ADDR = 8, IOE_LEN = 16, IOE_FD = 20, IOE_FLAGS = 24;
    static final int KVM_IOEVENTFD_FLAG_DATAMATCH = 1, KVM_IOEVENTFD_FLAG_PIO = 2, KVM_IOEVENTFD_FLAG_DEASSIGN = 4;

    /** struct kvm_enable_cap: u32 cap, u32 flags, u64 args[4], u8 pad[64]. */
    static final int ENABLE_CAP_SIZE = 104, EC_CAP = 0, EC_FLAGS = 4, EC_ARGS = 8, EC_MAX_ARGS = 4;

    /** struct kvm_signal_mask: u32 len, u8 sigset[] (the kernel sigset is 8 bytes on x86_64). */
    static final int SIGNAL_MASK_HEADER = 4, SM_LEN = 0, SM_SIGSET = 4, KERNEL_SIGSET_BYTES = 8;

    /** struct kvm_cpuid2: u32 nent, u32 padding, struct kvm_cpuid_entry2 entries[]. */
    static final int CPUID2_HEADER = 8, CPUID2_NENT = 0, CPUID2_ENTRIES = 8;

    /** struct kvm_msrs: u32 nmsrs, u32 pad, struct kvm_msr_entry entries[]. */
    static final int MSRS_HEADER = 8, MSRS_NMSRS = 0, MSRS_ENTRIES = 8;

    /** struct kvm_msr_list: u32 nmsrs, u32 indices[]. */
    static final int MSR_LIST_SIZE = 4, ML_NMSRS = 0, ML_INDICES = 4;

    /**
     * struct kvm_irq_routing: u32 nr, u32 flags, struct kvm_irq_routing_entry entries[]; each entry u32 gsi, u32 type,
     * u32 flags, u32 pad, then a 32-byte union whose MSI member is u32 address_lo, address_hi, data.
     */
    static final int IRQ_ROUTING_HEADER = 8, IRT_NR = 0, IRT_ENTRIES = 8;
    static final int IRQ_ROUTING_ENTRY_SIZE = 48, IRE_GSI = 0, IRE_TYPE = 4, IRE_MSI_ADDRESS_LO = 16,
            IRE_MSI_ADDRESS_HI = 20, IRE_MSI_DATA = 24;
    static final int KVM_IRQ_ROUTING_MSI = 2;

    /** struct kvm_msi: u32 address_lo, address_hi, data, flags, devid, u8 pad[12]. */
    static final int MSI_SIZE = 32, MSI_ADDRESS_LO = 0, MSI_ADDRESS_HI = 4, MSI_DATA = 8;

    /** struct kvm_mp_state: u32 mp_state. */
    static final int MP_STATE_SIZE = 4;

    /** struct kvm_one_reg: u64 id, u64 addr (of the value). */
    static final int ONE_REG_SIZE = 16, OR_ID = 0, OR_ADDR = 8;

    /** struct kvm_vcpu_init (arm64): u32 target, u32 features[7]. */
    static final int VCPU_INIT_SIZE = 32, VI_TARGET = 0, VI_FEATURES = 4, VI_FEATURE_WORDS = 7;

    /** struct kvm_create_device: u32 type, u32 fd (out), u32 flags. */
    static final int CREATE_DEVICE_SIZE = 12, CD_TYPE = 0, CD_FD = 4, CD_FLAGS = 8;

    /** struct kvm_device_attr: u32 flags, u32 group, u64 attr, u64 addr (of the value). */
    static final int DEVICE_ATTR_SIZE = 24, DA_FLAGS = 0, DA_GROUP = 4, DA_ATTR = 8, DA_ADDR = 16;
}
