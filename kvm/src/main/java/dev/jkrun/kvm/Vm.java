package dev.jkrun.kvm;

import static dev.jkrun.kvm.ArgLayouts.*;

import dev.jkrun.libc.AnonymousMapping;
import dev.jkrun.libc.EventFd;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.Ioctl;
import dev.jkrun.memory.GuestAddress;
import java.util.OptionalLong;
import dev.jkrun.libc.NativeBuffer;

/**
 * A VM fd: memory slots, the in-kernel irqchip and PIT, irqfd/ioeventfd wiring, vCPU creation. The calls are
 * independent ioctls, safe from any thread. Closing the VM does not close its vCPUs (each holds the VM alive
 * in the kernel until it is closed too).
 */
public final class Vm implements dev.jkrun.hypervisor.Hypervisor.Vm {
    private final FileDescriptor fd;
    private final int vcpuMmapSize;

    Vm(FileDescriptor fd, int vcpuMmapSize) {
        this.fd = fd;
        this.vcpuMmapSize = vcpuMmapSize;
    }

    /** KVM_SET_USER_MEMORY_REGION: guest RAM at {@code guestAddress} backed by all of {@code mapping}, flags 0. */
    public void setUserMemoryRegion(int slot, GuestAddress guestAddress, AnonymousMapping mapping) {
        setRegion(slot, guestAddress.value(), mapping.size(), mapping.address());
    }

    @Override
    public void mapMemory(int slot, GuestAddress at, AnonymousMapping mapping) { setUserMemoryRegion(slot, at, mapping); }

    @Override
    public void unmapMemory(int slot) { removeUserMemoryRegion(slot); }

    /** KVM's ioeventfds (MMIO) and irqfds. */
    @Override
    public java.util.Optional<dev.jkrun.hypervisor.Hypervisor.IoEvents> ioEvents() {
        if (!EventFd.kernelEventFds()) { // -Djkrun.eventfd=pipe: KVM takes only eventfd(2)s
            return java.util.Optional.empty();
        }
        return java.util.Optional.of(new dev.jkrun.hypervisor.Hypervisor.IoEvents() {
            @Override
            public void registerMmioNotify(EventFd fd, long address, int length, OptionalLong datamatch) {
                registerIoeventfd(fd, IoEventAddress.MMIO, address, length, datamatch);
            }

            @Override
            public void registerIrqfd(EventFd fd, int gsi) { Vm.this.registerIrqfd(fd, gsi); }
        });
    }

    /** Deletes a slot (KVM_SET_USER_MEMORY_REGION with size 0). */
    public void removeUserMemoryRegion(int slot) { setRegion(slot, 0, 0, 0); }

    private void setRegion(int slot, long guest, long size, long host) {
        if (slot < 0) {
            throw new IllegalArgumentException("negative memory slot " + slot);
        }
        NativeBuffer p = Ioctl.allocate(MEMORY_REGION_SIZE);
        p.putInt(MR_SLOT, slot);
        p.putInt(MR_FLAGS, 0);
        p.putLong(MR_GUEST_PHYS_ADDR, guest);
        p.putLong(MR_MEMORY_SIZE, size);
        p.putLong(MR_USERSPACE_ADDR, host);
        Ioctl.call(fd, "KVM_SET_USER_MEMORY_REGION", KvmIoctls.KVM_SET_USER_MEMORY_REGION, p);
    }

    /** KVM_SET_TSS_ADDR: three pages of guest-physical space KVM needs on Intel (libkrun: 0xFFFB_D000). */
    public void setTssAddress(long address) {
        Ioctl.call(fd, "KVM_SET_TSS_ADDR", KvmIoctls.KVM_SET_TSS_ADDR, address);
    }

    /** KVM_SET_IDENTITY_MAP_ADDR: one page for the real-mode identity map on Intel (default 0xFFFB_C000). */
    public void setIdentityMapAddress(long address) {
        NativeBuffer p = Ioctl.allocate(8);
        p.putLong(0, address);
        Ioctl.call(fd, "KVM_SET_IDENTITY_MAP_ADDR", KvmIoctls.KVM_SET_IDENTITY_MAP_ADDR, p);
    }

