package dev.jkrun.arch.x86_64;

import dev.jkrun.memory.GuestAddress;
import dev.jkrun.memory.GuestMemory;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Objects;

/**
 * SMBIOS tables (DMTF DSP0134 3.x) carrying the OEM strings of {@code krun_set_smbios_oem_strings}: an SMBIOS 3.0
 * 64-bit entry point ({@code "_SM3_"}, 24 bytes) at {@link Layout#SMBIOS_START}, and the structure table right
 * after it. Linux finds it in drivers/firmware/dmi_scan.c ({@code dmi_smbios3_present}): on a non-EFI boot it scans
 * 0xF0000–0xFFFFF in 16-byte steps, checks the entry point's checksum over its length, then walks at most
 * {@code table maximum size} bytes from the table address, stopping at the type 127 structure.
 *
 * <p>The structures are those of libkrun's {@code smbios} crate ({@code src/smbios/src/{lib,table}.rs}), in its
 * order and with its handles ({@code type << 8}):
 * <ul>
 *   <li>type 0, BIOS information: vendor "jkrun", version "0", release date "01/05/2024"; characteristics "not
 *       supported", extension byte 2 = targeted content distribution | virtual machine (libkrun also sets the
 *       UEFI bit for its EFI firmware; this boot is not UEFI, so it stays clear here); embedded controller release
 *       0xFF.0xFF;</li>
 *   <li>type 1, system information: manufacturer "jkrun", product name "jkrun microVM", UUID all zeros, wake-up
 *       type power switch;</li>
 *   <li>type 11, OEM strings: the count and the strings, in order — <b>only when there are OEM strings</b>
 *       (libkrun maps an empty list to "none" and then writes no type 11);</li>
 *   <li>type 127, end of table.</li>
 * </ul>
 * Like libkrun's {@code setup_smbios}, the tables are <b>always</b> written, with type 0, 1 and 127 even when
 * there are no OEM strings. (libkrun itself only calls it on aarch64, at its firmware's SMBIOS address; on x86_64
 * jkrun puts the same tables where a direct-booted Linux looks for them.)
 *
 * <p>Each structure is its formatted area followed by its string set: every string NUL-terminated, the set ended
 * by one more NUL; a structure without strings is followed by two NULs.
 */
public final class Smbios {
    private Smbios() {}

    /** Size of the SMBIOS 3.0 entry point structure. */
    public static final int ENTRY_POINT_SIZE = 24;
    /** Where the structure table starts: right after the entry point. */
    public static final long TABLE_ADDRESS = Layout.SMBIOS_START + ENTRY_POINT_SIZE;
    /** The most bytes the structure table may take: everything up to {@link Layout#SMBIOS_END}. */
    public static final int MAX_TABLE_SIZE = (int) (Layout.SMBIOS_END - TABLE_ADDRESS);
    /** Type 11's count is a byte. */
    public static final int MAX_OEM_STRINGS = 255;

    public static final int TYPE_BIOS_INFORMATION = 0;
    public static final int TYPE_SYSTEM_INFORMATION = 1;
    public static final int TYPE_OEM_STRINGS = 11;
    public static final int TYPE_END_OF_TABLE = 127;

    // Handles as libkrun assigns them.
    public static final int HANDLE_BIOS_INFORMATION = 0x0000;
    public static final int HANDLE_SYSTEM_INFORMATION = 0x0100;
    public static final int HANDLE_OEM_STRINGS = 0x0E00;
    public static final int HANDLE_END_OF_TABLE = 0x7F00;

    // Formatted-area lengths (SMBIOS 2.4+ layouts, as libkrun's packed structs).
    static final int BIOS_INFORMATION_LENGTH = 0x18;
    static final int SYSTEM_INFORMATION_LENGTH = 0x1B;
    static final int OEM_STRINGS_LENGTH = 5;
    static final int END_OF_TABLE_LENGTH = 4;

    public static final String BIOS_VENDOR = "jkrun";
    public static final String BIOS_VERSION = "0";
    public static final String BIOS_RELEASE_DATE = "01/05/2024";
    public static final String SYSTEM_MANUFACTURER = "jkrun";
    public static final String SYSTEM_PRODUCT = "jkrun microVM";

    /** BIOS characteristics bit 3: "BIOS Characteristics are not supported". */
    static final long CHARACTERISTICS_NOT_SUPPORTED = 1L << 3;
    /** Extension byte 2: bit 2 targeted content distribution, bit 4 "SMBIOS table describes a virtual machine". */
    static final int CHARACTERISTICS_EXT2 = (1 << 2) | (1 << 4);
    static final int WAKE_UP_POWER_SWITCH = 0x06;

    /**
     * Writes the entry point at {@link Layout#SMBIOS_START} and the structure table after it.
     *
     * @param oemStrings type 11 strings, in order (UTF-8 in the guest); empty: no type 11 structure
     * @throws IllegalArgumentException more than 255 strings, an empty string or one with a NUL, or tables that
     *     would reach {@link Layout#SMBIOS_END}
     */
    public static void write(GuestMemory mem, List<String> oemStrings) {
        mem.write(GuestAddress.of(Layout.SMBIOS_START), build(oemStrings));
    }

