package dev.jkrun.vmm;

/**
 * vCPUs and RAM. Validated on construction (libkrun's rules: 1–16 vCPUs for libkrunfw's NR_CPUS; RAM 1 MiB–1 TiB).
 * {@code hyperthreading}: pairs of vCPUs are the two threads of one core in CPUID (libkrun's ht_enabled).
 */
public record MachineConfig(int vcpus, long memoryMib, boolean hyperthreading, boolean nestedVirt) {
    public static final int MAX_VCPUS = 254;
    public static final long MAX_MEMORY_MIB = 1L << 20;

    public MachineConfig {
        if (vcpus < 1 || vcpus > MAX_VCPUS) {
            throw new ConfigurationException("machine.vcpus", "must be between 1 and " + MAX_VCPUS + ", got " + vcpus);
        }
        if (hyperthreading && vcpus > 1 && vcpus % 2 != 0) { // libkrun's rule: one vCPU has nothing to pair
            throw new ConfigurationException("machine.vcpus", "hyperthreading needs one or an even number of vCPUs, got " + vcpus);
        }
        if (memoryMib < 1 || memoryMib > MAX_MEMORY_MIB) {
            throw new ConfigurationException("machine.memory_mib", "must be between 1 MiB and " + MAX_MEMORY_MIB + " MiB, got " + memoryMib);
        }
    }

    public static MachineConfig of(int vcpus, long memoryMib) { return new MachineConfig(vcpus, memoryMib, false, false); }

    public long memoryBytes() { return memoryMib << 20; }
}