    /** KVM_CREATE_IRQCHIP: in-kernel PIC, IOAPIC and per-vCPU LAPIC. Call before creating vCPUs. */
    public void createIrqchip() {
        Ioctl.call(fd, "KVM_CREATE_IRQCHIP", KvmIoctls.KVM_CREATE_IRQCHIP, 0L);
    }

    /** KVM_CREATE_PIT2 with KVM_PIT_SPEAKER_DUMMY (port 0x61 reads answered in the kernel). */
    public void createPit2() {
        NativeBuffer p = Ioctl.allocate(PIT_CONFIG_SIZE);
        p.putInt(PIT_FLAGS, KVM_PIT_SPEAKER_DUMMY);
        Ioctl.call(fd, "KVM_CREATE_PIT2", KvmIoctls.KVM_CREATE_PIT2, p);
    }

    /**
     * KVM_ENABLE_CAP(KVM_CAP_SPLIT_IRQCHIP): LAPICs in the kernel, the IOAPIC (with {@code ioapicPins} pins routed
     * as GSIs 0..pins-1) and no PIC or PIT: the VMM emulates the IOAPIC and routes its pins with
     * {@link #setMsiRoutes}. Instead of {@link #createIrqchip}, before creating vCPUs.
     */
    public void enableSplitIrqchip(int ioapicPins) {
        enableCap(KvmCap.SPLIT_IRQCHIP, ioapicPins);
    }

    /** One GSI routed to an MSI: a signal on the GSI (irqfd, KVM_IRQ_LINE) writes {@code data} to {@code address}. */
    public record MsiRoute(int gsi, long address, int data) {}

    /** KVM_MAX_IRQ_ROUTES. */
    static final int MAX_ROUTES = 4096;

    /** KVM_SET_GSI_ROUTING: replaces the whole routing table with {@code routes} (split irqchip: MSI routes only). */
    public void setMsiRoutes(java.util.List<MsiRoute> routes) {
        if (routes.size() > MAX_ROUTES) {
            throw new IllegalArgumentException(routes.size() + " GSI routes (at most " + MAX_ROUTES + ")");
        }
        NativeBuffer p = Ioctl.allocate(IRQ_ROUTING_HEADER + IRQ_ROUTING_ENTRY_SIZE * routes.size());
        p.putInt(IRT_NR, routes.size());
        for (int i = 0; i < routes.size(); i++) {
            MsiRoute r = routes.get(i);
            long e = IRT_ENTRIES + (long) IRQ_ROUTING_ENTRY_SIZE * i;
            p.putInt(e + IRE_GSI, r.gsi());
            p.putInt(e + IRE_TYPE, KVM_IRQ_ROUTING_MSI);
            p.putInt(e + IRE_MSI_ADDRESS_LO, (int) r.address());
            p.putInt(e + IRE_MSI_ADDRESS_HI, (int) (r.address() >>> 32));
            p.putInt(e + IRE_MSI_DATA, r.data());
        }
        Ioctl.call(fd, "KVM_SET_GSI_ROUTING", KvmIoctls.KVM_SET_GSI_ROUTING, p);
    }

    /** One struct kvm_msi per thread that signals MSIs (device threads, once per interrupt): no allocation each. */
    private static final ThreadLocal<NativeBuffer> MSI = ThreadLocal.withInitial(() -> Ioctl.allocate(MSI_SIZE));

    /**
     * KVM_SIGNAL_MSI: delivers one MSI now. Returns KVM's answer: how many LAPICs took it (positive), 0 when LAPICs
     * matched but none accepted it (software-disabled, or coalesced), -1 when no vCPU matched the destination (the
     * ioctl's -1, read as EPERM). All three are the guest's doing, not errors.
     */
    public int signalMsi(long address, int data) {
        NativeBuffer p = MSI.get();
        p.putInt(MSI_ADDRESS_LO, (int) address);
        p.putInt(MSI_ADDRESS_HI, (int) (address >>> 32));
        p.putInt(MSI_DATA, data);
        while (true) {
            int rc = Ioctl.callRaw(fd, KvmIoctls.KVM_SIGNAL_MSI, p.address());
            if (rc >= 0) {
                return rc;
            }
            if (rc == -dev.jkrun.libc.Errno.EPERM) {
                return -1;
            }
            if (rc != -dev.jkrun.libc.Errno.EINTR) {
                throw new dev.jkrun.libc.NativeCallException("KVM_SIGNAL_MSI", -rc);
            }
        }
    }

