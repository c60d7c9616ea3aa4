package dev.jkrun.kvm;

import dev.jkrun.libc.NativeBuffer;

/** struct kvm_fpu (asm/kvm.h, x86): see the layout comment on {@link Fpu}. */
final class FpuLayout {
    static final int FPR = 0, FCW = 128, FSW = 130, FTWX = 132, LAST_OPCODE = 134, LAST_IP = 136, LAST_DP = 144,
            XMM = 152, MXCSR = 408;

    private FpuLayout() {}

    static Fpu read(NativeBuffer p) {
        Fpu f = new Fpu();
        p.get(FPR, f.fpr, 0, f.fpr.length);
        f.fcw = p.getShort(FCW);
        f.fsw = p.getShort(FSW);
        f.ftwx = p.getByte(FTWX);
        f.lastOpcode = p.getShort(LAST_OPCODE);
        f.lastIp = p.getLong(LAST_IP);
        f.lastDp = p.getLong(LAST_DP);
        p.get(XMM, f.xmm, 0, f.xmm.length);
        f.mxcsr = p.getInt(MXCSR);
        return f;
    }

    static void write(NativeBuffer p, Fpu f) {
        p.clear(0, Fpu.SIZE); // pad1 and pad2 must be zero
        p.put(FPR, f.fpr, 0, f.fpr.length);
        p.putShort(FCW, f.fcw);
        p.putShort(FSW, f.fsw);
        p.putByte(FTWX, f.ftwx);
        p.putShort(LAST_OPCODE, f.lastOpcode);
        p.putLong(LAST_IP, f.lastIp);
        p.putLong(LAST_DP, f.lastDp);
        p.put(XMM, f.xmm, 0, f.xmm.length);
        p.putInt(MXCSR, f.mxcsr);
    }
}
