/* smbios: find the SMBIOS tables the way Linux's dmi_scan does on a non-EFI boot and report them.
 *   scan 0xF0000..0xFFFFF in 16-byte steps for an "_SM3_" entry point whose length is in [24, 32] and whose
 *   bytes sum to 0 (dmi_smbios3_present); then walk the structure table like dmi_decode_table: header, formatted
 *   area, strings up to the double NUL, stopping at type 127 or the table maximum size.
 * Prints: `SMBIOS3 <maj>.<min>.<docrev> entry 0x.. table 0x.. size N`, `TYPE <n> handle 0x..` per structure,
 *   `BIOS_VENDOR <s>` / `PRODUCT <s>` for types 0 / 1, `OEM <index> <string>` per type 11 string (index from 1),
 *   `STRUCTURES <n>`, then `SMBIOS ok`. Exit 0; `FAIL: ...` and 1 on any inconsistency. */
#include "guest.h"

#define SCAN_START 0xF0000UL
#define SCAN_END   0x100000UL
#define MAX_HANDLES 64

static const uint8_t *find_sm3(void) {
    for (uintptr_t p = SCAN_START; p + 24 <= SCAN_END; p += 16) {
        const uint8_t *e = (const uint8_t *)p;
        if (memcmp(e, "_SM3_", 5)) continue;
        uint8_t len = e[6], sum = 0;
        if (len < 24 || len > 32 || p + len > SCAN_END) {
            printf_lite("SKIP _SM3_ at 0x%lx: length %u\n", (uint64_t)p, len);
            continue;
        }
        for (int i = 0; i < len; i++) sum += e[i];
        if (sum) {
            printf_lite("SKIP _SM3_ at 0x%lx: checksum off by 0x%x\n", (uint64_t)p, sum);
            continue;
        }
        return e;
    }
    return 0;
}

/* The index-th string (from 1) of the structure at t[off] whose strings end at t[end] (the last string's NUL). */
static const char *string_at(const uint8_t *t, uint32_t off, uint32_t end, int index) {
    if (index == 0) return "";
    uint32_t q = off + t[off + 1];
    for (int i = 1; q <= end && t[q]; i++) {
        if (i == index) return (const char *)(t + q);
        q += strlen((const char *)(t + q)) + 1;
    }
    return 0;
}

int guest_main(struct boot_params_lite *zp) {
    bootinfo_init(zp);
    const uint8_t *e = find_sm3();
    if (!e) fail("no valid _SM3_ entry point in 0xf0000-0xfffff");
    uint32_t max;
    uint64_t addr;
    memcpy(&max, e + 12, 4);
    memcpy(&addr, e + 16, 8);
    printf_lite("SMBIOS3 %u.%u.%u entry 0x%lx table 0x%lx size %u\n", e[7], e[8], e[9], (uint64_t)(uintptr_t)e, addr, max);
    if (e[7] < 3) fail("an _SM3_ entry point with major version < 3");
    if (addr < SCAN_START || addr + max > SCAN_END) fail("the structure table is not inside 0xf0000-0xfffff");
    if (addr < (uintptr_t)e + e[6] && addr + max > (uintptr_t)e) fail("the structure table overlaps the entry point");
    if (max < 6) fail("table maximum size below one end-of-table structure");

    const uint8_t *t = (const uint8_t *)(uintptr_t)addr;
    uint16_t handles[MAX_HANDLES];
    int nstruct = 0, seen0 = 0, seen1 = 0, end_seen = 0;
    uint32_t off = 0;
    while (off + 4 <= max) {
        uint8_t type = t[off], len = t[off + 1];
        uint16_t handle = (uint16_t)(t[off + 2] | t[off + 3] << 8);
        if (len < 4) { printf_lite("FAIL: structure at +%u (type %u) has length %u\n", off, type, len); return 1; }
        if (off + len + 2 > max) { printf_lite("FAIL: structure at +%u (type %u) runs past the table\n", off, type); return 1; }
        uint32_t d = off + len;
        while (d < max - 1 && (t[d] || t[d + 1])) d++;
        if (d >= max - 1) { printf_lite("FAIL: strings of type %u at +%u are not ended by a double NUL\n", type, off); return 1; }
        /* d: the string set's last NUL (or the first of the two NULs of an empty set) */
        printf_lite("TYPE %u handle 0x%x\n", type, handle);
        if (handle >= 0xFF00) { printf_lite("FAIL: reserved handle 0x%x\n", handle); return 1; }
        for (int i = 0; i < nstruct && i < MAX_HANDLES; i++)
            if (handles[i] == handle) { printf_lite("FAIL: handle 0x%x used twice\n", handle); return 1; }
        if (nstruct < MAX_HANDLES) handles[nstruct] = handle;
        nstruct++;

        if (type == 0) {
            const char *v = len >= 0x12 ? string_at(t, off, d, t[off + 4]) : 0;
            if (!v || !*v) fail("type 0 without a vendor string");
            printf_lite("BIOS_VENDOR %s\n", v);
            seen0++;
        } else if (type == 1) {
            const char *v = len >= 8 ? string_at(t, off, d, t[off + 5]) : 0;
            if (!v || !*v) fail("type 1 without a product name");
            printf_lite("PRODUCT %s\n", v);
            seen1++;
        } else if (type == 11) {
            if (len < 5) fail("type 11 shorter than 5 bytes");
            int count = t[off + 4], n = 0;
            uint32_t q = off + len;
            while (q <= d && t[q]) {
                n++;
                printf_lite("OEM %u %s\n", n, (const char *)(t + q));
                q += strlen((const char *)(t + q)) + 1;
            }
            if (n != count) { printf_lite("FAIL: type 11 count %u but %u strings\n", count, n); return 1; }
        }
        off = d + 2;
        if (type == 127) { end_seen = 1; break; }
    }
    if (!end_seen) fail("no type 127 (end of table) within the table maximum size");
    if (off != max) printf_lite("NOTE table maximum size %u, end of table at %u\n", max, off);
    if (seen0 != 1 || seen1 != 1) { printf_lite("FAIL: %u type 0 and %u type 1 structures, want one each\n", seen0, seen1); return 1; }
    printf_lite("STRUCTURES %u\n", nstruct);
    printf_lite("SMBIOS ok\n");
    return 0;
}
