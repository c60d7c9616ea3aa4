package dev.jkrun.kvm;

/** struct kvm_fpu (x86): 416 bytes. Only the control fields jkrun sets are named; the rest stay zero. */
public final class Fpu {
    public static final int SIZE = 416;
    /** Layout: fpr[8][16] at 0, fcw u16 at 128, fsw 130, ftwx u8 132, last_opcode u16 134, last_ip u64 136,
     *  last_dp u64 144, xmm[16][16] at 152, mxcsr u32 at 408, pad to 416. */
    public short fcw, fsw;
    public byte ftwx;
    public short lastOpcode;
    public long lastIp, lastDp;
    public int mxcsr;
    public final byte[] fpr = new byte[128];
    public final byte[] xmm = new byte[256];
}
