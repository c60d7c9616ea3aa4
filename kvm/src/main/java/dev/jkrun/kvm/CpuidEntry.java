package dev.jkrun.kvm;

/**
 * struct kvm_cpuid_entry2 (x86): 40 bytes. An immutable value; the arch layer derives per-vCPU copies with the
 * {@code with*} methods.
 */
public record CpuidEntry(int function, int index, int flags, int eax, int ebx, int ecx, int edx) {
    public static final int SIZE = 40;
    /** KVM_CPUID_FLAG_SIGNIFCANT_INDEX: the entry applies to one sub-leaf ({@link #index}) only. */
    public static final int FLAG_SIGNIFICANT_INDEX = 1;

    public CpuidEntry withEax(int v) { return new CpuidEntry(function, index, flags, v, ebx, ecx, edx); }

    public CpuidEntry withEbx(int v) { return new CpuidEntry(function, index, flags, eax, v, ecx, edx); }

    public CpuidEntry withEcx(int v) { return new CpuidEntry(function, index, flags, eax, ebx, v, edx); }

    public CpuidEntry withEdx(int v) { return new CpuidEntry(function, index, flags, eax, ebx, ecx, v); }
}
