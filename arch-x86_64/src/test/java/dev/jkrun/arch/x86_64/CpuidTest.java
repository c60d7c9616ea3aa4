package dev.jkrun.arch.x86_64;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.arch.x86_64.Cpuid.Vendor;
import dev.jkrun.kvm.CpuidEntry;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class CpuidTest {
    static final int SIG = CpuidEntry.FLAG_SIGNIFICANT_INDEX;

    static int[] regs(String s, int count) {
        byte[] padded = new byte[4 * count]; // NUL-padded
        byte[] b = s.getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(b, 0, padded, 0, b.length);
        ByteBuffer bb = ByteBuffer.wrap(padded).order(ByteOrder.LITTLE_ENDIAN);
        int[] r = new int[count];
        for (int i = 0; i < count; i++) {
            r[i] = bb.getInt();
        }
        return r;
    }

    static CpuidEntry e(int function, int index, int eax, int ebx, int ecx, int edx) {
        return new CpuidEntry(function, index, 0, eax, ebx, ecx, edx);
    }

    static List<CpuidEntry> brandLeaves(String brand) {
        int[] b = regs(brand, 12);
        List<CpuidEntry> out = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            out.add(e(0x8000_0002 + i, 0, b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]));
        }
        return out;
    }

    static List<CpuidEntry> intelHost() {
        int[] v = regs("GenuineIntel", 3);
        List<CpuidEntry> l = new ArrayList<>(List.of(
                e(0, 0, 0x1F, v[0], v[2], v[1]),
                // Host APIC id 0x37, 32 logical, CLFLUSH 8; VMX (bit 5) offered by KVM; HTT set.
                e(1, 0, 0x606A6, 0x3720_0800, 0x7FFA_3223 | 1 << 5, 0x1F8B_FBFF | 1 << 28),
                new CpuidEntry(4, 0, SIG, 0x1C00_4121, 0, 0, 0), // L1d, 2 sharing
                new CpuidEntry(4, 1, SIG, 0x1C00_4122, 0, 0, 0), // L1i
                new CpuidEntry(4, 2, SIG, 0x1C00_4143, 0, 0, 0), // L2
                new CpuidEntry(4, 3, SIG, 0x1C03_C163, 0, 0, 0), // L3
                e(6, 0, 0x4 | 0x2, 0, 0x9 | 0x8, 0),
                e(0xA, 0, 0x0704_3404, 0, 0, 0x603),
                new CpuidEntry(0xB, 0, SIG, 1, 2, 0x100, 0x37),
                new CpuidEntry(0xB, 1, SIG, 6, 64, 0x201, 0x37),
                new CpuidEntry(0xB, 2, SIG, 0, 0, 2, 0x37),
                e(0x4000_0000, 0, 0x4000_0001, 0x4B4D564B, 0x564B4D56, 0x4D),
                e(0x8000_0000, 0, 0x8000_0008, 0, 0, 0),
                e(0x8000_0001, 0, 0, 0, 0x121, 0x2C10_0800)));
        l.addAll(brandLeaves("Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz"));
        return l;
    }

    static List<CpuidEntry> amdHost() {
        int[] v = regs("AuthenticAMD", 3);
        List<CpuidEntry> l = new ArrayList<>(List.of(
                e(0, 0, 0x10, v[0], v[2], v[1]),
                e(1, 0, 0x00A0_0F11, 0x0510_0800, 0x7ED8_320B | 1 << 5, 0x178B_FBFF),
                new CpuidEntry(7, 0, SIG, 0, 0x219C_91A9, 0x0040_069C, 1 << 29 | 1 << 4),
                new CpuidEntry(7, 1, SIG, 0, 0, 0, 1 << 29),
                e(0x8000_0000, 0, 0x8000_0023, 0, 0, 0),
                e(0x8000_0001, 0, 0x00A0_0F11, 0, 0x75C2_37FF | 1 << 2, 0x2FD3_FBFF),
                e(0x8000_0008, 0, 0x3030, 0, 0x7007, 0),
                new CpuidEntry(0x8000_001D, 0, 0, 0x4121, 0x01C0_003F, 0x3F, 0),
                e(0x8000_001E, 0, 0x12, 0x0107, 0x0300, 0)));
        l.addAll(brandLeaves("AMD EPYC 7R13 48-Core Processor"));
        return l;
    }

    static CpuidEntry leaf(List<CpuidEntry> l, int function, int index) {
        return Cpuid.find(l, function, index).orElseThrow();
    }

    static String brand(List<CpuidEntry> l) {
        return Cpuid.hostBrand(l).orElseThrow();
    }

    @Test
    void vendor() {
        assertEquals(Vendor.INTEL, Vendor.of(intelHost()));
        assertEquals(Vendor.AMD, Vendor.of(amdHost()));
        int[] v = regs("HygonGenuine", 3);
        assertEquals(Vendor.OTHER, Vendor.of(List.of(e(0, 0, 0xD, v[0], v[2], v[1]))));
        assertEquals(Vendor.OTHER, Vendor.of(List.of()));
    }

    @Test
    void leafOneForEveryVcpu() {
        for (List<CpuidEntry> host : List.of(intelHost(), amdHost())) {
            for (int n : new int[] {1, 2, 3, 4, 5, 16}) {
                for (int id = 0; id < n; id++) {
                    CpuidEntry l1 = leaf(Cpuid.forVcpu(host, id, n, false), 1, 0);
                    assertEquals(id, l1.ebx() >>> 24, "APIC id");
                    assertEquals(8, (l1.ebx() >>> 8) & 0xFF, "CLFLUSH");
                    int logical = (l1.ebx() >>> 16) & 0xFF;
                    assertEquals(Integer.bitCount(logical), 1);
                    assertTrue(logical >= n && logical < 2 * n || n == 1 && logical == 1, "logical " + logical);
                    assertTrue((l1.ecx() & 1 << 31) != 0, "hypervisor bit");
                    assertEquals(n > 1, (l1.edx() & 1 << 28) != 0, "HTT");
                    assertEquals(0, l1.ecx() & 1 << 5, "VMX cleared without nested");
                }
            }
        }
    }

    @Test
    void logicalCountIsPowerOfTwo() {
        assertEquals(1, Cpuid.maxCpusPerPackage(1));
        assertEquals(4, Cpuid.maxCpusPerPackage(3));
        assertEquals(16, Cpuid.maxCpusPerPackage(16));
        assertEquals(128, Cpuid.maxCpusPerPackage(65));
        assertEquals(255, Cpuid.maxCpusPerPackage(254));
    }

    @Test
    void tscDeadlineOnEveryVendorWhenAsked() {
        assertEquals(0, leaf(Cpuid.forVcpu(amdHost(), 0, 1, false), 1, 0).ecx() & 1 << 24, "libkrun's AMD table: none");
        assertEquals(1 << 24, leaf(Cpuid.forVcpu(intelHost(), 0, 1, false), 1, 0).ecx() & 1 << 24);
        for (List<CpuidEntry> host : List.of(intelHost(), amdHost())) {
            List<CpuidEntry> t = Cpuid.forVcpu(host, 0, 2, false);
            List<CpuidEntry> d = Cpuid.withTscDeadline(t);
            assertEquals(1 << 24, leaf(d, 1, 0).ecx() & 1 << 24);
            assertEquals(leaf(t, 1, 0).ecx() | 1 << 24, leaf(d, 1, 0).ecx(), "nothing else changes");
            assertEquals(t.size(), d.size());
        }
    }

    @Test
    void nestedKeepsVmxAndSvm() {
        assertEquals(1 << 5, leaf(Cpuid.forVcpu(intelHost(), 0, 1, true), 1, 0).ecx() & 1 << 5);
        List<CpuidEntry> amd = Cpuid.forVcpu(amdHost(), 0, 1, true);
        assertEquals(1 << 2, leaf(amd, 0x8000_0001, 0).ecx() & 1 << 2);
        assertEquals(0, leaf(Cpuid.forVcpu(amdHost(), 0, 1, false), 0x8000_0001, 0).ecx() & 1 << 2);
    }

    @Test
    void intelLeaves() {
        List<CpuidEntry> c = Cpuid.forVcpu(intelHost(), 2, 4, false);
        assertTrue((leaf(c, 1, 0).ecx() & 1 << 24) != 0, "TSC deadline");
        // Leaf 4: L1/L2 not shared, L3 shared by 4, 4 cores per package; the rest of EAX kept.
        for (int i = 0; i < 3; i++) {
            assertEquals(0, (leaf(c, 4, i).eax() >>> 14) & 0xFFF);
            assertEquals(3, leaf(c, 4, i).eax() >>> 26);
        }
        assertEquals(0x0C00_0000 | 3 << 14 | 0x163, leaf(c, 4, 3).eax());
        assertEquals(0x4, leaf(c, 6, 0).eax());
        assertEquals(0x1, leaf(c, 6, 0).ecx());
        CpuidEntry pmu = leaf(c, 0xA, 0);
        assertEquals(0, pmu.eax() | pmu.ebx() | pmu.ecx() | pmu.edx());

        CpuidEntry t0 = leaf(c, 0xB, 0);
        CpuidEntry t1 = leaf(c, 0xB, 1);
        CpuidEntry t2 = leaf(c, 0xB, 2);
        assertEquals(2, t0.edx());
        assertEquals(2, t1.edx());
        assertEquals(2, t2.edx());
        assertEquals(0, t0.eax());
        assertEquals(1, t0.ebx());
        assertEquals(1 << 8, t0.ecx(), "SMT level 0");
        assertEquals(6, t1.eax());
        assertEquals(4, t1.ebx());
        assertEquals(2 << 8 | 1, t1.ecx(), "Core level 1");
        assertEquals(2, t2.ecx());
        assertEquals(0, t2.eax() | t2.ebx());

        // Paravirt leaves pass through.
        assertEquals(leaf(intelHost(), 0x4000_0000, 0), leaf(c, 0x4000_0000, 0));
        assertEquals(intelHost().size(), c.size());
    }

    @Test
    void intelTopologyWithOneVcpu() {
        List<CpuidEntry> c = Cpuid.forVcpu(intelHost(), 0, 1, false);
        assertEquals(2 << 8, leaf(c, 0xB, 0).ecx(), "the only level is Core");
        assertEquals(1, leaf(c, 0xB, 1).ecx(), "level 1 invalid");
        assertEquals(0, leaf(c, 4, 3).eax() >>> 26);
    }

    @Test
    void intelSmtPairsVcpusIntoCores() {
        List<CpuidEntry> c = Cpuid.forVcpu(intelHost(), 3, 4, false, true);
        assertEquals(1, (leaf(c, 4, 0).eax() >>> 14) & 0xFFF, "L1d shared by the core's 2 threads");
        assertEquals(1, (leaf(c, 4, 2).eax() >>> 14) & 0xFFF, "L2 too");
        assertEquals(3, (leaf(c, 4, 3).eax() >>> 14) & 0xFFF, "L3 by all 4");
        assertEquals(3, leaf(c, 4, 0).eax() >>> 26, "libkrun's cores-per-package field: n - 1");
        CpuidEntry t0 = leaf(c, 0xB, 0);
        assertEquals(1, t0.eax(), "thread level: x2APIC id >> 1 is the core");
        assertEquals(2, t0.ebx(), "2 threads per core");
        assertEquals(1 << 8, t0.ecx(), "SMT level 0");
        assertEquals(3, t0.edx());
        assertEquals(6, leaf(c, 0xB, 1).eax());
        assertEquals(4, leaf(c, 0xB, 1).ebx());
        assertEquals(Cpuid.forVcpu(intelHost(), 0, 1, false), Cpuid.forVcpu(intelHost(), 0, 1, false, true),
                "one vCPU: nothing to pair, as libkrun");
        assertThrows(IllegalArgumentException.class, () -> Cpuid.forVcpu(intelHost(), 0, 3, false, true));
    }

    @Test
    void amdSmtAndTheExtendedTopologyLeaf() {
        List<CpuidEntry> host = new ArrayList<>(amdHost());
        host.add(new CpuidEntry(0xB, 0, SIG, 1, 2, 0x100, 0)); // the host's own levels, x2APIC id 0 for everyone
        host.add(new CpuidEntry(0xB, 1, SIG, 7, 96, 0x201, 0));
        List<CpuidEntry> c = Cpuid.forVcpu(host, 3, 4, false, true);
        CpuidEntry x = leaf(c, 0x8000_001E, 0);
        assertEquals(3, x.eax(), "extended APIC id");
        assertEquals(1, x.ebx() & 0xFF, "core id 3 / 2");
        assertEquals(1, (x.ebx() >>> 8) & 0xFF, "2 threads per core");
        assertEquals(1, (leaf(c, 0x8000_001D, 0).eax() >>> 14) & 0xFFF, "L1d shared by the core's 2 threads");
        assertEquals(3, leaf(c, 0xB, 0).edx(), "x2APIC id is the vCPU's, not the host's");
        assertEquals(2, leaf(c, 0xB, 0).ebx());
        assertEquals(4, leaf(c, 0xB, 1).ebx(), "the VM's 4, not the host's 96");
        List<CpuidEntry> noSmt = Cpuid.forVcpu(host, 3, 4, false);
        assertEquals(3, leaf(noSmt, 0x8000_001E, 0).ebx() & 0xFFFF, "core id 3, one thread per core");
        assertEquals(0, (leaf(noSmt, 0x8000_001D, 0).eax() >>> 14) & 0xFFF, "L1d private");
    }

    @Test
    void intelBrandString() {
        assertEquals("Intel(R) Xeon(R) Processor @ 2.30GHz", brand(Cpuid.forVcpu(intelHost(), 0, 1, false)));
        List<CpuidEntry> noFreq = new ArrayList<>(intelHost().subList(0, intelHost().size() - 3));
        noFreq.addAll(brandLeaves("Intel(R) Xeon(R) Platinum 8480+"));
        assertEquals("Intel(R) Xeon(R) Processor", brand(Cpuid.forVcpu(noFreq, 0, 1, false)));
        assertEquals(Optional.of("4.01GHz"), Cpuid.frequency("Some CPU @ 4.01GHz"));
        assertEquals(Optional.empty(), Cpuid.frequency("Some CPU 4GHz"));
    }

    @Test
    void amdLeaves() {
        List<CpuidEntry> c = Cpuid.forVcpu(amdHost(), 3, 5, false);
        assertEquals(0, leaf(c, 7, 0).edx() & 1 << 29, "ARCH_CAPABILITIES cleared");
        assertEquals(1 << 4, leaf(c, 7, 0).edx() & 1 << 4);
        assertEquals(1 << 29, leaf(c, 7, 1).edx(), "only sub-leaf 0");
        assertEquals(0x8000_001F, leaf(c, 0x8000_0000, 0).eax());
        assertTrue((leaf(c, 0x8000_0001, 0).ecx() & 1 << 22) != 0, "TOPOEXT");
        assertEquals(0x6004, leaf(c, 0x8000_0008, 0).ecx() & 0xF0FF);
        assertEquals(SIG, leaf(c, 0x8000_001D, 0).flags() & SIG);
        CpuidEntry x = leaf(c, 0x8000_001E, 0);
        assertEquals(3, x.eax(), "extended APIC id");
        assertEquals(3, x.ebx() & 0xFFFF, "core id 3, one thread per core");
        assertEquals(0, x.ecx() & 0x7FF);
        assertEquals("AMD EPYC", brand(c));
        assertEquals(3, leaf(c, 1, 0).ebx() >>> 24);
        assertEquals(8, (leaf(c, 1, 0).ebx() >>> 16) & 0xFF);
    }

    @Test
    void otherVendorKeepsHostBrand() {
        int[] v = regs("HygonGenuine", 3);
        List<CpuidEntry> host = new ArrayList<>(List.of(e(0, 0, 0xD, v[0], v[2], v[1]), e(1, 0, 0, 0, 0, 0)));
        host.addAll(brandLeaves("Hygon C86 7185"));
        List<CpuidEntry> c = Cpuid.forVcpu(host, 1, 2, false);
        assertEquals("Hygon C86 7185", brand(c));
        assertEquals(1, leaf(c, 1, 0).ebx() >>> 24);
    }

    @Test
    void rejectsBadIds() {
        for (int[] bad : new int[][] {{0, 0}, {1, 1}, {-1, 2}, {0, 255}}) {
            IllegalArgumentException ex = assertThrows(IllegalArgumentException.class,
                    () -> Cpuid.forVcpu(intelHost(), bad[0], bad[1], false));
            assertTrue(ex.getMessage().contains("vcpus"));
        }
    }

    @Test
    void bitHelpers() {
        assertEquals(0xFF00_FFFF, Cpuid.bits(-1, 16, 23, 0));
        assertEquals(0x00AB_0000, Cpuid.bits(0, 16, 23, 0x1AB));
        assertEquals(0x1234_5678, Cpuid.bits(0, 0, 31, 0x1234_5678));
    }
}
