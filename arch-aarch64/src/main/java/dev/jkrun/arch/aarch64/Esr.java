package dev.jkrun.arch.aarch64;

/**
 * The exception syndrome (ESR_EL2) of a guest exception taken to the hypervisor, decoded as the Arm Architecture
 * Reference Manual lays it out (D23.2.48 ESR_EL2: EC in bits 31–26, IL in 25, the ISS below): what a VMM that handles
 * exits itself (Hypervisor.framework; KVM does this in the kernel) needs to turn a trapped access into an MMIO access
 * or a call. Pure functions of the 64-bit syndrome, whatever the guest made it.
 */
public final class Esr {
    private Esr() {}

    /** Exception classes a VMM sees from a lower EL. */
    public static final int EC_UNKNOWN = 0x00, EC_WFX = 0x01, EC_HVC64 = 0x16, EC_SMC64 = 0x17, EC_SYSREG = 0x18,
            EC_IABT_LOWER = 0x20, EC_DABT_LOWER = 0x24, EC_BRK64 = 0x3C;

    public static int ec(long esr) { return (int) (esr >>> 26) & 0x3F; }

    /** IL: the trapped instruction was 32 bits long (always, from AArch64). */
    public static boolean il(long esr) { return (esr & (1L << 25)) != 0; }

    public static int iss(long esr) { return (int) esr & 0x1FF_FFFF; }

    /** For {@link #EC_WFX}: WFE (TI = 01) rather than WFI (TI = 00; WFIT/WFET set bit 1 and count as their kind). */
    public static boolean isWfe(long esr) { return (esr & 1) != 0; }

    /**
     * The ISS of a data abort (D23.2.48, "ISS encoding for an exception from a Data Abort"). Where {@code valid}
     * (ISV) is false the hardware did not describe the access (a load/store pair, a writeback, SIMD) and the other
     * access fields mean nothing.
     *
     * @param size             the access's bytes: 1, 2, 4 or 8 (SAS)
     * @param signExtend       a load that sign-extends (SSE)
     * @param register         the transfer register Xt, 0–31 (31: XZR) (SRT)
     * @param sixtyFour        Xt is a 64-bit register; else a W register, whose upper half a load zeroes (SF)
     * @param write            a store (WnR)
     * @param cacheMaintenance a cache maintenance or address translation instruction (CM)
     * @param stage1Walk       the fault came from the guest's own page-table walk (S1PTW)
     * @param externalAbort    an external abort (EA)
     */
    public record DataAbort(boolean valid, int size, boolean signExtend, int register, boolean sixtyFour, boolean write,
                            boolean cacheMaintenance, boolean stage1Walk, boolean externalAbort) {}

    public static DataAbort dataAbort(long esr) {
        int iss = iss(esr);
        return new DataAbort((iss & (1 << 24)) != 0, 1 << ((iss >>> 22) & 3), (iss & (1 << 21)) != 0, (iss >>> 16) & 0x1F,
                (iss & (1 << 15)) != 0, (iss & (1 << 6)) != 0, (iss & (1 << 8)) != 0, (iss & (1 << 7)) != 0,
                (iss & (1 << 9)) != 0);
    }

    /** The data abort's ISV bit, without decoding the rest (the vCPU loop's fast check). */
    public static boolean dataAbortValid(long esr) { return (esr & (1L << 24)) != 0; }

    /** SAS as bytes. */
    public static int dataAbortSize(long esr) { return 1 << ((esr >>> 22) & 3); }

    /** SRT. */
    public static int dataAbortRegister(long esr) { return (int) (esr >>> 16) & 0x1F; }

    /** WnR. */
    public static boolean dataAbortWrite(long esr) { return (esr & (1L << 6)) != 0; }

    /**
     * What a load of {@code size} bytes whose little-endian value is {@code raw} leaves in its register: sign- or
     * zero-extended as SSE says, and cut to 32 bits (upper half zero) for a W register (SF clear).
     */
    public static long loadedValue(long esr, long raw) {
        int bits = 8 * dataAbortSize(esr);
        long v = bits == 64 ? raw : raw & ((1L << bits) - 1);
        if ((esr & (1L << 21)) != 0 && bits < 64) {
            v = (v << (64 - bits)) >> (64 - bits);
        }
        return (esr & (1L << 15)) != 0 ? v : v & 0xFFFF_FFFFL;
    }

    /**
     * The ISS of a trapped MSR/MRS (D23.2.48, "ISS encoding for an exception from MSR, MRS, or System instruction
     * execution in AArch64 state"): the system register as op0/op1/CRn/CRm/op2, the transfer register, and whether
     * it is a read (MRS).
     */
    public record SysRegAccess(int op0, int op1, int crn, int crm, int op2, int register, boolean read) {
        /** The register as an assembler names an implementation-defined one: S3_0_C1_C0_0. */
        public String name() { return "S" + op0 + "_" + op1 + "_C" + crn + "_C" + crm + "_" + op2; }
    }

    public static SysRegAccess sysRegAccess(long esr) {
        int iss = iss(esr);
        return new SysRegAccess((iss >>> 20) & 3, (iss >>> 14) & 7, (iss >>> 10) & 0xF, (iss >>> 1) & 0xF,
                (iss >>> 17) & 7, (iss >>> 5) & 0x1F, (iss & 1) != 0);
    }

    /** The immediate of an HVC or SMC (ISS bits 15–0). */
    public static int callImmediate(long esr) { return (int) esr & 0xFFFF; }

    /** "EC 0x24 (data abort from a lower EL)": for stop reasons. */
    public static String describe(long esr) {
        int ec = ec(esr);
        String name = switch (ec) {
            case EC_UNKNOWN -> "unknown reason";
            case EC_WFX -> "WFI/WFE";
            case EC_HVC64 -> "HVC";
            case EC_SMC64 -> "SMC";
            case EC_SYSREG -> "MSR/MRS";
            case EC_IABT_LOWER -> "instruction abort from a lower EL";
            case EC_DABT_LOWER -> "data abort from a lower EL";
            case EC_BRK64 -> "BRK";
            default -> "exception class";
        };
        return String.format("EC 0x%02x (%s), ESR 0x%x", ec, name, esr);
    }
}