    /** KVM_IRQFD: a signal on {@code fd} raises (edge) {@code gsi} on the in-kernel irqchip. */
    public void registerIrqfd(EventFd fd, int gsi) { irqfd(fd, gsi, 0); }

    public void unregisterIrqfd(EventFd fd, int gsi) { irqfd(fd, gsi, KVM_IRQFD_FLAG_DEASSIGN); }

    private void irqfd(EventFd eventFd, int gsi, int flags) {
        NativeBuffer p = Ioctl.allocate(IRQFD_SIZE);
        p.putInt(IRQFD_FD, eventFd.fd().raw());
        p.putInt(IRQFD_GSI, gsi);
        p.putInt(IRQFD_FLAGS, flags);
        Ioctl.call(this.fd, "KVM_IRQFD", KvmIoctls.KVM_IRQFD, p);
    }

    /**
     * KVM_IOEVENTFD: a guest write of {@code length} bytes (1, 2, 4 or 8; 0 = any length, MMIO only) to
     * {@code address} signals {@code fd} in the kernel instead of exiting; with {@code datamatch}, only writes of
     * that value do.
     */
    public void registerIoeventfd(EventFd fd, IoEventAddress where, long address, int length,
            OptionalLong datamatch) {
        ioeventfd(fd, where, address, length, datamatch, 0);
    }

    /** Removes a registration; the arguments must match those it was registered with. */
    public void unregisterIoeventfd(EventFd fd, IoEventAddress where, long address, int length,
            OptionalLong datamatch) {
        ioeventfd(fd, where, address, length, datamatch, KVM_IOEVENTFD_FLAG_DEASSIGN);
    }

    private void ioeventfd(EventFd eventFd, IoEventAddress where, long address, int length, OptionalLong datamatch,
            int flags) {
        if (length != 0 && length != 1 && length != 2 && length != 4 && length != 8) {
            throw new IllegalArgumentException("ioeventfd length must be 0, 1, 2, 4 or 8: " + length);
        }
        if (where == IoEventAddress.PIO && (address < 0 || address > 0xFFFF)) {
            throw new IllegalArgumentException("PIO ioeventfd port out of range: " + address);
        }
        NativeBuffer p = Ioctl.allocate(IOEVENTFD_SIZE);
        if (datamatch.isPresent()) {
            flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
            p.putLong(IOE_DATAMATCH, datamatch.getAsLong());
        }
        if (where == IoEventAddress.PIO) {
            flags |= KVM_IOEVENTFD_FLAG_PIO;
        }
        p.putLong(IOE_ADDR, address);
        p.putInt(IOE_LEN, length);
        p.putInt(IOE_FD, eventFd.fd().raw());
        p.putInt(IOE_FLAGS, flags);
        Ioctl.call(this.fd, "KVM_IOEVENTFD", KvmIoctls.KVM_IOEVENTFD, p);
    }

    private KvmArm64 arm64;

    /** On an aarch64 host: the GIC, SPIs and vCPU start state (see {@link KvmArm64}). */
    @Override
    public synchronized java.util.Optional<dev.jkrun.hypervisor.Arm64Vm> arm64() {
        if (Kvm.X86) {
            return java.util.Optional.empty();
        }
        if (arm64 == null) {
            arm64 = new KvmArm64(this);
        }
        return java.util.Optional.of(arm64);
    }

    /** KVM_IRQ_LINE: sets an in-kernel irqchip input (legacy PIC/IOAPIC pin) high or low. */
    public void irqLine(int irq, boolean high) {
        NativeBuffer p = Ioctl.allocate(IRQ_LEVEL_SIZE);
        p.putInt(IL_IRQ, irq);
        p.putInt(IL_LEVEL, high ? 1 : 0);
        Ioctl.call(fd, "KVM_IRQ_LINE", KvmIoctls.KVM_IRQ_LINE, p);
    }

