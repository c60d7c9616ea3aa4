package dev.jkrun.kvm;

import dev.jkrun.libc.Errno;
import dev.jkrun.libc.FileDescriptor;
import dev.jkrun.libc.Ioctl;
import dev.jkrun.libc.NativeBuffer;
import dev.jkrun.libc.NativeCallException;

/**
 * A device made in the kernel with KVM_CREATE_DEVICE (arm64's vGIC), configured through its attributes
 * (KVM_SET_DEVICE_ATTR / KVM_HAS_DEVICE_ATTR; Documentation/virt/kvm/devices/arm-vgic-v3.rst).
 */
public final class KvmDevice implements AutoCloseable {
    /** enum kvm_device_type (linux/kvm.h). */
    public static final int ARM_VGIC_V2 = 5, ARM_VGIC_V3 = 7;

    private final FileDescriptor fd;
    private final int type;

    KvmDevice(FileDescriptor fd, int type) {
        this.fd = fd;
        this.type = type;
    }

    public int type() { return type; }

    static String typeName(int type) {
        return switch (type) {
            case ARM_VGIC_V2 -> "KVM_DEV_TYPE_ARM_VGIC_V2";
            case ARM_VGIC_V3 -> "KVM_DEV_TYPE_ARM_VGIC_V3";
            default -> "KVM_DEV_TYPE " + type;
        };
    }

    /** KVM_SET_DEVICE_ATTR with a 64-bit value. */
    public void setAttr(int group, long attr, long value) {
        NativeBuffer p = Ioctl.allocate(ArgLayouts.DEVICE_ATTR_SIZE + 8);
        p.putLong(ArgLayouts.DEVICE_ATTR_SIZE, value);
        call(p, group, attr, p.address() + ArgLayouts.DEVICE_ATTR_SIZE, KvmIoctls.KVM_SET_DEVICE_ATTR, "KVM_SET_DEVICE_ATTR");
    }

    /** KVM_SET_DEVICE_ATTR with a 32-bit value (e.g. the vGIC's number of interrupts). */
    public void setAttr32(int group, long attr, int value) {
        NativeBuffer p = Ioctl.allocate(ArgLayouts.DEVICE_ATTR_SIZE + 8);
        p.putInt(ArgLayouts.DEVICE_ATTR_SIZE, value);
        call(p, group, attr, p.address() + ArgLayouts.DEVICE_ATTR_SIZE, KvmIoctls.KVM_SET_DEVICE_ATTR, "KVM_SET_DEVICE_ATTR");
    }

    /** KVM_SET_DEVICE_ATTR without a value (a control: e.g. the vGIC's KVM_DEV_ARM_VGIC_CTRL_INIT). */
    public void control(int group, long attr) {
        NativeBuffer p = Ioctl.allocate(ArgLayouts.DEVICE_ATTR_SIZE);
        call(p, group, attr, 0, KvmIoctls.KVM_SET_DEVICE_ATTR, "KVM_SET_DEVICE_ATTR");
    }

    /** KVM_HAS_DEVICE_ATTR: whether the device knows this attribute (ENXIO: it does not). */
    public boolean hasAttr(int group, long attr) {
        NativeBuffer p = Ioctl.allocate(ArgLayouts.DEVICE_ATTR_SIZE);
        try {
            call(p, group, attr, 0, KvmIoctls.KVM_HAS_DEVICE_ATTR, "KVM_HAS_DEVICE_ATTR");
            return true;
        } catch (NativeCallException e) {
            if (e.errno() == 6 /* ENXIO */ || e.errno() == Errno.EINVAL) {
                return false;
            }
            throw e;
        }
    }

    private void call(NativeBuffer p, int group, long attr, long addr, long request, String name) {
        p.putInt(ArgLayouts.DA_FLAGS, 0);
        p.putInt(ArgLayouts.DA_GROUP, group);
        p.putLong(ArgLayouts.DA_ATTR, attr);
        p.putLong(ArgLayouts.DA_ADDR, addr);
        Ioctl.call(fd, name + "(" + typeName(type) + ", group " + group + ", attr 0x" + Long.toHexString(attr) + ")", request, p);
    }

    @Override
    public void close() { fd.close(); }
}
