package dev.jkrun.arch.aarch64;

/**
 * The Power State Coordination Interface a guest calls with HVC (Arm DEN 0022, PSCI 1.0, and the SMC Calling
 * Convention DEN 0028): function ids, return codes, and the answer to one call, for a VMM that handles the calls
 * itself (Hypervisor.framework; KVM answers them in the kernel). Whatever X0–X3 hold, {@link #call} answers: an
 * unknown function is NOT_SUPPORTED, never an error of the VMM's.
 */
public final class Psci {
    private Psci() {}

    /** Function ids: SMC32 (0x84…) and SMC64 (0xC4…); W0 carries them. */
    public static final int VERSION = 0x8400_0000, CPU_SUSPEND = 0x8400_0001, CPU_SUSPEND_64 = 0xC400_0001,
            CPU_OFF = 0x8400_0002, CPU_ON = 0x8400_0003, CPU_ON_64 = 0xC400_0003, AFFINITY_INFO = 0x8400_0004,
            AFFINITY_INFO_64 = 0xC400_0004, MIGRATE_INFO_TYPE = 0x8400_0006, SYSTEM_OFF = 0x8400_0008,
            SYSTEM_RESET = 0x8400_0009, FEATURES = 0x8400_000A;
    /** SMCCC_VERSION (DEN 0028): not offered (PSCI_FEATURES says so), so a guest assumes SMCCC 1.0. */
    public static final int SMCCC_VERSION = 0x8000_0000;

    /** Return codes. */
    public static final int SUCCESS = 0, NOT_SUPPORTED = -1, INVALID_PARAMETERS = -2, DENIED = -3, ALREADY_ON = -4,
            ON_PENDING = -5, INTERNAL_FAILURE = -6, NOT_PRESENT = -7, DISABLED = -8, INVALID_ADDRESS = -9;
    /** AFFINITY_INFO's answers. */
    public static final int AFFINITY_ON = 0, AFFINITY_OFF = 1, AFFINITY_ON_PENDING = 2;
    /** MIGRATE_INFO_TYPE: no Trusted OS that would need migrating. */
    public static final int MIGRATE_NOT_NEEDED = 2;
    /** PSCI 1.0, the version reported. */
    public static final int VERSION_1_0 = 0x0001_0000;

    /** What answering a call needs of the machine: its vCPUs by MPIDR. */
    public interface Cpus {
        /**
         * Starts the powered-off vCPU whose MPIDR affinity is {@code mpidr} at {@code entry} with {@code contextId}
         * in X0: SUCCESS, ALREADY_ON, ON_PENDING, INVALID_PARAMETERS (no such vCPU) or INVALID_ADDRESS (an entry
         * outside RAM).
         */
        int cpuOn(long mpidr, long entry, long contextId);

        /** AFFINITY_ON, AFFINITY_OFF, AFFINITY_ON_PENDING, or INVALID_PARAMETERS for no such vCPU. */
        int affinityInfo(long mpidr);
    }

    /** The outcome of one call. */
    public sealed interface Outcome {
        /** Return {@code x0} to the caller and go on. */
        record Result(long x0) implements Outcome {}

        /** CPU_OFF: the calling vCPU powers off (no return unless CPU_ON starts it again). */
        record CpuOff() implements Outcome {}

        /** SYSTEM_OFF. */
        record SystemOff() implements Outcome {}

        /** SYSTEM_RESET. */
        record SystemReset() implements Outcome {}
    }

    private static final Outcome.Result NOT_SUPPORTED_RESULT = new Outcome.Result(NOT_SUPPORTED);

    /** Answers the call in X0–X3. SMC32 calls see only the low 32 bits of their arguments. */
    public static Outcome call(long x0, long x1, long x2, long x3, Cpus cpus) {
        int fid = (int) x0;
        boolean smc32 = (fid & 0x4000_0000) == 0;
        if (smc32) {
            x1 &= 0xFFFF_FFFFL;
            x2 &= 0xFFFF_FFFFL;
            x3 &= 0xFFFF_FFFFL;
        }
        return switch (fid) {
            case VERSION -> new Outcome.Result(VERSION_1_0);
            case MIGRATE_INFO_TYPE -> new Outcome.Result(MIGRATE_NOT_NEEDED);
            case CPU_ON, CPU_ON_64 -> new Outcome.Result(cpus.cpuOn(x1, x2, x3));
            case AFFINITY_INFO, AFFINITY_INFO_64 ->
                    new Outcome.Result(x2 == 0 ? cpus.affinityInfo(x1) : INVALID_PARAMETERS); // level 0 only
            case CPU_SUSPEND, CPU_SUSPEND_64 -> new Outcome.Result(SUCCESS); // a standby state: woken at once
            case CPU_OFF -> new Outcome.CpuOff();
            case SYSTEM_OFF -> new Outcome.SystemOff();
            case SYSTEM_RESET -> new Outcome.SystemReset();
            case FEATURES -> new Outcome.Result(supported((int) x1) ? SUCCESS : NOT_SUPPORTED);
            default -> NOT_SUPPORTED_RESULT;
        };
    }

    /** The functions {@link #call} implements, as PSCI_FEATURES reports them (CPU_SUSPEND: the original StateID format). */
    public static boolean supported(int fid) {
        return switch (fid) {
            case VERSION, MIGRATE_INFO_TYPE, CPU_ON, CPU_ON_64, AFFINITY_INFO, AFFINITY_INFO_64, CPU_SUSPEND,
                    CPU_SUSPEND_64, CPU_OFF, SYSTEM_OFF, SYSTEM_RESET, FEATURES -> true;
            default -> false;
        };
    }

    /** The MPIDR affinity fields a CPU_ON or AFFINITY_INFO target names (Aff3 and Aff2..0). */
    public static long affinity(long mpidr) { return mpidr & 0xFF_00FF_FFFFL; }
}
