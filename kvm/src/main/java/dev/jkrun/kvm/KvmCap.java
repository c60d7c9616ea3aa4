package dev.jkrun.kvm;

/** KVM_CAP_* numbers for {@link Kvm#checkExtension(int)} and {@link Vm#enableCap(int, long...)} (linux/kvm.h). */
public final class KvmCap {
    public static final int IRQCHIP = 0;
    public static final int HLT = 1;
    public static final int USER_MEMORY = 3;
    public static final int SET_TSS_ADDR = 4;
    public static final int EXT_CPUID = 7;
    /** Recommended maximum vCPUs per VM. */
    public static final int NR_VCPUS = 9;
    /** Maximum memory slots per VM. */
    public static final int NR_MEMSLOTS = 10;
    public static final int PIT = 11;
    public static final int MP_STATE = 14;
    public static final int SYNC_MMU = 16;
    public static final int SET_GUEST_DEBUG = 23;
    public static final int IRQ_ROUTING = 25;
    public static final int IRQFD = 32;
    public static final int PIT2 = 33;
    public static final int IOEVENTFD = 36;
    public static final int SET_IDENTITY_MAP_ADDR = 37;
    public static final int ADJUST_CLOCK = 39;
    public static final int INTERNAL_ERROR_DATA = 40;
    public static final int VCPU_EVENTS = 41;
    public static final int ENABLE_CAP = 54;
    public static final int XSAVE = 55;
    public static final int XCRS = 56;
    public static final int TSC_CONTROL = 60;
    public static final int GET_TSC_KHZ = 61;
    /** Hard maximum vCPUs per VM. */
    public static final int MAX_VCPUS = 66;
    public static final int TSC_DEADLINE_TIMER = 72;
    public static final int KVMCLOCK_CTRL = 76;
    public static final int SIGNAL_MSI = 77;
    public static final int READONLY_MEM = 81;
    public static final int IOEVENTFD_NO_LENGTH = 100;
    public static final int ONE_REG = 70;
    public static final int ARM_PSCI = 87;
    public static final int DEVICE_CTRL = 89;
    public static final int ARM_PSCI_0_2 = 102;
    public static final int ARM_VM_IPA_SIZE = 165;
    public static final int ARM_NISV_TO_USER = 177;
    public static final int SPLIT_IRQCHIP = 121;
    public static final int IOEVENTFD_ANY_LENGTH = 122;
    public static final int MAX_VCPU_ID = 128;
    public static final int X2APIC_API = 129;
    public static final int IMMEDIATE_EXIT = 136;
    public static final int X86_DISABLE_EXITS = 143;
    /** Emulation failures exit with the instruction bytes (enabled by {@link Kvm#createVm()} when present). */
    public static final int EXIT_ON_EMULATION_FAILURE = 204;
    public static final int SYSTEM_EVENT_DATA = 215;

    /** What libkrun requires before it creates a VM (notes §1.2). */
    /** What jkrun needs of KVM on every architecture, and on x86 also the TSS address (Intel's real mode). */
    static final int[] REQUIRED = {IRQCHIP, IOEVENTFD, IRQFD, USER_MEMORY};
    static final int[] REQUIRED_X86 = {SET_TSS_ADDR};

    private KvmCap() {}

    /** The constant's name, for messages ("KVM_CAP_IRQFD"); the number when it has no name here. */
    public static String name(int cap) {
        for (var f : KvmCap.class.getFields()) {
            try {
                if (f.getType() == int.class && f.getInt(null) == cap) {
                    return "KVM_CAP_" + f.getName();
                }
            } catch (IllegalAccessException e) {
                throw new AssertionError(e);
            }
        }
        return "KVM_CAP " + cap;
    }
}
