package dev.jkrun.arch.aarch64;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class PsciTest {
    /** Two vCPUs, 0 on and 1 off, recording CPU_ON calls. */
    private static final class TwoCpus implements Psci.Cpus {
        final List<long[]> started = new ArrayList<>();

        @Override
        public int cpuOn(long mpidr, long entry, long contextId) {
            if (mpidr == 0) {
                return Psci.ALREADY_ON;
            }
            if (mpidr != 1) {
                return Psci.INVALID_PARAMETERS;
            }
            started.add(new long[] {mpidr, entry, contextId});
            return Psci.SUCCESS;
        }

        @Override
        public int affinityInfo(long mpidr) {
            return mpidr == 0 ? Psci.AFFINITY_ON : mpidr == 1 ? Psci.AFFINITY_OFF : Psci.INVALID_PARAMETERS;
        }
    }

    private static long result(long x0, long x1, long x2, long x3, Psci.Cpus cpus) {
        return assertInstanceOf(Psci.Outcome.Result.class, Psci.call(x0, x1, x2, x3, cpus)).x0();
    }

    @Test
    void whatLinuxAsksAtBoot() {
        TwoCpus cpus = new TwoCpus();
        assertEquals(0x10000, result(0x8400_0000L, 0, 0, 0, cpus)); // PSCI_VERSION: 1.0
        assertEquals(2, result(0x8400_0006L, 0, 0, 0, cpus)); // MIGRATE_INFO_TYPE: no Trusted OS
        assertEquals(0, result(0x8400_000AL, 0xC400_0001L, 0, 0, cpus)); // FEATURES(CPU_SUSPEND_64)
        assertEquals(-1, result(0x8400_000AL, 0xC400_000EL, 0, 0, cpus)); // FEATURES(SYSTEM_SUSPEND): no
        assertEquals(-1, result(0x8400_000AL, 0x8000_0000L, 0, 0, cpus)); // FEATURES(SMCCC_VERSION): no
        assertEquals(0, result(0xC400_0003L, 1, 0x8020_0000L, 0x1234, cpus)); // CPU_ON_64 of CPU 1
        assertEquals(List.of(1L, 0x8020_0000L, 0x1234L), List.of(cpus.started.get(0)[0], cpus.started.get(0)[1],
                cpus.started.get(0)[2]));
        assertEquals(Psci.AFFINITY_OFF, result(0xC400_0004L, 1, 0, 0, cpus));
        assertInstanceOf(Psci.Outcome.SystemOff.class, Psci.call(0x8400_0008L, 0, 0, 0, cpus));
        assertInstanceOf(Psci.Outcome.SystemReset.class, Psci.call(0x8400_0009L, 0, 0, 0, cpus));
        assertInstanceOf(Psci.Outcome.CpuOff.class, Psci.call(0x8400_0002L, 0, 0, 0, cpus));
    }

    @Test
    void madeUpAndMalformedCallsAreAnswered() {
        TwoCpus cpus = new TwoCpus();
        assertEquals(-1, result(0x8400_00FFL, 0, 0, 0, cpus)); // an unknown PSCI function
        assertEquals(-1, result(0xFFFF_FFFFL, -1, -1, -1, cpus));
        assertEquals(-1, result(0x8000_0000L, 0, 0, 0, cpus)); // SMCCC_VERSION itself
        assertEquals(-1, result(0xC600_0000L, 0, 0, 0, cpus)); // another service's range
        assertEquals(Psci.ALREADY_ON, result(0xC400_0003L, 0, 0x8000_0000L, 0, cpus));
        assertEquals(Psci.INVALID_PARAMETERS, result(0xC400_0003L, 7, 0x8000_0000L, 0, cpus));
        assertEquals(Psci.INVALID_PARAMETERS, result(0xC400_0004L, 1, 1, 0, cpus)); // level 1: not offered
        // the function id is W0: upper bits of X0 do not change it
        assertEquals(0x10000, result(0xDEAD_BEEF_8400_0000L, 0, 0, 0, cpus));
    }

    @Test
    void smc32CallsSeeOnlyTheLowHalfOfTheirArguments() {
        TwoCpus cpus = new TwoCpus();
        assertEquals(0, result(0x8400_0003L, 0xFFFF_FFFF_0000_0001L, 0xAAAA_AAAA_8020_0000L, 0x5555_5555_0000_0007L, cpus));
        assertEquals(List.of(1L, 0x8020_0000L, 7L), List.of(cpus.started.get(0)[0], cpus.started.get(0)[1],
                cpus.started.get(0)[2]));
    }
}
