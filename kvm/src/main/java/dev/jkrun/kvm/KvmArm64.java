package dev.jkrun.kvm;

import dev.jkrun.hypervisor.Arm64Vm;
import dev.jkrun.hypervisor.Hypervisor;
import dev.jkrun.libc.NativeCallException;
import java.util.List;

/**
 * aarch64 on KVM: PSCI 0.2 in the kernel (KVM_ARM_VCPU_INIT with the PSCI feature, secondaries POWER_OFF until
 * CPU_ON), the in-kernel vGIC through KVM_CREATE_DEVICE (GICv3; GICv2 only where no v3 can be made), SPIs by
 * KVM_IRQ_LINE, and a data abort without syndrome as an exit (KVM_CAP_ARM_NISV_TO_USER) where the host has it.
 */
final class KvmArm64 implements Arm64Vm {
    /** KVM_DEV_ARM_VGIC_GRP_* and their attributes (Documentation/virt/kvm/devices/arm-vgic-v3.rst). */
    private static final int VGIC_GRP_ADDR = 0, VGIC_GRP_NR_IRQS = 3, VGIC_GRP_CTRL = 4;
    private static final long VGIC_V2_ADDR_DIST = 0, VGIC_V2_ADDR_CPU = 1, VGIC_V3_ADDR_DIST = 2,
            VGIC_V3_ADDR_REDIST = 3, VGIC_CTRL_INIT = 0;
    /** KVM_IRQ_LINE's irq field for an SPI: type 1 in bits 24–27, the INTID in bits 0–15. */
    private static final int IRQ_TYPE_SPI = 1 << 24;
    /** MPIDR_EL1's affinity fields (Aff3 at 32–39, Aff2..0 at 0–23), without RES1 bit 31 and the MT/U bits. */
    private static final long MPIDR_AFFINITY = 0xFF_00FF_FFFFL;

    private final Vm vm;
    private Vm.ArmVcpuInit vcpuInit;
    private KvmDevice gic;
    private int nrIrqs;

    KvmArm64(Vm vm) { this.vm = vm; }

    /**
     * The in-kernel GICv3, or GICv2 where the host cannot make a v3 at all (a vGIC, once made, stays with the VM even
     * when its fd is closed: a v3 that fails later is an error, not a reason to try v2).
     */
    @Override
    public Gic createGic(int vcpus, GicPlacement at, List<AutoCloseable> resources) {
        if (vm.checkExtension(KvmCap.ARM_PSCI_0_2) <= 0) {
            throw new IllegalStateException("this host's KVM has no PSCI 0.2 (KVM_CAP_ARM_PSCI_0_2)");
        }
        if (vm.checkExtension(KvmCap.ARM_NISV_TO_USER) > 0) { // a data abort without syndrome becomes a stop reason
            vm.enableCap(KvmCap.ARM_NISV_TO_USER);
        }
        vcpuInit = vm.armPreferredTarget().with(Arm64Regs.FEATURE_PSCI_0_2);
        nrIrqs = at.nrIrqs();
        Gic version;
        try {
            gic = vm.createDevice(KvmDevice.ARM_VGIC_V3);
            version = Gic.V3;
        } catch (NativeCallException e) {
            if (vcpus > 8) {
                throw new IllegalArgumentException("this host has no GICv3 (" + e.getMessage()
                        + "), and a GICv2 serves at most 8 vCPUs, not " + vcpus);
            }
            try {
                gic = vm.createDevice(KvmDevice.ARM_VGIC_V2);
            } catch (RuntimeException v2) {
                v2.addSuppressed(e);
                throw v2;
            }
            version = Gic.V2;
        }
        resources.add(gic);
        if (version == Gic.V3) {
            gic.setAttr(VGIC_GRP_ADDR, VGIC_V3_ADDR_DIST, at.distributor());
            gic.setAttr(VGIC_GRP_ADDR, VGIC_V3_ADDR_REDIST, at.redistributors());
        } else {
            gic.setAttr(VGIC_GRP_ADDR, VGIC_V2_ADDR_DIST, at.distributor());
            gic.setAttr(VGIC_GRP_ADDR, VGIC_V2_ADDR_CPU, at.v2CpuInterface());
        }
        return version;
    }

    @Override
    public void setSpi(int intid, boolean level) { vm.irqLine(IRQ_TYPE_SPI | intid, level); }

    /** KVM's default arm64 routing: GSI n is SPI n, INTID 32 + n. */
    @Override
    public int irqfdGsi(int intid) { return intid - 32; }

    @Override
    public void initVcpu(Hypervisor.Vcpu hv, int id, long entry, long x0) {
        Vcpu vcpu = (Vcpu) hv;
        vcpu.armInit(id == 0 ? vcpuInit : vcpuInit.with(Arm64Regs.FEATURE_POWER_OFF));
        vcpu.setOneReg(Arm64Regs.PSTATE, Arm64Regs.PSTATE_EL1H_DAIF_MASKED);
        if (id == 0) {
            vcpu.setOneReg(Arm64Regs.PC, entry);
            vcpu.setOneReg(Arm64Regs.x(0), x0);
            for (int r = 1; r <= 3; r++) {
                vcpu.setOneReg(Arm64Regs.x(r), 0);
            }
        }
    }

    /** The vGIC is initialized once every vCPU exists (KVM refuses irqfds before: EAGAIN). */
    @Override
    public void vcpusCreated(List<Hypervisor.Vcpu> vcpus) {
        gic.setAttr32(VGIC_GRP_NR_IRQS, 0, nrIrqs);
        gic.control(VGIC_GRP_CTRL, VGIC_CTRL_INIT);
    }

    @Override
    public long mpidr(Hypervisor.Vcpu vcpu) { return ((Vcpu) vcpu).getOneReg(Arm64Regs.MPIDR_EL1) & MPIDR_AFFINITY; }
}