    /** Entry point + structure table, to be placed at {@link Layout#SMBIOS_START} (the table address assumes it). */
    public static byte[] build(List<String> oemStrings) {
        Objects.requireNonNull(oemStrings, "oemStrings");
        if (oemStrings.size() > MAX_OEM_STRINGS) {
            throw new IllegalArgumentException("at most " + MAX_OEM_STRINGS + " SMBIOS OEM strings: " + oemStrings.size());
        }
        ByteArrayOutputStream table = new ByteArrayOutputStream();

        ByteBuffer bios = header(TYPE_BIOS_INFORMATION, BIOS_INFORMATION_LENGTH, HANDLE_BIOS_INFORMATION);
        bios.put((byte) 1).put((byte) 2); // vendor, version: strings 1 and 2
        bios.putShort((short) 0); // BIOS starting address segment: none (no BIOS image)
        bios.put((byte) 3); // release date: string 3
        bios.put((byte) 0); // ROM size
        bios.putLong(CHARACTERISTICS_NOT_SUPPORTED);
        bios.put((byte) 0).put((byte) CHARACTERISTICS_EXT2);
        bios.put((byte) 0).put((byte) 0); // system BIOS major.minor release
        bios.put((byte) 0xFF).put((byte) 0xFF); // no field-upgradeable embedded controller firmware
        structure(table, bios, List.of(BIOS_VENDOR, BIOS_VERSION, BIOS_RELEASE_DATE));

        ByteBuffer system = header(TYPE_SYSTEM_INFORMATION, SYSTEM_INFORMATION_LENGTH, HANDLE_SYSTEM_INFORMATION);
        system.put((byte) 1).put((byte) 2); // manufacturer, product name
        system.put((byte) 0).put((byte) 0); // version, serial number: none
        system.put(new byte[16]); // UUID: all zeros
        system.put((byte) WAKE_UP_POWER_SWITCH);
        system.put((byte) 0).put((byte) 0); // SKU number, family: none
        structure(table, system, List.of(SYSTEM_MANUFACTURER, SYSTEM_PRODUCT));

        if (!oemStrings.isEmpty()) {
            ByteBuffer oem = header(TYPE_OEM_STRINGS, OEM_STRINGS_LENGTH, HANDLE_OEM_STRINGS);
            oem.put((byte) oemStrings.size());
            structure(table, oem, oemStrings);
        }

        structure(table, header(TYPE_END_OF_TABLE, END_OF_TABLE_LENGTH, HANDLE_END_OF_TABLE), List.of());

        int tableSize = table.size();
        if (tableSize > MAX_TABLE_SIZE) {
            throw new IllegalArgumentException("SMBIOS tables of " + (ENTRY_POINT_SIZE + tableSize) + " bytes do not fit in ["
                    + hex(Layout.SMBIOS_START) + ", " + hex(Layout.SMBIOS_END) + ")");
        }

        ByteBuffer b = ByteBuffer.allocate(ENTRY_POINT_SIZE + tableSize).order(ByteOrder.LITTLE_ENDIAN);
        b.put("_SM3_".getBytes(StandardCharsets.US_ASCII));
        b.put((byte) 0); // checksum, below
        b.put((byte) ENTRY_POINT_SIZE);
        b.put((byte) 3).put((byte) 0).put((byte) 0); // SMBIOS 3.0.0
        b.put((byte) 1); // entry point revision: 3.0
        b.put((byte) 0); // reserved
        b.putInt(tableSize); // structure table maximum size
        b.putLong(TABLE_ADDRESS);
        b.put(5, MpTable.checksum(b.array(), 0, ENTRY_POINT_SIZE));
        b.put(table.toByteArray());
        return b.array();
    }

    private static ByteBuffer header(int type, int length, int handle) {
        ByteBuffer b = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) type).put((byte) length).putShort((short) handle);
        return b;
    }

    /** The formatted area (which must be full), then the string set. */
    private static void structure(ByteArrayOutputStream out, ByteBuffer formatted, List<String> strings) {
        if (formatted.hasRemaining()) {
            throw new IllegalStateException("SMBIOS type " + formatted.get(0) + ": " + formatted.remaining() + " bytes not written");
        }
        out.writeBytes(formatted.array());
        for (String s : strings) {
            Objects.requireNonNull(s, "SMBIOS string");
            if (s.isEmpty() || s.indexOf('\0') >= 0) {
                // An empty string or a NUL would end the string set early.
                throw new IllegalArgumentException("SMBIOS strings must be non-empty and without NUL");
            }
            out.writeBytes(s.getBytes(StandardCharsets.UTF_8));
            out.write(0);
        }
        if (strings.isEmpty()) {
            out.write(0);
        }
        out.write(0);
        if (out.size() > MAX_TABLE_SIZE) {
            // Stop early on a huge input; the exact message comes from build().
            throw new IllegalArgumentException("SMBIOS tables do not fit in [" + hex(Layout.SMBIOS_START) + ", "
                    + hex(Layout.SMBIOS_END) + "): the structure table passed " + MAX_TABLE_SIZE + " bytes");
        }
    }

    private static String hex(long v) { return "0x" + Long.toHexString(v); }
}
