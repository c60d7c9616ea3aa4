package dev.jkrun.vmm;

/**
 * vCPUs and RAM. Validated on construction (libkrun's rules: 1–16 vCPUs for libkrunfw's NR_CPUS; RAM 1 MiB–1 TiB).
 * {@code hyperthreading}: pairs of vCPUs are the two threads of one core in CPUID (libkrun's ht_enabled).
 * {@code name} (AVF's {@code setName}; libkrun has none) is appended to the VM's thread names and log lines
 * ({@code jkrun-vm7-db-1-vcpu0}): 1 to {@link #MAX_NAME} characters of {@code [A-Za-z0-9._-]}, so it is safe there.
 * {@code memfdBacked} puts guest RAM in one memfd instead of private anonymous memory (AVF's custom memory backing
 * file; what vhost-user backends and passt's vhost-user mode map).
 * {@code splitIrqchip} (libkrun's {@code krun_split_irqchip}): the LAPICs stay in KVM, the IOAPIC is emulated by jkrun
 * and there is no PIC or PIT (README.md, "Split IRQ chip").
 */
public record MachineConfig(int vcpus, long memoryMib, boolean hyperthreading, boolean nestedVirt, java.util.Optional<String> name,
                            boolean memfdBacked, boolean splitIrqchip) {
    public static final int MAX_VCPUS = 254;
    public static final long MAX_MEMORY_MIB = 1L << 20;
    public static final int MAX_NAME = 64;

    public MachineConfig(int vcpus, long memoryMib, boolean hyperthreading, boolean nestedVirt) {
        this(vcpus, memoryMib, hyperthreading, nestedVirt, java.util.Optional.empty(), false, false);
    }

    public MachineConfig {
        java.util.Objects.requireNonNull(name, "name");
        name.ifPresent(n -> {
            if (n.isEmpty() || n.length() > MAX_NAME || !n.chars().allMatch(c -> c < 128
                    && (Character.isLetterOrDigit(c) || c == '.' || c == '_' || c == '-'))) {
                throw new ConfigurationException("machine.name", "1 to " + MAX_NAME + " characters of A-Z a-z 0-9 . _ -, got '" + n + "'");
            }
        });
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

    public MachineConfig withName(String n) { return new MachineConfig(vcpus, memoryMib, hyperthreading, nestedVirt, java.util.Optional.of(n), memfdBacked, splitIrqchip); }

    public MachineConfig withMemfdBacked(boolean on) { return new MachineConfig(vcpus, memoryMib, hyperthreading, nestedVirt, name, on, splitIrqchip); }

    public MachineConfig withSplitIrqchip(boolean on) { return new MachineConfig(vcpus, memoryMib, hyperthreading, nestedVirt, name, memfdBacked, on); }
}