    /** KVM_CREATE_VCPU and the mmap of its kvm_run page. */
    @Override
    public Vcpu createVcpu(int id) {
        int rc = Ioctl.call(fd, "KVM_CREATE_VCPU", KvmIoctls.KVM_CREATE_VCPU, id);
        FileDescriptor vcpuFd = FileDescriptor.adopt(rc, "vcpu" + id);
        try {
            return new Vcpu(id, vcpuFd, vcpuMmapSize);
        } catch (RuntimeException e) {
            vcpuFd.close();
            throw e;
        }
    }

    /**
     * arm64 KVM_ARM_VCPU_INIT's argument: the CPU {@code target} and up to 224 feature bits (KVM_ARM_VCPU_*:
     * {@link Arm64Regs#FEATURE_POWER_OFF}, {@link Arm64Regs#FEATURE_PSCI_0_2}).
     */
    public record ArmVcpuInit(int target, int[] features) {
        public ArmVcpuInit {
            if (features.length != ArgLayouts.VI_FEATURE_WORDS) {
                throw new IllegalArgumentException("kvm_vcpu_init has " + ArgLayouts.VI_FEATURE_WORDS + " feature words");
            }
            features = features.clone();
        }

        /** This init with feature bit {@code bit} set as well. */
        public ArmVcpuInit with(int bit) {
            int[] f = features.clone();
            f[bit / 32] |= 1 << (bit % 32);
            return new ArmVcpuInit(target, f);
        }

        public boolean has(int bit) { return (features[bit / 32] & (1 << (bit % 32))) != 0; }

        void write(NativeBuffer p) {
            p.putInt(ArgLayouts.VI_TARGET, target);
            for (int i = 0; i < features.length; i++) {
                p.putInt(ArgLayouts.VI_FEATURES + 4L * i, features[i]);
            }
        }
    }

    /** KVM_ARM_PREFERRED_TARGET: the target (and default features) this host's CPUs should be initialized with. */
    public ArmVcpuInit armPreferredTarget() {
        NativeBuffer p = Ioctl.allocate(ArgLayouts.VCPU_INIT_SIZE);
        Ioctl.call(fd, "KVM_ARM_PREFERRED_TARGET", KvmIoctls.KVM_ARM_PREFERRED_TARGET, p);
        int[] f = new int[ArgLayouts.VI_FEATURE_WORDS];
        for (int i = 0; i < f.length; i++) {
            f[i] = p.getInt(ArgLayouts.VI_FEATURES + 4L * i);
        }
        return new ArmVcpuInit(p.getInt(ArgLayouts.VI_TARGET), f);
    }

    /** KVM_CREATE_DEVICE of {@code type} (KVM_DEV_TYPE_*: {@link KvmDevice#ARM_VGIC_V3}, …). */
    public KvmDevice createDevice(int type) {
        NativeBuffer p = Ioctl.allocate(ArgLayouts.CREATE_DEVICE_SIZE);
        p.putInt(ArgLayouts.CD_TYPE, type);
        Ioctl.call(fd, "KVM_CREATE_DEVICE(" + KvmDevice.typeName(type) + ")", KvmIoctls.KVM_CREATE_DEVICE, p);
        return new KvmDevice(FileDescriptor.adopt(p.getInt(ArgLayouts.CD_FD), KvmDevice.typeName(type)), type);
    }

    /** KVM_ENABLE_CAP on the VM with up to four arguments. */
    public void enableCap(int cap, long... args) {
        if (args.length > EC_MAX_ARGS) {
            throw new IllegalArgumentException("KVM_ENABLE_CAP takes at most 4 arguments, got " + args.length);
        }
        NativeBuffer p = Ioctl.allocate(ENABLE_CAP_SIZE);
        p.putInt(EC_CAP, cap);
        for (int i = 0; i < args.length; i++) {
            p.putLong(EC_ARGS + 8L * i, args[i]);
        }
        Ioctl.call(fd, "KVM_ENABLE_CAP(" + KvmCap.name(cap) + ")", KvmIoctls.KVM_ENABLE_CAP, p);
    }

    /** KVM_CHECK_EXTENSION on the VM fd (some answers are per VM, e.g. NR_MEMSLOTS). */
    public int checkExtension(int cap) {
        return Ioctl.call(fd, "KVM_CHECK_EXTENSION", KvmIoctls.KVM_CHECK_EXTENSION, cap);
    }

    @Override
    public void close() { fd.close(); }
}
