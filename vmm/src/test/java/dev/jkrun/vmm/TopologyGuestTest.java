package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.guests.TestGuests;
import dev.jkrun.kvm.testing.KvmAvailable;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * CPU topology as a guest reads it with CPUID on each of its vCPUs (the topology test guest): without
 * hyperthreading every vCPU is a core of its own; with it, vCPUs 2k and 2k+1 are the two threads of core k, and the
 * L1 is shared by them. On real KVM through the normal boot path.
 */
class TopologyGuestTest {
    @BeforeAll
    static void kvm() { KvmAvailable.assumeKvm(); }

    @Test
    void withoutHyperthreadingEachVcpuIsACore() throws Exception {
        List<Map<String, Integer>> cpus = run(4, false);
        for (int id = 0; id < 4; id++) {
            Map<String, Integer> t = cpus.get(id);
            assertEquals(id, t.get("x2apic"), "x2APIC id = APIC id = index " + t);
            assertEquals(0, t.get("smt_shift"), t.toString());
            assertEquals(1, t.get("smt"), t.toString());
            assertEquals(4, t.get("pkg"), t.toString());
            assertEquals(0, t.get("l1"), "L1 private " + t);
            assertEquals(3, t.get("l3"), "L3 shared by 4 " + t);
            if (t.get("core") >= 0) { // AMD's 0x8000001E
                assertEquals(id, t.get("core"), t.toString());
                assertEquals(0, t.get("tpc"), t.toString());
            }
        }
    }

    @Test
    void withHyperthreadingPairsAreThreadsOfOneCore() throws Exception {
        List<Map<String, Integer>> cpus = run(4, true);
        for (int id = 0; id < 4; id++) {
            Map<String, Integer> t = cpus.get(id);
            assertEquals(id, t.get("x2apic"), t.toString());
            assertEquals(1, t.get("smt_shift"), "x2APIC id >> 1 is the core " + t);
            assertEquals(2, t.get("smt"), "2 threads per core " + t);
            assertEquals(1, t.get("smt_type"), "SMT level " + t);
            assertEquals(4, t.get("pkg"), t.toString());
            assertEquals(1, t.get("l1"), "L1 shared by the core's 2 threads " + t);
            assertEquals(3, t.get("l3"), t.toString());
            if (t.get("core") >= 0) {
                assertEquals(id / 2, t.get("core"), t.toString());
                assertEquals(1, t.get("tpc"), t.toString());
            }
        }
    }

    @Test
    void oneVcpuWithHyperthreadingIsAcceptedAsLibkrunDoes() throws Exception {
        Map<String, Integer> t = run(1, true).get(0);
        assertEquals(1, t.get("smt"), t.toString());
        assertEquals(2, t.get("smt_type"), "the only level is Core " + t);
        assertEquals(0, t.get("l1"), t.toString());
    }

    /** Runs the guest; each vCPU's TOPO line as name → value, indexed by APIC id. */
    private static List<Map<String, Integer>> run(int vcpus, boolean ht) throws Exception {
        VmConfig config = new VmConfig(new MachineConfig(vcpus, 64, ht, false),
                KernelConfig.elf(TestGuests.path("topology"), ""), new ConsoleConfig.None(), true);
        GuestRun r = GuestRun.run(config, Duration.ofSeconds(60));
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), r.output() + r.reason());
        Map<Integer, Map<String, Integer>> byApic = new HashMap<>();
        for (String line : r.lines()) {
            if (line.startsWith("TOPO ")) {
                Map<String, Integer> m = new HashMap<>();
                for (String kv : line.substring(5).split(" ")) {
                    String[] p = kv.split("=");
                    m.put(p[0], Integer.parseInt(p[1]));
                }
                byApic.put(m.get("apic"), m);
            }
        }
        assertEquals(vcpus, byApic.size(), r.output());
        assertTrue(byApic.values().stream().allMatch(m -> m.get("x2apic") >= 0), "leaf 0xB present:\n" + r.output());
        return java.util.stream.IntStream.range(0, vcpus).mapToObj(byApic::get).toList();
    }
}
