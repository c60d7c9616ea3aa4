package dev.jkrun.kvm;

/**
 * The KVM ioctl request numbers (linux/kvm.h), computed with the kernel's _IOC encoding so that each one names
 * the size of its argument struct. StructLayoutTest compares every value with the C macros.
 */
final class KvmIoctls {
    private static final int KVMIO = 0xAE;
    private static final int NONE = 0, WRITE = 1, READ = 2;

    private KvmIoctls() {}

    /** asm-generic/ioctl.h: dir(2) << 30 | size(14) << 16 | type(8) << 8 | nr(8). */
    static long ioc(int dir, int nr, int size) {
        return ((long) dir << 30 | (long) size << 16 | (long) KVMIO << 8 | nr) & 0xFFFF_FFFFL;
    }

    static long io(int nr) { return ioc(NONE, nr, 0); }

    static long ior(int nr, int size) { return ioc(READ, nr, size); }

    static long iow(int nr, int size) { return ioc(WRITE, nr, size); }

    static long iowr(int nr, int size) { return ioc(READ | WRITE, nr, size); }

    // /dev/kvm
    static final long KVM_GET_API_VERSION = io(0x00);
    static final long KVM_CREATE_VM = io(0x01);
    static final long KVM_GET_MSR_INDEX_LIST = iowr(0x02, ArgLayouts.MSR_LIST_SIZE);
    static final long KVM_CHECK_EXTENSION = io(0x03);
    static final long KVM_GET_VCPU_MMAP_SIZE = io(0x04);
    static final long KVM_GET_SUPPORTED_CPUID = iowr(0x05, ArgLayouts.CPUID2_HEADER);

    // VM fd
    static final long KVM_CREATE_VCPU = io(0x41);
    static final long KVM_SET_USER_MEMORY_REGION = iow(0x46, ArgLayouts.MEMORY_REGION_SIZE);
    static final long KVM_SET_TSS_ADDR = io(0x47);
    static final long KVM_SET_IDENTITY_MAP_ADDR = iow(0x48, 8);
    static final long KVM_CREATE_IRQCHIP = io(0x60);
    static final long KVM_IRQ_LINE = iow(0x61, ArgLayouts.IRQ_LEVEL_SIZE);
    static final long KVM_SET_GSI_ROUTING = iow(0x6a, ArgLayouts.IRQ_ROUTING_HEADER);
    static final long KVM_IRQFD = iow(0x76, ArgLayouts.IRQFD_SIZE);
    static final long KVM_CREATE_PIT2 = iow(0x77, ArgLayouts.PIT_CONFIG_SIZE);
    static final long KVM_IOEVENTFD = iow(0x79, ArgLayouts.IOEVENTFD_SIZE);
    static final long KVM_ENABLE_CAP = iow(0xa3, ArgLayouts.ENABLE_CAP_SIZE);
    static final long KVM_SIGNAL_MSI = iow(0xa5, ArgLayouts.MSI_SIZE);
    static final long KVM_ARM_PREFERRED_TARGET = ior(0xaf, ArgLayouts.VCPU_INIT_SIZE);
    static final long KVM_CREATE_DEVICE = iowr(0xe0, ArgLayouts.CREATE_DEVICE_SIZE);

    // device fd (KVM_CREATE_DEVICE)
    static final long KVM_SET_DEVICE_ATTR = iow(0xe1, ArgLayouts.DEVICE_ATTR_SIZE);
    static final long KVM_GET_DEVICE_ATTR = iow(0xe2, ArgLayouts.DEVICE_ATTR_SIZE);
    static final long KVM_HAS_DEVICE_ATTR = iow(0xe3, ArgLayouts.DEVICE_ATTR_SIZE);

    // vCPU fd
    static final long KVM_RUN = io(0x80);
    static final long KVM_GET_REGS = ior(0x81, Regs.SIZE);
    static final long KVM_SET_REGS = iow(0x82, Regs.SIZE);
    static final long KVM_GET_SREGS = ior(0x83, Sregs.SIZE);
    static final long KVM_SET_SREGS = iow(0x84, Sregs.SIZE);
    static final long KVM_GET_MSRS = iowr(0x88, ArgLayouts.MSRS_HEADER);
    static final long KVM_SET_MSRS = iow(0x89, ArgLayouts.MSRS_HEADER);
    static final long KVM_SET_SIGNAL_MASK = iow(0x8b, ArgLayouts.SIGNAL_MASK_HEADER);
    static final long KVM_GET_FPU = ior(0x8c, Fpu.SIZE);
    static final long KVM_SET_FPU = iow(0x8d, Fpu.SIZE);
    static final long KVM_GET_LAPIC = ior(0x8e, LapicState.SIZE);
    static final long KVM_SET_LAPIC = iow(0x8f, LapicState.SIZE);
    static final long KVM_SET_CPUID2 = iow(0x90, ArgLayouts.CPUID2_HEADER);
    static final long KVM_GET_MP_STATE = ior(0x98, ArgLayouts.MP_STATE_SIZE);
    static final long KVM_SET_MP_STATE = iow(0x99, ArgLayouts.MP_STATE_SIZE);
    static final long KVM_GET_ONE_REG = iow(0xab, ArgLayouts.ONE_REG_SIZE);
    static final long KVM_SET_ONE_REG = iow(0xac, ArgLayouts.ONE_REG_SIZE);
    static final long KVM_ARM_VCPU_INIT = iow(0xae, ArgLayouts.VCPU_INIT_SIZE);
}
