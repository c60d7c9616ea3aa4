package dev.jkrun.arch.x86_64;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.HeapGuestMemory;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class SmbiosTest {
    static final long EP = 0xF0000;

    /** One structure as Linux's dmi_decode_table sees it. */
    record Structure(int type, int length, int handle, long address, byte[] formatted, List<String> strings) {
        int u8(int off) { return formatted[off] & 0xFF; }

        String string(int index) { return index == 0 ? null : strings.get(index - 1); }
    }

    record Parsed(long tableAddress, int tableMaxSize, int major, int minor, List<Structure> structures) {
        List<Integer> types() { return structures.stream().map(Structure::type).toList(); }

        Structure of(int type) { return structures.stream().filter(s -> s.type() == type).findFirst().orElseThrow(); }
    }

    static int u8(HeapGuestMemory mem, long at) { return mem.readByte(GuestAddress.of(at)) & 0xFF; }

    /** Parses what write() left in memory the way dmi_smbios3_present + dmi_decode_table do, asserting as it goes. */
    static Parsed parse(HeapGuestMemory mem) {
        // Entry point: anchor, length in [24, 32], checksum over the length, version, table address and size.
        assertEquals("_SM3_", new String(mem.readBytes(GuestAddress.of(EP), 5), StandardCharsets.US_ASCII));
        int length = u8(mem, EP + 6);
        assertEquals(24, length);
        int sum = 0;
        for (byte b : mem.readBytes(GuestAddress.of(EP), length)) {
            sum += b & 0xFF;
        }
        assertEquals(0, sum & 0xFF, "entry point checksum");
        int major = u8(mem, EP + 7), minor = u8(mem, EP + 8);
        assertEquals(0, u8(mem, EP + 9), "docrev");
        assertEquals(1, u8(mem, EP + 10), "entry point revision");
        int maxSize = mem.readInt(GuestAddress.of(EP + 12));
        long tableAddress = mem.readLong(GuestAddress.of(EP + 16));
        assertTrue(tableAddress >= EP + length, "table after the entry point");
        assertTrue(tableAddress + maxSize <= 0x100000, "table below 1 MiB");

        // Structures: header, formatted area, strings up to the double NUL; stop after type 127.
        List<Structure> out = new ArrayList<>();
        long p = tableAddress, end = tableAddress + maxSize;
        while (true) {
            assertTrue(p + 4 <= end, "ran past the table maximum size without a type 127");
            int type = u8(mem, p), len = u8(mem, p + 1);
            int handle = mem.readShort(GuestAddress.of(p + 2)) & 0xFFFF;
            assertTrue(len >= 4, "short structure");
            byte[] formatted = mem.readBytes(GuestAddress.of(p), len);
            long s = p + len;
            List<String> strings = new ArrayList<>();
            if (u8(mem, s) == 0) {
                assertEquals(0, u8(mem, s + 1), "a structure without strings ends with two NULs");
                s += 2;
            } else {
                while (u8(mem, s) != 0) {
                    long start = s;
                    while (u8(mem, s) != 0) {
                        s++;
                    }
                    strings.add(new String(mem.readBytes(GuestAddress.of(start), (int) (s - start)), StandardCharsets.UTF_8));
                    s++;
                }
                s++;
            }
            assertTrue(s <= end, "strings past the table maximum size");
            out.add(new Structure(type, len, handle, p, formatted, strings));
            p = s;
            if (type == 127) {
                break;
            }
        }
        assertEquals(end, p, "the table maximum size is the exact table length");
        return new Parsed(tableAddress, maxSize, major, minor, out);
    }

    @Test
    void tablesWithOemStrings() {
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x200000);
        List<String> oem = List.of("io.systemd.credential:a=b", "ünïcødé ✓ 漢字", "x".repeat(1000), "last");
        Smbios.write(mem, oem);
        Parsed t = parse(mem);

        assertEquals(3, t.major());
        assertEquals(0, t.minor());
        assertEquals(EP + 24, t.tableAddress());
        assertEquals(List.of(0, 1, 11, 127), t.types());

        Set<Integer> handles = new HashSet<>();
        for (Structure s : t.structures()) {
            assertTrue(handles.add(s.handle()), "duplicate handle " + s.handle());
            assertTrue(s.handle() < 0xFF00, "reserved handle");
        }
        assertEquals(List.of(0x0000, 0x0100, 0x0E00, 0x7F00), t.structures().stream().map(Structure::handle).toList());

        Structure bios = t.of(0);
        assertEquals(0x18, bios.length());
        assertEquals("jkrun", bios.string(bios.u8(4)));
        assertEquals("0", bios.string(bios.u8(5)));
        assertEquals("01/05/2024", bios.string(bios.u8(8)));
        assertEquals(1L << 3, java.nio.ByteBuffer.wrap(bios.formatted(), 10, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong());
        assertEquals(0x10, bios.u8(19) & 0x10, "virtual machine bit");
        assertEquals(0, bios.u8(19) & 0x08, "not a UEFI boot");

        Structure sys = t.of(1);
        assertEquals(0x1B, sys.length());
        assertEquals("jkrun", sys.string(sys.u8(4)));
        assertEquals("jkrun microVM", sys.string(sys.u8(5)));
        assertEquals(0, sys.u8(6));
        assertEquals(0, sys.u8(7));
        assertArrayEquals(new byte[16], Arrays.copyOfRange(sys.formatted(), 8, 24), "UUID");
        assertEquals(6, sys.u8(24), "wake-up: power switch");

        Structure o = t.of(11);
        assertEquals(5, o.length());
        assertEquals(oem.size(), o.u8(4), "count");
        assertEquals(oem, o.strings());

        Structure eot = t.of(127);
        assertEquals(4, eot.length());
        assertEquals(List.of(), eot.strings());
        assertEquals(t.tableAddress() + t.tableMaxSize() - 6, eot.address(), "type 127 + two NULs end the table");
    }

    @Test
    void withoutOemStringsTheTablesAreStillThereButNoType11() {
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x200000);
        Smbios.write(mem, List.of());
        Parsed t = parse(mem);
        assertEquals(List.of(0, 1, 127), t.types());
        assertEquals(0x18 + 20 + 0x1B + 21 + 6, t.tableMaxSize());
    }

    @Test
    void exactBytesOfTheEntryPoint() {
        byte[] b = Smbios.build(List.of("a"));
        int table = b.length - 24;
        assertEquals(0x18 + 20 + 0x1B + 21 + 5 + 3 + 6, table);
        byte[] ep = Arrays.copyOf(b, 24);
        java.nio.ByteBuffer e = java.nio.ByteBuffer.wrap(ep).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        assertEquals(table, e.getInt(12));
        assertEquals(0xF0018L, e.getLong(16));
        // Same header as libkrun's Entrypoint30 with size 0 / address 0, whose checksum libkrun's test pins at 83.
        e.putInt(12, 0).putLong(16, 0).put(5, (byte) 0);
        assertEquals(83, MpTable.checksum(ep, 0, 24) & 0xFF);
    }

    @Test
    void maximumCountAndSizeStillFit() {
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x200000);
        List<String> oem = new ArrayList<>();
        for (int i = 0; i < 255; i++) {
            oem.add(i + ":" + "y".repeat(200));
        }
        Smbios.write(mem, oem);
        Parsed t = parse(mem);
        assertEquals(255, t.of(11).u8(4));
        assertEquals(oem, t.of(11).strings());
    }

    @Test
    void oversizedOrInvalidInputIsRejected() {
        HeapGuestMemory mem = HeapGuestMemory.of(0, 0x200000);
        // Past 1 MiB: 0x10000 - 24 bytes of table are all there is.
        assertThrows(IllegalArgumentException.class, () -> Smbios.write(mem, List.of("z".repeat(0x10000))));
        assertThrows(IllegalArgumentException.class, () -> Smbios.write(mem, Collections.nCopies(70, "w".repeat(1000))));
        assertThrows(IllegalArgumentException.class, () -> Smbios.write(mem, Collections.nCopies(256, "v")));
        assertThrows(IllegalArgumentException.class, () -> Smbios.write(mem, List.of("ok", "")));
        assertThrows(IllegalArgumentException.class, () -> Smbios.write(mem, List.of("nul\0inside")));
        // Nothing was written by the rejected calls.
        assertEquals(0, mem.readLong(GuestAddress.of(EP)));
        // The largest table that fits is accepted.
        int fixed = 0x18 + 20 + 0x1B + 21 + 5 + 6;
        Smbios.write(mem, List.of("q".repeat(0x10000 - 24 - fixed - 2)));
        assertEquals(0x100000, parse(mem).tableAddress() + parse(mem).tableMaxSize());
        assertThrows(IllegalArgumentException.class, () -> Smbios.write(mem, List.of("q".repeat(0x10000 - 24 - fixed - 1))));
    }
}
