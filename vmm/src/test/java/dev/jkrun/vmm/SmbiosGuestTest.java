package dev.jkrun.vmm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.kvm.testing.KvmAvailable;
import java.time.Duration;
import java.util.List;
import java.util.OptionalInt;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * SMBIOS OEM strings (krun_set_smbios_oem_strings), read back on real KVM by the {@code smbios} test guest, which
 * finds the tables the way Linux's dmi_scan does (an "_SM3_" entry point in 0xF0000–0xFFFFF) and walks them.
 */
class SmbiosGuestTest {
    @BeforeAll
    static void kvm() { KvmAvailable.assumeKvm(); }

    static GuestRun run(List<String> oem) throws InterruptedException {
        return GuestRun.run(GuestRun.config("smbios", 1, 32, "").withSmbiosOemStrings(oem), Duration.ofSeconds(60));
    }

    static List<String> matching(GuestRun r, String prefix) {
        return r.lines().stream().filter(l -> l.startsWith(prefix)).toList();
    }

    @Test
    void oemStringsReachTheGuestInOrder() throws Exception {
        String longOne = "io.systemd.credential:long=" + "0123456789abcdef".repeat(120);
        List<String> oem = List.of("io.systemd.credential:hello=world", "grüße ✓ 漢字 😀", longOne, "last one");
        GuestRun r = run(oem);
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), r.output() + r.reason());
        assertTrue(r.lines().contains("SMBIOS ok"), r.output());
        assertEquals(List.of(), matching(r, "FAIL"), r.output());
        assertEquals(List.of("OEM 1 " + oem.get(0), "OEM 2 " + oem.get(1), "OEM 3 " + longOne, "OEM 4 " + oem.get(3)),
                matching(r, "OEM "), r.output());
        assertEquals(List.of("TYPE 0 handle 0x0", "TYPE 1 handle 0x100", "TYPE 11 handle 0xe00", "TYPE 127 handle 0x7f00"),
                matching(r, "TYPE "), r.output());
        assertTrue(r.lines().contains("BIOS_VENDOR jkrun"), r.output());
        assertTrue(r.lines().contains("PRODUCT jkrun microVM"), r.output());
        assertTrue(r.lines().contains("STRUCTURES 4"), r.output());
        assertTrue(r.output().contains("SMBIOS3 3.0.0 entry 0xf0000 table 0xf0018 size "), r.output());
        assertFalse(r.output().contains("NOTE "), r.output());
    }

    @Test
    void withoutOemStringsTheTablesHaveNoType11() throws Exception {
        // As libkrun's setup_smbios: types 0, 1 and 127 always; type 11 only when there are strings.
        GuestRun r = run(List.of());
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), r.output() + r.reason());
        assertTrue(r.lines().contains("SMBIOS ok"), r.output());
        assertEquals(List.of(), matching(r, "OEM "), r.output());
        assertEquals(List.of("TYPE 0 handle 0x0", "TYPE 1 handle 0x100", "TYPE 127 handle 0x7f00"),
                matching(r, "TYPE "), r.output());
        assertTrue(r.lines().contains("STRUCTURES 3"), r.output());
    }

    @Test
    void theLargestAllowedSetFits() throws Exception {
        // VmConfig's limit: 4096 bytes in all (each string's NUL included); here 16 strings of 255 bytes + NUL.
        List<String> oem = java.util.stream.IntStream.range(0, 16)
                .mapToObj(i -> String.format("%02d", i) + "s".repeat(253)).toList();
        GuestRun r = run(oem);
        assertEquals(OptionalInt.of(0), r.reason().exitStatus(), r.output() + r.reason());
        List<String> want = java.util.stream.IntStream.range(0, 16).mapToObj(i -> "OEM " + (i + 1) + " " + oem.get(i)).toList();
        assertEquals(want, matching(r, "OEM "), r.output());
    }
}
