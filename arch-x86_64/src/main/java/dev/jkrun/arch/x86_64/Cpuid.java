package dev.jkrun.arch.x86_64;

import dev.jkrun.kvm.CpuidEntry;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Per-vCPU CPUID derived from KVM_GET_SUPPORTED_CPUID (libkrun {@code src/cpuid/src/transformer}). All vCPUs sit
 * in one package and the vCPU's APIC id is its index. Without SMT every vCPU is its own single-threaded core; with
 * SMT (libkrun's {@code ht_enabled}, more than one vCPU) vCPUs 2k and 2k+1 are the two threads of core k: leaf 0xB
 * shifts the x2APIC id by 1 at the thread level, L1/L2 are shared by 2 threads, AMD's 0x8000001E gives core k and 2
 * threads per core. Nothing here executes CPUID: the host's vendor and brand string come from KVM's list, which
 * passes leaf 0 and leaves 0x80000002–4 through from the host.
 */
public final class Cpuid {
    private Cpuid() {}

    /** The MP table leaves APIC id n + 1 for the IOAPIC and 0xFF is broadcast, so at most 254 vCPUs. */
    public static final int MAX_VCPUS = 254;

    public enum Vendor {
        INTEL, AMD, OTHER;

        /** From leaf 0's vendor string (EBX, EDX, ECX); OTHER when leaf 0 is absent or unknown. */
        public static Vendor of(List<CpuidEntry> supported) {
            return find(supported, 0, 0).map(e -> switch (ascii(e.ebx(), e.edx(), e.ecx())) {
                case "GenuineIntel" -> INTEL;
                case "AuthenticAMD" -> AMD;
                default -> OTHER;
            }).orElse(OTHER);
        }
    }

    /** {@link #forVcpu(List, int, int, boolean, boolean)} without SMT. */
    public static List<CpuidEntry> forVcpu(List<CpuidEntry> supported, int vcpuId, int vcpuCount, boolean nested) {
        return forVcpu(supported, vcpuId, vcpuCount, nested, false);
    }

    /**
     * The CPUID table for vCPU {@code vcpuId} of {@code vcpuCount}. Leaves not transformed here pass through.
     *
     * @param nested whether to keep VMX (Intel) / SVM (AMD) where KVM offers them; otherwise they are cleared
     * @param smt two threads per core (needs an even count; with one vCPU there is nothing to pair and it is ignored)
     */
    public static List<CpuidEntry> forVcpu(List<CpuidEntry> supported, int vcpuId, int vcpuCount, boolean nested,
                                           boolean smt) {
        if (vcpuCount < 1 || vcpuCount > MAX_VCPUS) {
            throw new IllegalArgumentException("vcpus must be in [1, " + MAX_VCPUS + "]: " + vcpuCount);
        }
        if (vcpuId < 0 || vcpuId >= vcpuCount) {
            throw new IllegalArgumentException("vcpus: id " + vcpuId + " out of range for " + vcpuCount + " vcpus");
        }
        if (smt && vcpuCount > 1 && vcpuCount % 2 != 0) {
            throw new IllegalArgumentException("vcpus: SMT needs an even count, got " + vcpuCount);
        }
        boolean ht = smt && vcpuCount > 1;
        Vendor vendor = Vendor.of(supported);
        byte[] brand = brandString(vendor, supported);
        List<CpuidEntry> out = new ArrayList<>(supported.size());
        for (CpuidEntry e : withTopologyLevels(supported, vendor)) {
            e = common(e, vcpuId, vcpuCount, nested);
            e = switch (vendor) {
                case INTEL -> intel(e, vcpuId, vcpuCount, ht);
                case AMD -> amd(e, vcpuId, vcpuCount, ht);
                case OTHER -> e;
            };
            if (brand != null && e.function() >= 0x8000_0002 && e.function() <= 0x8000_0004) {
                e = withBrand(e, brand);
            }
            out.add(e);
        }
        return List.copyOf(out);
    }

    /**
     * KVM lists only the sub-leaves of 0xB/0x1F the host reports (a host with one level lists sub-leaf 0 alone), and
     * a missing sub-leaf reads as zeros, which would hide the core level the VM's topology needs: where the leaf is
     * listed for Intel or AMD, sub-leaves 0–2 are there (the values are filled in by {@link #extendedTopology}).
     */
    static List<CpuidEntry> withTopologyLevels(List<CpuidEntry> supported, Vendor vendor) {
        if (vendor == Vendor.OTHER) {
            return supported;
        }
        List<CpuidEntry> all = new ArrayList<>(supported);
        for (int leaf : new int[] {0xB, 0x1F}) {
            if (find(supported, leaf, 0).isEmpty()) {
                continue;
            }
            for (int sub = 1; sub <= 2; sub++) {
                if (find(supported, leaf, sub).isEmpty()) {
                    all.add(new CpuidEntry(leaf, sub, CpuidEntry.FLAG_SIGNIFICANT_INDEX, 0, 0, 0, 0));
                }
            }
        }
        return all;
    }

    // ---- all vendors

    static CpuidEntry common(CpuidEntry e, int id, int n, boolean nested) {
        switch (e.function()) {
            case 0x1 -> {
                // Leaf 1: EBX[31:24] initial APIC id, [23:16] max logical processor ids in the package (a power
                // of two covering n), [15:8] CLFLUSH line size in quadwords (8 = 64 bytes).
                int ebx = bits(e.ebx(), 24, 31, id);
                ebx = bits(ebx, 16, 23, maxCpusPerPackage(n));
                ebx = bits(ebx, 8, 15, 8);
                // ECX bit 31: running under a hypervisor, so Linux looks for KVM's paravirt leaves.
                int ecx = bit(e.ecx(), 31, true);
                // ECX bit 5 VMX: nested virtualisation only on request (KVM offers it only if the host can).
                if (!nested) {
                    ecx = bit(ecx, 5, false);
                }
                // EDX bit 28 HTT: the logical-count field above is valid only when there is more than one.
                int edx = bit(e.edx(), 28, n > 1);
                return e.withEbx(ebx).withEcx(ecx).withEdx(edx);
            }
            case 0x8000_0001 -> {
                // ECX bit 2 SVM: nested virtualisation only on request.
                return nested ? e : e.withEcx(bit(e.ecx(), 2, false));
            }
            default -> {
                return e;
            }
        }
    }

    /**
     * The same table with leaf 1 ECX bit 24 (TSC-deadline timer mode) set on any vendor: KVM's in-kernel LAPIC
     * emulates it everywhere (KVM_CAP_TSC_DEADLINE_TIMER), and a guest without a PIT needs it, since Linux otherwise
     * verifies its LAPIC timer against PIT ticks (apic_needs_pit) and disables it when none come.
     */
    public static List<CpuidEntry> withTscDeadline(List<CpuidEntry> table) {
        List<CpuidEntry> out = new ArrayList<>(table.size());
        for (CpuidEntry e : table) {
            out.add(e.function() == 0x1 ? e.withEcx(bit(e.ecx(), 24, true)) : e);
        }
        return out;
    }

    /** Smallest power of two ≥ n; 255 (the field's maximum) above 128. */
    static int maxCpusPerPackage(int n) {
        int p = Integer.highestOneBit(n);
        p = p == n ? n : p << 1;
        return Math.min(p, 255);
    }

    // ---- Intel (transformer/intel.rs)

    static CpuidEntry intel(CpuidEntry e, int id, int n, boolean ht) {
        return switch (e.function()) {
            // Leaf 1 ECX bit 24: TSC-deadline timer mode, which KVM emulates on every host.
            case 0x1 -> e.withEcx(bit(e.ecx(), 24, true));
            case 0x4 -> bits(cacheSharing(e, n, ht), 26, 31, Math.min(n - 1, 63)); // cores per package − 1
            // Leaf 6: no turbo (EAX bit 1), no energy-performance bias (ECX bit 3): the guest cannot drive them.
            case 0x6 -> e.withEax(bit(e.eax(), 1, false)).withEcx(bit(e.ecx(), 3, false));
            // Leaf 0xA: no architectural PMU.
            case 0xA -> e.withEax(0).withEbx(0).withEcx(0).withEdx(0);
            // 0xB is libkrun's; 0x1F (V2 extended topology) gets the same answer, since newer kernels prefer it
            // and KVM passes the host's topology through there.
            case 0xB, 0x1F -> extendedTopology(e, id, n, ht);
            default -> e;
        };
    }

    /**
     * Leaf 4 (Intel) and 0x8000001D (AMD) EAX[25:14], threads sharing the cache − 1: L1/L2 belong to one core (its
     * 2 threads with SMT), L3 is shared by all n.
     */
    static CpuidEntry cacheSharing(CpuidEntry e, int n, boolean ht) {
        int level = (e.eax() >>> 5) & 7;
        if (level == 1 || level == 2) {
            return e.withEax(bits(e.eax(), 14, 25, ht ? 1 : 0));
        }
        return level == 3 ? e.withEax(bits(e.eax(), 14, 25, n - 1)) : e;
    }

    private static CpuidEntry bits(CpuidEntry e, int lo, int hi, int v) { return e.withEax(bits(e.eax(), lo, hi, v)); }

    static final int LEVEL_INVALID = 0;
    static final int LEVEL_SMT = 1;
    static final int LEVEL_CORE = 2;

    /**
     * Leaf 0xB: EDX is the x2APIC id. Sub-leaf 0 (SMT): shift 0 and one thread per core (shift 1, 2 threads with
     * SMT), type SMT — or Core when n = 1, the only level. Sub-leaf 1 (Core): shift 6, n logical processors, type
     * Core — or Invalid when n = 1. Sub-leaves ≥ 2 are invalid levels: ECX holds only the sub-leaf index.
     */
    static CpuidEntry extendedTopology(CpuidEntry e, int id, int n, boolean ht) {
        int eax = 0;
        int ebx = 0;
        int ecx;
        switch (e.index()) {
            case 0 -> {
                eax = ht ? 1 : 0;
                ebx = ht ? 2 : 1;
                ecx = (n == 1 ? LEVEL_CORE : LEVEL_SMT) << 8;
            }
            case 1 -> {
                eax = 6;
                ebx = n;
                ecx = (n == 1 ? LEVEL_INVALID : LEVEL_CORE) << 8 | 1;
            }
            default -> ecx = e.index() & 0xFF;
        }
        return e.withEax(eax).withEbx(ebx).withEcx(ecx).withEdx(id);
    }

    // ---- AMD (transformer/amd.rs)

    static CpuidEntry amd(CpuidEntry e, int id, int n, boolean ht) {
        return switch (e.function()) {
            // Leaf 7.0 EDX bit 29 ARCH_CAPABILITIES: the MSR is Intel's; do not advertise it on AMD.
            case 0x7 -> e.index() == 0 ? e.withEdx(bit(e.edx(), 29, false)) : e;
            // Largest extended leaf: up to 0x8000001F, so the guest reads the topology leaves below.
            case 0x8000_0000 -> e.withEax(0x8000_001F);
            // 0x80000001 ECX bit 22 TOPOEXT: leaves 0x8000001D/1E are valid.
            case 0x8000_0001 -> e.withEcx(bit(e.ecx(), 22, true));
            // 0x80000008 ECX[15:12] APIC id size (6 bits, up to 64 threads), [7:0] threads in package − 1.
            case 0x8000_0008 -> e.withEcx(bits(bits(e.ecx(), 12, 15, 6), 0, 7, n - 1));
            // 0x8000001D (cache topology): libkrun copies the host's sub-leaves; KVM already lists them, each
            // per sub-leaf, so make sure the index is significant and say who shares each cache, as leaf 4.
            case 0x8000_001D -> cacheSharing(new CpuidEntry(e.function(), e.index(),
                    e.flags() | CpuidEntry.FLAG_SIGNIFICANT_INDEX, e.eax(), e.ebx(), e.ecx(), e.edx()), n, ht);
            case 0x8000_001E -> extendedApicId(e, id, ht);
            // 0xB/0x1F: libkrun leaves the host's topology here on AMD, whose x2APIC ids then disagree with the
            // vCPU's; Linux reads leaf 0xB on AMD too (topology_amd.c), so it gets the same answer as on Intel.
            case 0xB, 0x1F -> extendedTopology(e, id, n, ht);
            default -> e;
        };
    }

    /**
     * 0x8000001E: EAX extended APIC id; EBX core id (id, or id / 2 with SMT) and threads per core − 1 (0, or 1 with
     * SMT); one node, id 0.
     */
    static CpuidEntry extendedApicId(CpuidEntry e, int id, boolean ht) {
        int ebx = bits(bits(e.ebx(), 0, 7, ht ? id / 2 : id), 8, 15, ht ? 1 : 0);
        int ecx = bits(bits(e.ecx(), 8, 10, 0), 0, 7, 0);
        return e.withEax(id).withEbx(ebx).withEcx(ecx);
    }

    // ---- brand string (brand_string.rs)

    private static final Pattern FREQUENCY = Pattern.compile("[0-9]+\\.[0-9]+[MGT]Hz");

    /**
     * libkrun's rule: Intel gets "Intel(R) Xeon(R) Processor", with " @ 2.30GHz" when the host brand string carries
     * a frequency; AMD gets "AMD EPYC"; other vendors keep the host's. 48 bytes, NUL-padded.
     */
    static byte[] brandString(Vendor vendor, List<CpuidEntry> supported) {
        String brand = switch (vendor) {
            case INTEL -> "Intel(R) Xeon(R) Processor"
                    + hostBrand(supported).flatMap(Cpuid::frequency).map(f -> " @ " + f).orElse("");
            case AMD -> "AMD EPYC";
            case OTHER -> null;
        };
        if (brand == null) {
            return null;
        }
        byte[] out = new byte[48];
        byte[] b = brand.getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(b, 0, out, 0, Math.min(b.length, 47)); // keep a NUL terminator
        return out;
    }

    /** The host's brand string from leaves 0x80000002–4, if KVM listed all three. */
    static Optional<String> hostBrand(List<CpuidEntry> supported) {
        ByteBuffer bb = ByteBuffer.allocate(48).order(ByteOrder.LITTLE_ENDIAN);
        for (int f = 0x8000_0002; f <= 0x8000_0004; f++) {
            Optional<CpuidEntry> e = find(supported, f, 0);
            if (e.isEmpty()) {
                return Optional.empty();
            }
            bb.putInt(e.get().eax()).putInt(e.get().ebx()).putInt(e.get().ecx()).putInt(e.get().edx());
        }
        String s = new String(bb.array(), StandardCharsets.US_ASCII);
        int nul = s.indexOf('\0');
        return Optional.of((nul >= 0 ? s.substring(0, nul) : s).trim());
    }

    static Optional<String> frequency(String hostBrand) {
        Matcher m = FREQUENCY.matcher(hostBrand);
        return m.find() ? Optional.of(m.group()) : Optional.empty();
    }

    private static CpuidEntry withBrand(CpuidEntry e, byte[] brand) {
        ByteBuffer bb = ByteBuffer.wrap(brand).order(ByteOrder.LITTLE_ENDIAN);
        bb.position((e.function() - 0x8000_0002) * 16);
        return e.withEax(bb.getInt()).withEbx(bb.getInt()).withEcx(bb.getInt()).withEdx(bb.getInt());
    }

    // ---- helpers

    static Optional<CpuidEntry> find(List<CpuidEntry> entries, int function, int index) {
        return entries.stream().filter(e -> e.function() == function && e.index() == index).findFirst();
    }

    static String ascii(int... regs) {
        ByteBuffer bb = ByteBuffer.allocate(4 * regs.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int r : regs) {
            bb.putInt(r);
        }
        return new String(bb.array(), StandardCharsets.US_ASCII);
    }

    /** {@code v} with bits [lo, hi] replaced by {@code value} (truncated to the field). */
    static int bits(int v, int lo, int hi, int value) {
        int width = hi - lo + 1;
        int mask = (width == 32 ? -1 : (1 << width) - 1) << lo;
        return (v & ~mask) | ((value << lo) & mask);
    }

    static int bit(int v, int n, boolean set) { return set ? v | (1 << n) : v & ~(1 << n); }
}
