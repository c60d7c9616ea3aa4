package dev.jkrun.arch.x86_64;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.jkrun.kvm.Sregs;
import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.HeapGuestMemory;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

class PageWalkTest {
    @Test
    void identityTables() {
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x200000);
        PageTables.write(mem);
        assertEquals(OptionalLong.of(0x1234), PageWalk.translate(mem, 0x9000, 0x1234));
        assertEquals(OptionalLong.of(0x1F_FFFF), PageWalk.translate(mem, 0x9000, 0x1F_FFFF));
        // Mapped by the tables but beyond this 2 MiB of RAM.
        assertEquals(OptionalLong.empty(), PageWalk.translate(mem, 0x9000, 0x20_0000));
        // Above 1 GiB: PDPT[1] is not present.
        assertEquals(OptionalLong.empty(), PageWalk.translate(mem, 0x9000, 1L << 30));
        // PML4[511] is not present (kernel-half address).
        assertEquals(OptionalLong.empty(), PageWalk.translate(mem, 0x9000, 0xFFFF_FFFF_8100_0000L));
        // CR3's low bits (PCID, PWT/PCD) are ignored.
        assertEquals(OptionalLong.of(0x1234), PageWalk.translate(mem, 0x9018, 0x1234));
    }

    @Test
    void fourKibAndOneGibPages() {
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x200000);
        GuestAddress pml4 = GuestAddress.of(0x10000);
        long va = 0xFFFF_FFFF_8123_4567L; // PML4 511, PDPT 510, PD 9, PT 0x34
        mem.writeLong(pml4.checkedAdd(511 * 8), 0x11003);
        mem.writeLong(GuestAddress.of(0x11000 + 510 * 8), 0x12003);
        mem.writeLong(GuestAddress.of(0x12000 + 9 * 8), 0x13003);
        mem.writeLong(GuestAddress.of(0x13000 + 0x34 * 8), 0x8000_0000_0015_5063L); // NX bit set, frame 0x155000
        assertEquals(OptionalLong.of(0x155567), PageWalk.translate(mem, 0x10000, va));
        // Neighbouring 4 KiB page is not mapped.
        assertEquals(OptionalLong.empty(), PageWalk.translate(mem, 0x10000, va + 0x1000));

        // A 1 GiB page at PDPT[0] of PML4[1] mapping physical 0.
        mem.writeLong(pml4.checkedAdd(8), 0x14003);
        mem.writeLong(GuestAddress.of(0x14000), 0x83);
        assertEquals(OptionalLong.of(0x1_2345), PageWalk.translate(mem, 0x10000, (1L << 39) + 0x1_2345));
    }

    @Test
    void tableOutsideRamIsUnmapped() {
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x200000);
        mem.writeLong(GuestAddress.of(0x10000), 0x4000_0003L); // PDPT at 1 GiB, outside RAM
        assertEquals(OptionalLong.empty(), PageWalk.translate(mem, 0x10000, 0x1000));
        assertEquals(OptionalLong.empty(), PageWalk.translate(mem, 0x4000_0000L, 0x1000));
    }

    @Test
    void withSregs() {
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x200000);
        PageTables.write(mem);
        Sregs s = BootCpuTest.resetSregs();
        s.cr0 &= ~BootCpu.CR0_PG;
        assertEquals(OptionalLong.of(0x5000), PageWalk.translate(mem, s, 0x5000), "paging off: identity");
        BootCpu.longModeSregs(s);
        assertEquals(OptionalLong.of(0x5000), PageWalk.translate(mem, s, 0x5000));
        // 5-level: PML5[0] → the PML4 at 0x9000.
        mem.writeLong(GuestAddress.of(0x20000), 0x9003);
        s.cr3 = 0x20000;
        s.cr4 |= 1L << 12;
        assertEquals(OptionalLong.of(0x5000), PageWalk.translate(mem, s, 0x5000));
    }
}
