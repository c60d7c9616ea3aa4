package dev.jkrun.kvm;

/** struct kvm_lapic_state: the 1 KiB register page of the local APIC (regs[0x400]). */
public final class LapicState {
    public static final int SIZE = 1024;
    public final byte[] regs = new byte[SIZE];

    public int register(int offset) {
        return (regs[offset] & 0xFF) | (regs[offset + 1] & 0xFF) << 8 | (regs[offset + 2] & 0xFF) << 16
                | (regs[offset + 3] & 0xFF) << 24;
    }

    public void setRegister(int offset, int value) {
        regs[offset] = (byte) value;
        regs[offset + 1] = (byte) (value >> 8);
        regs[offset + 2] = (byte) (value >> 16);
        regs[offset + 3] = (byte) (value >> 24);
    }
}
